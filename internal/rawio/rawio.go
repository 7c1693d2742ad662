// Package rawio reads and writes non-blocking sockets with system calls the
// Go runtime is not told about.
//
// A read or write made the usual way (syscall.Read, syscall.Write, and so
// net.Conn's) enters the runtime's syscall state and leaves it: on a
// process whose one processor goes idle between feed messages, the first
// such call after the idle spell wakes the runtime's monitor thread
// (sysmon) from its deep sleep, which then polls every 20 µs until it
// finds the process idle again. That is a wake-up, and a score of short
// sleeps, per feed message on a node that keeps up: 4–5% of the node's CPU
// in the evenly spaced workload (docs/benchmarks.md).
//
// A call on a non-blocking descriptor never waits, so the runtime has
// nothing to do for it: no processor to hand off while it runs. Read and
// Write make it without telling the runtime. Only for descriptors in
// non-blocking mode (every socket of package net): a call that may wait
// must not be made here, since it would hold its processor while it
// waits.
package rawio
