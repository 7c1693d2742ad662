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
// loopback socket that a goroutine drains, written with write(2) or with
// send(2), which skips the file layer (vfs_write, fdget_pos,
// sock_write_iter). With socks=1 every write goes to one socket, whose
// kernel state stays in the cache; with socks=1000 the writes go round
// 1,000 sockets, as a fan-out to thousands of connections does.
// cpu-ns/op is the process's CPU (user and system, the drains included)
// per write. Here the two calls cost the same either way: 1,000 sockets
// whose drains read each one as it is written stay warm in this
// machine's 32 MiB cache. On a node's thousands of TLS connections,
// among everything else a delivery touches, the profile put the file
// layer of write(2) at 6% of the node and send's lookup at 3.9%
// (docs/benchmarks.md, tenth round), and Write makes send(2).
//
//	go test -run '^$' -bench WriteOrSend -count 6 ./internal/rawio
func BenchmarkWriteOrSend(b *testing.B) {
	for _, socks := range []int{1, 1000} {
		for _, size := range []int{241, 3400} {
			for _, call := range []string{"write", "send"} {
				b.Run(fmt.Sprintf("socks=%d/%s/%d", socks, call, size), func(b *testing.B) {
					fds := make([]uintptr, socks)
					for i := range fds {
						fd, _, peer := tcpPair(b)
						go func() { _, _ = io.Copy(io.Discard, peer) }()
						fds[i] = fd
					}
					frame := make([]byte, size)
					b.ReportAllocs()
					b.SetBytes(int64(size))
					var before, after syscall.Rusage
					_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
					i := 0
					for b.Loop() {
						fd := fds[i]
						i = (i + 1) % len(fds)
						for {
							var e syscall.Errno
							if call == "write" {
								_, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&frame[0])), uintptr(size))
							} else {
								_, e = Write(fd, frame)
							}
							if e != syscall.EAGAIN {
								break
							}
						}
					}
					_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
					cpu := syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
						syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime)
					b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
				})
			}
		}
	}
}
