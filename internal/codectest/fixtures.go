package codectest

import "github.com/tickgate/tickgate/proto"

// The same market data as Go values and as the JSON text a publisher
// sends, for the codec's encoding tests and the feed's decoding tests.

// Book5 is a five-level book snapshot; Book5JSON is its JSON.
func Book5() *proto.Book {
	return &proto.Book{
		Symbol: "BTC-USD",
		Bids: []proto.Level{
			{"64000.10", "1.5"}, {"64000.00", "2"}, {"63999.90", "0.25"},
			{"63999.50", "3.1"}, {"63998.00", "10"},
		},
		Asks: []proto.Level{
			{"64000.20", "0.7"}, {"64000.30", "1"}, {"64000.90", "4.2"},
			{"64001.00", "0.01"}, {"64002.50", "7"},
		},
		Checksum: 123456789,
		TS:       1767225600123456789,
	}
}

// Ticker is a ticker; TickerJSON is its JSON.
func Ticker() *proto.Ticker {
	return &proto.Ticker{
		Symbol: "BTC-USD", Bid: "64000.10", BidSize: "1.5", Ask: "64000.20",
		AskSize: "0.7", Last: "64000.15", Volume: "1234.5", TS: 1767225600123456789,
	}
}

// Trade is a trade; TradeJSON is its JSON.
func Trade() *proto.Trade {
	return &proto.Trade{
		Symbol: "BTC-USD", ID: 991, Price: "64000.15", Size: "0.01",
		Side: proto.SideBuy, TS: 1767225600123456789,
	}
}

// The JSON of Ticker, Trade and Book5, as encoding/json writes them.
const (
	TickerJSON = `{"symbol":"BTC-USD","bid":"64000.10","bid_size":"1.5","ask":"64000.20","ask_size":"0.7","last":"64000.15","volume":"1234.5","ts":1767225600123456789}`
	TradeJSON  = `{"symbol":"BTC-USD","id":991,"price":"64000.15","size":"0.01","side":"buy","ts":1767225600123456789}`
	Book5JSON  = `{"symbol":"BTC-USD",` +
		`"bids":[["64000.10","1.5"],["64000.00","2"],["63999.90","0.25"],["63999.50","3.1"],["63998.00","10"]],` +
		`"asks":[["64000.20","0.7"],["64000.30","1"],["64000.90","4.2"],["64001.00","0.01"],["64002.50","7"]],` +
		`"checksum":123456789,"ts":1767225600123456789}`
)
