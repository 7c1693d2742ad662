// Package memtest measures heap allocation for tests that bound the memory
// a call may use on hostile input (fuzz targets among them).
package memtest

import "runtime/metrics"

// HeapAllocated is the process's cumulative heap allocation in bytes. Small
// objects are counted when their span is handed back, so two readings
// bracket a call's allocations to within a few hundred KiB; a call that
// allocated megabytes shows.
func HeapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
