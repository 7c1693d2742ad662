// Package client is the Go client of tickgate: it keeps a correct view of
// the market a gateway serves, across reconnects, drains and token expiry
// (the wire protocol is docs/protocol.md; the guide is docs/clients.md).
//
//	c, err := client.Dial(ctx, "wss://md.example.com:8443/v1/ws", client.Options{
//		TokenSource: func(ctx context.Context) (string, error) { return fetchToken(ctx) },
//		OnEvent: func(e client.Event) {
//			if e.Book != nil { // verified against the node's checksum
//				bid, _ := e.Book.BestBid()
//				ask, _ := e.Book.BestAsk()
//				fmt.Println(e.Channel, bid, ask)
//			}
//		},
//	})
//	...
//	accepted, err := c.Subscribe(ctx, []string{"book.BTC-USD", "trade.BTC-USD"})
//	...
//	defer c.Close()
//
// # Connection
//
// Dial connects (TLS, the token in the Authorization header or a bearer.
// subprotocol entry, JSON or msgpack) and returns once the first welcome
// arrived. From then on the client reconnects on any loss, with
// exponential backoff and full jitter, and by what ended the connection
// (docs/protocol.md §7.3): after a drain (1001, reconnect notice) at once
// with a little jitter; after 4001 at once with a token asked anew; after
// 4008 at least Options.SlowConsumerDelay later; after 1008 and the other
// codes that blame the client, and after 401/403/400 handshake answers,
// never faster than BackoffMax/2; a 429 or 503 answer's Retry-After is
// honoured. The TokenSource is called before every attempt and before the
// token expires, to refresh it on the open connection (the auth op).
//
// # Channels
//
// Subscribe and Unsubscribe wait for the node's answer and return its
// errors as *ServerError values matching the sentinels (ErrForbidden,
// ErrBadChannel, ErrRateLimited, ErrUnavailable with RetryAfter, ...). The
// client keeps every subscribed channel across reconnects: on each new
// connection it re-subscribes them, each with since = the last seq it
// holds. A channel the node resumes goes on (Event.Resumed, Stats.Resumed);
// any other restarts from a fresh snapshot, and a trade channel reports
// the trades it may have missed (GapHistory).
//
// Per channel, the client checks every update's prev against the last seq
// it holds and every book checksum (docs/protocol.md §5.2, §5.5, §5.8). On
// a gap or a mismatch it reports the gap (EventGap), re-subscribes that
// channel itself (with since when the state it holds is still right),
// ignores the rest of the old chain, and never hands over state it knows
// to be wrong. Each channel is StateLive, StateResyncing or StateStale
// (EventState), and the node's contract-1.1 status messages map onto
// these. The rules are pinned by proto/testdata/conformance, which the
// browser module and the node's own book code pass too.
//
// Book is the order book kept by the contract's rules: levels keyed by
// numeric price, each keeping the text of its most recent update, sorted
// best first, with the contract's checksum. Client.Book, Client.Ticker
// and Client.State read the current state at any time.
//
// # Delivery, and a slow handler
//
// Events reach Options.OnEvent on one goroutine of the client's, in order
// per channel; never on the socket's read loop, which keeps reading,
// applying and verifying at the network's pace whatever the handler does.
// While the handler is behind, events wait in a bounded queue, by the
// rules the node itself applies to a slow socket (docs/protocol.md §5.1):
//
//   - book and ticker events fold: a channel never has more than one data
//     event waiting; the handler then gets the newest verified state, with
//     Event.N saying how many messages it covers and Event.Delta every
//     level change in order (or, once the deltas outgrow the book, a
//     snapshot of it);
//   - trades wait one by one, up to Options.MaxPending events in all;
//     trades beyond that are dropped, and reported in their place as one
//     EventGap (GapOverflow) naming the dropped seqs, so the handler knows
//     exactly which trades it did not see;
//   - gaps, state changes and connection events are never folded.
//
// So a handler that stalls costs bounded memory and never a disconnect
// (the node never sees a slow reader); a book handler always catches up
// to the true book. Event.Book is the client's copy, valid only during
// the call. A handler may call every method of the Client except Close.
package client
