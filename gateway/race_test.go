//go:build race

package gateway

// raceEnabled: the race detector slows tests about tenfold; long
// randomized tests run fewer rounds under it.
const raceEnabled = true
