//go:build !linux

package feed

import "net"

// wrapRead returns c: the runtime's monitor thread is woken by a read only
// on Linux (sockread_linux.go).
func wrapRead(c net.Conn) net.Conn { return c }
