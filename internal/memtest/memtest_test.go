package memtest

import "testing"

var sink []byte

func TestHeapAllocatedSeesAnAllocation(t *testing.T) {
	before := HeapAllocated()
	sink = make([]byte, 8<<20)
	if grew := HeapAllocated() - before; grew < 8<<20 {
		t.Fatalf("an 8 MiB allocation showed as %d bytes", grew)
	}
}
