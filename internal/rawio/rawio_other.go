//go:build unix && !linux

package rawio

import (
	"errors"
	"syscall"
)

// Write writes b to the non-blocking descriptor fd once. Here, the usual
// system call: the runtime's monitor is Linux's concern (see the package
// doc).
func Write(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return count(n), errno(err)
}

// Read reads into b from the non-blocking descriptor fd once.
func Read(fd uintptr, b []byte) (int, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return count(n), errno(err)
}

func count(n int) int { return max(n, 0) }

// errno is err as an Errno: 0 for none, EIO for an error that is not one
// (never silently a success).
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if !errors.As(err, &e) {
		return syscall.EIO
	}
	return e
}
