//go:build (amd64 || arm64) && !purego

package gateway

import "unsafe"

// prefetchLines asks the processor to bring the n cache lines from p on
// into its caches, and returns without waiting for them (PREFETCHT0 on
// amd64, PRFM PLDL1KEEP on arm64). A hint: it reads nothing, so it
// neither faults nor races, and a line it brings that is not used costs
// only the room it takes.
//
//go:noescape
func prefetchLines(p unsafe.Pointer, n uintptr)
