package proto

import "hash/crc32"

// ChecksumDepth is how many levels per side the book checksum covers.
const ChecksumDepth = 10

// BookChecksum returns the CRC-32 (IEEE) of the string built from the top
// ChecksumDepth bids, then the top ChecksumDepth asks, each level written as
// "price:size|" with prices and sizes exactly as sent. bids and asks must be
// in book order (best first).
//
// It runs the IEEE table over the strings themselves rather than building
// the string and calling crc32.Update: the accelerated path takes a []byte
// that escapes, which would cost an allocation per book message for a
// string of a few hundred bytes.
func BookChecksum(bids, asks []Level) uint32 {
	crc := ^uint32(0)
	crc = checksumLevels(crc, bids)
	crc = checksumLevels(crc, asks)
	return ^crc
}

func checksumLevels(crc uint32, levels []Level) uint32 {
	if len(levels) > ChecksumDepth {
		levels = levels[:ChecksumDepth]
	}
	tab := crc32.IEEETable
	for _, l := range levels {
		for i := 0; i < len(l[0]); i++ {
			crc = tab[byte(crc)^l[0][i]] ^ (crc >> 8)
		}
		crc = tab[byte(crc)^':'] ^ (crc >> 8)
		for i := 0; i < len(l[1]); i++ {
			crc = tab[byte(crc)^l[1][i]] ^ (crc >> 8)
		}
		crc = tab[byte(crc)^'|'] ^ (crc >> 8)
	}
	return crc
}
