package feed

import "errors"

// Sentinel errors. Returned errors wrap one of these; test with errors.Is.
var (
	// ErrBadConfig reports an invalid Config.
	ErrBadConfig = errors.New("feed: bad config")
	// ErrSubscribe reports that a NATS subscription could not be set up or
	// was not confirmed by the server in time.
	ErrSubscribe = errors.New("feed: subscribe failed")
	// ErrUnavailable reports that a channel needs the NATS server while
	// the node has no connection to it: refused at once, not waited for.
	ErrUnavailable = errors.New("feed: nats unavailable")
	// ErrPending is Pending.Err before the subscription was confirmed or
	// failed.
	ErrPending = errors.New("feed: subscription not confirmed yet")
	// ErrClosed reports use of a closed Source.
	ErrClosed = errors.New("feed: source closed")
	// ErrBadFeedMessage reports a feed payload that does not decode or does
	// not satisfy the feed contract (docs/protocol.md §9).
	ErrBadFeedMessage = errors.New("feed: bad feed message")
)
