//go:build !linux

package gateway

import "errors"

// poller has no readiness set on this system: read loops wait in the
// runtime's poller, a goroutine per connection.
type poller struct{}

func newPoller() (*poller, error)       { return nil, nil }
func (p *poller) arm(int32, bool) error { return errNoPoller }
func (p *poller) run(func([]int32))     {}
func (p *poller) close()                {}

var errNoPoller = errors.New("gateway: no readiness set on this system")
