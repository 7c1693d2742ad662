package codec

import (
	"testing"

	"github.com/tickgate/tickgate/proto"
)

func benchmarkAppendUpdate(b *testing.B, c Codec) {
	tests := map[string]*proto.Update{
		"book5":  {Type: proto.TypeUpdate, Channel: "book.BTC-USD", Seq: 1207, Prev: 1206, N: 1, Data: book5()},
		"ticker": {Type: proto.TypeUpdate, Channel: "ticker.BTC-USD", Seq: 1207, Prev: 1206, N: 1, Data: ticker()},
	}
	for name, msg := range tests {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				var err error
				if buf, err = c.Append(buf[:0], msg); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(buf)))
		})
	}
}

func BenchmarkAppendUpdateJSON(b *testing.B)    { benchmarkAppendUpdate(b, JSON()) }
func BenchmarkAppendUpdateMsgpack(b *testing.B) { benchmarkAppendUpdate(b, Msgpack()) }

func benchmarkDecodeCommand(b *testing.B, c Codec) {
	in := encodeFor(b, c, `{"op":"subscribe","id":1,"channels":["ticker.BTC-USD","book.ETH-USD"],"throttle_ms":250,"snapshot":true}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	var cmd proto.Command
	for b.Loop() {
		if err := c.DecodeCommand(in, &cmd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommandJSON(b *testing.B)    { benchmarkDecodeCommand(b, JSON()) }
func BenchmarkDecodeCommandMsgpack(b *testing.B) { benchmarkDecodeCommand(b, Msgpack()) }
