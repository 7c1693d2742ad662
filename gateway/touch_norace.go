//go:build !race

package gateway

// touching: the sweep reads its connections' lines first (touch.go).
const touching = true
