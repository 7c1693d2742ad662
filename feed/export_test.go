package feed

// For the external tests, which can import feedsim: the JSON fast path on
// its own (TestJSONFastPathTakesFeedsim).
var DecodeJSONFast = decodeJSONFast

// received is how many feed messages the node's NATS client has taken
// off its socket, for any channel.
func (s *Source) received() uint64 { return s.nc.Stats().InMsgs }
