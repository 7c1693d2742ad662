//go:build !linux

package gateway

// canWaitReadable is false on this system: tlsReader waits inside
// tls.Conn.Read.
const canWaitReadable = false

func socketReadable(uintptr) bool { return true }
