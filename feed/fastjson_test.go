package feed

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/tickgate/tickgate/codec"
	"github.com/tickgate/tickgate/internal/codectest"
	"github.com/tickgate/tickgate/proto"
)

// fastKinds are the kinds whose data the JSON fast path reads, by
// FuzzJSONFastPath's kind%4.
var fastKinds = [4]proto.Kind{proto.KindTicker, proto.KindBook, proto.KindTrade, proto.KindCandle}

// candleJSON is a candle bar as a publisher sends it.
const candleJSON = `{"symbol":"BTC-USD","interval":"1m","start":1767225600000000000,"open":"64000.10",` +
	`"high":"64010","low":"63990.5","close":"64001","volume":"12.5","trades":42,"closed":true,"ts":1767225659000000000}`

// compareJSONPaths decodes payload as data of kind k on the fast path and
// on the slow one. The fast path either declines it, leaving its data
// zero, or returns what the slow path returns; it copies what it keeps
// (clobbering the payload afterwards changes nothing). handled reports
// whether the fast path took it.
func compareJSONPaths(t testing.TB, payload []byte, k proto.Kind) (handled bool) {
	t.Helper()
	in := bytes.Clone(payload)
	fast, slow := k.Spec().Data(), k.Spec().Data()
	seq, typ, ok := decodeJSONFast(in, fast)
	if !ok {
		if !reflect.DeepEqual(fast, k.Spec().Data()) {
			t.Fatalf("fast path declined %q but wrote %+v", payload, fast)
		}
		return false
	}
	for i := range in {
		in[i] = 'X'
	}
	sseq, styp, err := decodeEnvelopeSlow(payload, slow)
	if err != nil {
		t.Fatalf("fast path took %q, which the slow path rejects: %v", payload, err)
	}
	if seq != sseq || typ != styp || !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q as %v:\nfast %d %q %#v\nslow %d %q %#v", payload, k, seq, typ, fast, sseq, styp, slow)
	}
	return true
}

// env wraps data in an update envelope of seq 1.
func env(data string) string { return `{"seq":1,"type":"update","data":` + data + `}` }

// jsonFastEdges are payloads the fast path must take (handled) or leave to
// the slow path, each decoded as data of kind.
var jsonFastEdges = map[string]struct {
	in      string
	kind    proto.Kind
	handled bool
}{
	"ticker":                 {env(codectest.TickerJSON), proto.KindTicker, true},
	"trade":                  {env(codectest.TradeJSON), proto.KindTrade, true},
	"book snapshot":          {`{"seq":1200,"type":"snapshot","data":` + codectest.Book5JSON + `}`, proto.KindBook, true},
	"candle":                 {env(candleJSON), proto.KindCandle, true},
	"candle open":            {env(`{"closed":false,"trades":0}`), proto.KindCandle, true},
	"book update":            {`{"type":"update","data":{"bids":[["64000.10","0"]],"asks":[],"checksum":42,"ts":5},"seq":1201}`, proto.KindBook, true},
	"empty levels":           {env(`{"bids":[],"asks":[ ]}`), proto.KindBook, true},
	"empty data":             {env(`{}`), proto.KindBook, true},
	"missing data":           {`{"seq":3,"type":"update"}`, proto.KindBook, true},
	"data null":              {env(`null`), proto.KindTicker, true},
	"heartbeat":              {`{"seq":5,"type":"heartbeat","data":null}`, proto.KindTrade, true},
	"heartbeat seq 0":        {`{"type":"heartbeat","seq":0}`, proto.KindBook, true},
	"missing seq":            {`{"type":"update","data":{}}`, proto.KindTicker, true},
	"any key order":          {`{"data":{"ts":1,"bid":"1","symbol":"X"},"type":"snapshot","seq":9}`, proto.KindTicker, true},
	"whitespace":             {"{ \"seq\" : 1 ,\n\"type\":\t\"update\" , \"data\" : { \"bids\" : [ [ \"1\" , \"2\" ] , [\"3\",\"4\"] ] } }\r\n ", proto.KindBook, true},
	"unknown scalar keys":    {`{"seq":1,"v":2,"x":"y","z":null,"f":-1.5e+3,"g":0.5,"h":1E9,"t":true,"type":"update","data":{"extra":false,"":0,"bid":"1"}}`, proto.KindTicker, true},
	"unknown big number":     {env(`{"x":1e999,"y":123456789012345678901234567890}`), proto.KindTrade, true},
	"other kind's data":      {env(codectest.TickerJSON), proto.KindBook, true},
	"empty strings":          {env(`{"symbol":"","bids":[["",""]]}`), proto.KindBook, true},
	"del byte":               {env("{\"symbol\":\"a\x7fb\"}"), proto.KindTicker, true},
	"max seq":                {`{"seq":18446744073709551615,"type":"update"}`, proto.KindTicker, true},
	"max ts":                 {env(`{"ts":9223372036854775807}`), proto.KindTicker, true},
	"max checksum":           {env(`{"checksum":4294967295}`), proto.KindBook, true},
	"seq 0":                  {`{"seq":0,"type":"update","data":{}}`, proto.KindTicker, true},
	"nested junk in unknown": {env(`{"extra":[1,{"a":null}],"bid":"1"}`), proto.KindTicker, false},
	"unknown object":         {`{"seq":1,"type":"update","meta":{},"data":{}}`, proto.KindTicker, false},
	"deep unknown":           {env(`{"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), proto.KindTicker, false},
	"case-variant seq":       {`{"SEQ":1,"type":"update","data":{}}`, proto.KindTicker, false},
	"case-variant data":      {`{"seq":1,"type":"update","Data":{"bid":"1"}}`, proto.KindTicker, false},
	"case-variant field":     {env(`{"Bid":"1"}`), proto.KindTicker, false},
	"case-variant levels":    {env(`{"BIDS":[]}`), proto.KindBook, false},
	"duplicate seq":          {`{"seq":1,"seq":2,"type":"update"}`, proto.KindTicker, false},
	"duplicate data":         {`{"seq":1,"type":"update","data":{"bid":"1"},"data":{"ask":"2"}}`, proto.KindTicker, false},
	"duplicate data null":    {`{"seq":1,"type":"update","data":{"bid":"1"},"data":null}`, proto.KindTicker, false},
	"duplicate field":        {env(`{"bid":"1","bid":"2"}`), proto.KindTicker, false},
	"duplicate levels":       {env(`{"bids":[["1","1"]],"bids":[]}`), proto.KindBook, false},
	"escape in value":        {env(`{"bid":"6\u0034"}`), proto.KindTicker, false},
	"escaped quote":          {env(`{"symbol":"a\"b"}`), proto.KindTicker, false},
	"escape in key":          {`{"seq":1,"type":"update","d\u0061ta":{}}`, proto.KindTicker, false},
	"escape in type":         {`{"seq":1,"type":"upd\u0061te"}`, proto.KindTicker, false},
	"unicode":                {env(`{"symbol":"BTC-€"}`), proto.KindTicker, false},
	"unicode folding key":    {env(`{"ſymbol":"X"}`), proto.KindTicker, false},
	"control byte":           {env("{\"symbol\":\"a\x01b\"}"), proto.KindTicker, false},
	"null field":             {env(`{"bid":null}`), proto.KindTicker, false},
	"null ts":                {env(`{"ts":null}`), proto.KindTicker, false},
	"null seq":               {`{"seq":null,"type":"update"}`, proto.KindTicker, false},
	"null type":              {`{"seq":1,"type":null}`, proto.KindTicker, false},
	"null levels":            {env(`{"bids":null}`), proto.KindBook, false},
	"null price":             {env(`{"bids":[[null,"1"]]}`), proto.KindBook, false},
	"null closed":            {env(`{"closed":null}`), proto.KindCandle, false},
	"seq overflow":           {`{"seq":18446744073709551616,"type":"update"}`, proto.KindTicker, false},
	"ts overflow":            {env(`{"ts":9223372036854775808}`), proto.KindTicker, false},
	"checksum overflow":      {env(`{"checksum":4294967296}`), proto.KindBook, false},
	"seq 1e3":                {`{"seq":1e3,"type":"update"}`, proto.KindTicker, false},
	"seq -0":                 {`{"seq":-0,"type":"update"}`, proto.KindTicker, false},
	"seq 01":                 {`{"seq":01,"type":"update"}`, proto.KindTicker, false},
	"seq 1.0":                {`{"seq":1.0,"type":"update"}`, proto.KindTicker, false},
	"negative ts":            {env(`{"ts":-5}`), proto.KindTrade, false},
	"float id":               {env(`{"id":1.5}`), proto.KindTrade, false},
	"string ts":              {env(`{"ts":"1"}`), proto.KindTrade, false},
	"number price":           {env(`{"price":1}`), proto.KindTrade, false},
	"closed 1":               {env(`{"closed":1}`), proto.KindCandle, false},
	"closed string":          {env(`{"closed":"true"}`), proto.KindCandle, false},
	"literal run-on":         {env(`{"closed":truex}`), proto.KindCandle, false},
	"number run-on":          {env(`{"id":5x}`), proto.KindTrade, false},
	"level of 1":             {env(`{"bids":[["1"]]}`), proto.KindBook, false},
	"level of 3":             {env(`{"bids":[["1","2","3"]]}`), proto.KindBook, false},
	"level of numbers":       {env(`{"bids":[[1,2]]}`), proto.KindBook, false},
	"levels object":          {env(`{"bids":{"a":"b"}}`), proto.KindBook, false},
	"trailing comma":         {env(`{"bids":[["1","2"],]}`), proto.KindBook, false},
	"empty object":           {`{}`, proto.KindTicker, false},
	"missing type":           {`{"seq":1,"data":{}}`, proto.KindTicker, false},
	"bad type":               {`{"seq":1,"type":"delta","data":{}}`, proto.KindTicker, false},
	"type case":              {`{"seq":1,"type":"Update"}`, proto.KindTicker, false},
	"data string":            {env(`"x"`), proto.KindTicker, false},
	"data array":             {env(`[1,2]`), proto.KindTicker, false},
	"data number":            {env(`1`), proto.KindTicker, false},
	"trailing object":        {env(`{}`) + ` {}`, proto.KindTicker, false},
	"trailing byte":          {env(`{}`) + `x`, proto.KindTicker, false},
	"leading space":          {" " + env(`{}`), proto.KindTicker, false},
	"form feed":              {"{\f\"seq\":1,\"type\":\"update\"}", proto.KindTicker, false},
	"truncated type":         {`{"seq":1,"type":"upd`, proto.KindTicker, false},
	"truncated data":         {`{"seq":1,"type":"update","data":{"bid":"1"`, proto.KindTicker, false},
	"truncated level":        {`{"seq":1,"type":"update","data":{"bids":[["1","2"]`, proto.KindBook, false},
	"missing colon":          {`{"seq" 1,"type":"update"}`, proto.KindTicker, false},
	"top-level array":        {`[1,"update",{}]`, proto.KindTicker, false},
	"empty":                  {``, proto.KindTicker, false},
}

// TestJSONFastPathEdges: the fast path takes or declines each edge case as
// the table says, and what it takes decodes as on the slow path.
func TestJSONFastPathEdges(t *testing.T) {
	for name, tc := range jsonFastEdges {
		t.Run(name, func(t *testing.T) {
			if got := compareJSONPaths(t, []byte(tc.in), tc.kind); got != tc.handled {
				t.Fatalf("fast path handled %q: %v, want %v", tc.in, got, tc.handled)
			}
		})
	}
}

// TestJSONFastPathSharesOneString: a message's strings are slices of one
// allocation, besides its data and its levels.
func TestJSONFastPathSharesOneString(t *testing.T) {
	tests := map[string]struct {
		in     string
		kind   proto.Kind
		allocs float64
	}{
		"ticker": {env(codectest.TickerJSON), proto.KindTicker, 2},   // the Ticker, the strings
		"book":   {env(codectest.Book5JSON), proto.KindBook, 4},      // the Book, two sides, the strings
		"empty":  {`{"seq":1,"type":"update"}`, proto.KindTicker, 1}, // the Ticker
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := []byte(tc.in)
			n := testing.AllocsPerRun(100, func() {
				if _, _, ok := decodeJSONFast(in, tc.kind.Spec().Data()); !ok {
					t.Fatal("declined")
				}
			})
			if n > tc.allocs {
				t.Fatalf("%v allocations, want at most %v", n, tc.allocs)
			}
		})
	}
}

// corpusPayloads returns the payloads of FuzzFeedDecode's corpus files.
func corpusPayloads(f *testing.F) [][]byte {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzFeedDecode", "*"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
				if err != nil {
					f.Fatalf("%s: %v", name, err)
				}
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

// FuzzJSONFastPath decodes arbitrary payloads on the fast and the slow
// path (compareJSONPaths): the fast path declines or agrees.
func FuzzJSONFastPath(f *testing.F) {
	seeds := append(feedSeeds(f), corpusPayloads(f)...)
	for _, tc := range jsonFastEdges {
		seeds = append(seeds, []byte(tc.in))
	}
	snap, err := codec.JSON().Append(nil, proto.FeedMessage{Seq: 3, Type: proto.FeedSnapshot, Data: codectest.Book5()})
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, snap, []byte(env(candleJSON)))
	for _, s := range seeds {
		if codec.ForFeed(s) == codec.JSON() {
			for kind := range byte(len(fastKinds)) {
				f.Add(s, kind)
			}
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte, kind byte) {
		compareJSONPaths(t, payload, fastKinds[int(kind)%len(fastKinds)])
	})
}

// TestJSONFastPathMutations runs compareJSONPaths on every one-byte change
// of typical payloads: each byte deleted, doubled, its letter's case
// flipped, or replaced by a byte that matters to JSON; and every prefix.
func TestJSONFastPathMutations(t *testing.T) {
	payloads := map[proto.Kind][]string{
		proto.KindTicker: {env(codectest.TickerJSON)},
		proto.KindTrade:  {env(codectest.TradeJSON)},
		proto.KindBook:   {`{"seq":1200,"type":"snapshot","data":` + codectest.Book5JSON + `}`, env(`{"bids":[["1","2"]],"asks":[],"checksum":42,"ts":5}`)},
		proto.KindCandle: {env(candleJSON)},
	}
	const replacements = "\"\\ \t0192-+.eEn[]{},:A\x00\x7f\x80"
	for k, ps := range payloads {
		for _, p := range ps {
			for i := range len(p) {
				var muts []string
				muts = append(muts, p[:i], p[:i]+p[i+1:], p[:i+1]+p[i:])
				if c := p[i]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' {
					muts = append(muts, p[:i]+string(c^0x20)+p[i+1:])
				}
				for _, c := range []byte(replacements) {
					muts = append(muts, p[:i]+string([]byte{c})+p[i+1:])
				}
				for _, m := range muts {
					compareJSONPaths(t, []byte(m), k)
				}
			}
		}
	}
}
