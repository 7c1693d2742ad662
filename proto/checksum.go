package proto

import "hash/crc32"

// ChecksumDepth is how many levels per side the book checksum covers.
const ChecksumDepth = 10

// BookChecksum returns the CRC-32 (IEEE) of the string built from the top
// ChecksumDepth bids, then the top ChecksumDepth asks, each level written as
// "price:size|" with prices and sizes exactly as sent. bids and asks must be
// in book order (best first). It allocates the string; hot paths keep a
// buffer and call BookChecksumBuf.
func BookChecksum(bids, asks []Level) uint32 {
	sum, _ := BookChecksumBuf(nil, bids, asks)
	return sum
}

// BookChecksumBuf is BookChecksum building the string in buf (reused from
// its start); it returns the buffer for the next call, so a caller that
// keeps it checksums without allocating.
func BookChecksumBuf(buf []byte, bids, asks []Level) (uint32, []byte) {
	buf = buf[:0]
	for _, side := range [2][]Level{bids, asks} {
		for _, l := range side[:min(len(side), ChecksumDepth)] {
			buf = append(buf, l[0]...)
			buf = append(buf, ':')
			buf = append(buf, l[1]...)
			buf = append(buf, '|')
		}
	}
	return crc32.ChecksumIEEE(buf), buf
}
