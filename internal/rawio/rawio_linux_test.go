package rawio

import (
	"fmt"
	"io"
	"syscall"
	"testing"
	"unsafe"
)

// BenchmarkWriteOrSend is the floor under a node's write: one frame
// (241 bytes, a JSON ticker) or a burst's dozen frames (3,400 bytes) to a
// loopback socket that a goroutine drains, written with write(2), as
// TryWrite does, or with send(2), which skips the file layer. The two
// cost the same here (docs/benchmarks.md, eighth round).
//
//	go test -run '^$' -bench WriteOrSend -count 6 ./internal/rawio
func BenchmarkWriteOrSend(b *testing.B) {
	for _, size := range []int{241, 3400} {
		for _, call := range []string{"write", "send"} {
			b.Run(fmt.Sprintf("%s/%d", call, size), func(b *testing.B) {
				fd, _, peer := tcpPair(b)
				go func() { _, _ = io.Copy(io.Discard, peer) }()
				frame := make([]byte, size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				for b.Loop() {
					for {
						var e syscall.Errno
						if call == "write" {
							_, e = Write(fd, frame)
						} else {
							_, _, e = syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&frame[0])), uintptr(size), syscall.MSG_NOSIGNAL, 0, 0)
						}
						if e != syscall.EAGAIN {
							break
						}
					}
				}
			})
		}
	}
}
