package gateway

// Goroutines started per event (a read loop the parker starts, a part of
// a sweep of writer rounds, a writer goroutine started on demand) begin
// on a new goroutine's stack, smaller than their work needs, and the
// runtime grew it where they first outgrew it: deep in a TLS read or a
// socket write, where growing means copying a dozen frames and looking up
// each one's stack map. They grow it first, while one frame is on the
// stack, at a fraction of the cost (about 1% of the node's CPU in A over
// TLS, docs/benchmarks.md).

// startStack is the stack such a goroutine takes before it starts: more
// than a new goroutine's 8 KiB, which a read loop over TLS and a writer
// round each outgrew once, and within the 16 KiB the runtime then grows
// it to.
const startStack = 10 << 10

// reserveStack takes startStack bytes of stack in one frame, so that the
// runtime grows the stack here rather than deeper. The frame's bytes go
// to touchStack, which keeps the compiler from dropping them.
//
//go:noinline
func reserveStack() {
	var pad [startStack]byte
	touchStack(pad[:])
}

//go:noinline
func touchStack(b []byte) { b[len(b)-1] = 1 }
