package feed

import (
	"github.com/nats-io/nats.go"

	"github.com/tickgate/tickgate/proto"
)

// For the external tests, which can import feedsim: the JSON fast path on
// its own (TestJSONFastPathTakesFeedsim).
var DecodeJSONFast = decodeJSONFast

// subPending is how many messages of ch wait in the NATS client.
func (s *Source) subPending(ch proto.Channel) int {
	s.mu.Lock()
	var sub *nats.Subscription
	if in := s.subs[ch]; in != nil {
		sub = in.sub
	}
	s.mu.Unlock()
	if sub == nil {
		return 0
	}
	n, _, _ := sub.Pending()
	return n
}
