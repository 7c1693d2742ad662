//go:build !(amd64 || arm64) || purego

package gateway

import "unsafe"

// prefetchLines does nothing where the node has no prefetch instruction
// (see prefetch.go).
func prefetchLines(unsafe.Pointer, uintptr) {}
