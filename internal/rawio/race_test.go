//go:build race

package rawio

const raceEnabled = true // the race detector allocates
