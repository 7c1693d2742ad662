package feed

// For the external tests, which can import feedsim: the JSON fast path on
// its own (TestJSONFastPathTakesFeedsim).
var DecodeJSONFast = decodeJSONFast
