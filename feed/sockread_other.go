//go:build !linux

package feed

import "net"

// wrapRead returns c: the raw read (sockread_linux.go) is made on Linux
// only, where the node's measurements were taken; elsewhere the NATS
// connection reads as any net.Conn does.
func wrapRead(c net.Conn) net.Conn { return c }
