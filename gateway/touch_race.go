//go:build race

package gateway

// touching is off under the race detector, which would report the
// sweep's unsynchronized reads of its connections' lines (touch.go).
const touching = false
