package main

import (
	"fmt"
	"math"
	"strings"
)

// workload is one named load shape of the side-by-side comparison (issue
// 12): every server gets exactly the same connections, subscriptions and
// feed. Every channel is a ticker; the feed is JSON, the same bytes for
// every server.
type workload struct {
	name     string
	about    string  // one line for the report
	conns    int     // connections
	subs     int     // ticker channels per connection
	symbols  int     // symbols the feed publishes
	hz       float64 // messages per second per symbol; 0: no feed
	burst    int     // the feed publishes this many messages back to back; 1: evenly spaced
	stall    float64 // share of connections that stop reading
	perConnB bool    // the figure that matters is memory per connection
}

// workloadTable returns the named shapes (a function, not a global: the
// table is data every run reads afresh).
func workloadTable() []workload {
	return []workload{
		{name: "A", about: "10,000 conns x 5 subs, 100 symbols x 2 Hz", conns: 10_000, subs: 5, symbols: 100, hz: 2, burst: 1},
		{name: "B", about: "5,000 conns x 5 subs, 100 symbols x 8 Hz", conns: 5_000, subs: 5, symbols: 100, hz: 8, burst: 1},
		{name: "C", about: "200 conns x 50 subs, 100 symbols x 20 Hz, evenly spaced", conns: 200, subs: 50, symbols: 100, hz: 20, burst: 1},
		{name: "C-burst", about: "200 conns x 50 subs, 100 symbols x 20 Hz, in bursts of 20", conns: 200, subs: 50, symbols: 100, hz: 20, burst: 20},
		{name: "idle", about: "10,000 conns x 10 subs, no feed: memory per connection", conns: 10_000, subs: 10, symbols: 100, perConnB: true},
		{name: "stalled", about: "workload A with 1% of the connections not reading", conns: 10_000, subs: 5, symbols: 100, hz: 2, burst: 1, stall: 0.01},
	}
}

// lookupWorkload finds a workload by name.
func lookupWorkload(name string) (workload, error) {
	w, names, ok := byName(workloadTable(), func(w workload) string { return w.name }, name)
	if !ok {
		return workload{}, fmt.Errorf("--workload %q: want one of %s", name, names)
	}
	return w, nil
}

// workloadNames lists the names for usage.
func workloadNames() string {
	_, names, _ := byName(workloadTable(), func(w workload) string { return w.name }, "")
	return names
}

// byName finds the item called want in a table, and lists the table's
// names joined by "|" for messages.
func byName[T any](table []T, name func(T) string, want string) (found T, names string, ok bool) {
	all := make([]string, len(table))
	for i, it := range table {
		all[i] = name(it)
		if all[i] == want && !ok {
			found, ok = it, true
		}
	}
	return found, strings.Join(all, "|"), ok
}

// offered is the deliveries per second the workload asks of a server at
// feed rate multiple f, to the conns connections of which the share stall
// does not read: every healthy subscription gets its symbol's rate.
func (w workload) offered(conns int, stall, f float64) float64 {
	healthy := conns - int(math.Floor(float64(conns)*stall))
	return float64(healthy*w.subs) * w.hz * f
}
