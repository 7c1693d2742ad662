package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/tickgate/tickgate/proto"
)

// jsonCodec is the tickgate.v1.json codec. It has no state.
type jsonCodec struct{}

func (jsonCodec) Name() string        { return "json" }
func (jsonCodec) Subprotocol() string { return proto.SubprotocolJSON }
func (jsonCodec) Binary() bool        { return false }

// jsonEncoder is a pooled json.Encoder bound to a sliceWriter.
type jsonEncoder struct {
	w   sliceWriter
	enc *json.Encoder
}

// jsonEncoders recycles JSON encoders across Append calls; sync.Pool is
// safe for concurrent use and holds no observable state.
var jsonEncoders = sync.Pool{New: func() any {
	e := new(jsonEncoder)
	e.enc = json.NewEncoder(&e.w)
	// The bytes go to JSON.parse, never into HTML: keep <, > and & as is.
	e.enc.SetEscapeHTML(false)
	return e
}}

// Append implements Codec. The output is one JSON object without a
// trailing newline, valid UTF-8.
func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	v = normalize(v)
	// An update of a market kind, the frame every subscriber shares, is
	// written by hand (jsonfast.go); the rest goes through encoding/json.
	switch u := v.(type) {
	case proto.Update:
		if out, ok := appendUpdateJSON(dst, &u); ok {
			return out, nil
		}
	case *proto.Update:
		if u != nil {
			if out, ok := appendUpdateJSON(dst, u); ok {
				return out, nil
			}
		}
	}
	e := jsonEncoders.Get().(*jsonEncoder)
	e.w.b = dst
	err := e.enc.Encode(v)
	out := e.w.b
	e.w.b = nil
	jsonEncoders.Put(e)
	if err != nil {
		return dst, fmt.Errorf("codec: json encode %T: %w", v, err)
	}
	// json.Encoder terminates each value with '\n'; a frame needs none.
	if n := len(out); n > len(dst) && out[n-1] == '\n' {
		out = out[:n-1]
	}
	return out, nil
}

// Decode implements Codec. encoding/json matches keys
// case-insensitively; senders should not rely on it.
func (jsonCodec) Decode(b []byte, v any) error {
	if _, err := checkJSON(b, nil); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: json: %w", ErrMalformed, err)
	}
	return nil
}

// commandKeys returns the json keys of proto.Command.
func commandKeys() [10]string {
	return [...]string{"op", "id", "channels", "throttle_ms", "snapshot", "since", "token", "depth", "recent", "bars"}
}

// DecodeCommand implements Codec. Keys match exactly, as in msgpack:
// encoding/json alone would also take "OP" or "Channels" for a field.
func (jsonCodec) DecodeCommand(b []byte, cmd *proto.Command) error {
	*cmd = proto.Command{}
	keys := commandKeys()
	inexact, err := checkJSON(b, keys[:])
	if err != nil {
		return err
	}
	if inexact {
		err = decodeJSONExact(b, cmd)
	} else {
		err = json.Unmarshal(b, cmd)
	}
	if err != nil {
		*cmd = proto.Command{ID: jsonCommandID(b)}
		return fmt.Errorf("%w: json: %w", ErrMalformed, err)
	}
	return nil
}

// jsonCommandID is the integer "id" (exact key) of b, a JSON object that
// checkJSON accepted, or nil. It runs only after a failed decode, for the
// error reply.
func jsonCommandID(b []byte) *int64 {
	var raw map[string]json.RawMessage
	if json.Unmarshal(b, &raw) != nil {
		return nil
	}
	var id *int64
	if v, ok := raw["id"]; !ok || json.Unmarshal(v, &id) != nil {
		return nil
	}
	return id
}

// decodeJSONExact decodes a command whose top-level keys include one that
// encoding/json would match to a field without being its exact name (or one
// written with escapes). It is the rare path: each known key is picked from
// the object by its exact name and decoded on its own; the others are
// ignored.
func decodeJSONExact(b []byte, cmd *proto.Command) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	fields := [...]any{&cmd.Op, &cmd.ID, &cmd.Channels, &cmd.ThrottleMS, &cmd.Snapshot, &cmd.Since, &cmd.Token, &cmd.Depth, &cmd.Recent, &cmd.Bars}
	for i, key := range commandKeys() {
		if v, ok := raw[key]; ok {
			if err := json.Unmarshal(v, fields[i]); err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
		}
	}
	return nil
}

// checkJSON checks what encoding/json does not: the top-level value is an
// object, and objects and arrays nest at most maxDepth deep (encoding/json
// allows 10000, and its parser stack grows with the depth). Everything else,
// including trailing garbage, is left to json.Unmarshal. inexact reports a
// top-level key that encoding/json would match to one of keys although it is
// not that key exactly: it differs in case, or it holds an escape.
func checkJSON(b []byte, keys []string) (inexact bool, err error) {
	i := 0
	for i < len(b) && isJSONSpace(b[i]) {
		i++
	}
	if i == len(b) {
		return false, fmt.Errorf("%w: json: empty message", ErrMalformed)
	}
	if b[i] != '{' {
		return false, fmt.Errorf("%w: json: top-level value is not an object", ErrMalformed)
	}
	depth := 0
	inString, escaped := false, false
	expectKey := false // the next string at depth 1 is a key
	keyStart := -1     // offset of the top-level key being read
	for ; i < len(b); i++ {
		c := b[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				if keyStart >= 0 {
					inexact = inexact || inexactKey(b[keyStart:i], keys)
					keyStart = -1
				}
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			if depth == 1 && expectKey {
				keyStart = i + 1
				expectKey = false
			}
		case '{', '[':
			depth++
			if depth > maxDepth {
				return false, fmt.Errorf("%w: json: nested deeper than %d at offset %d", ErrMalformed, maxDepth, i)
			}
			expectKey = depth == 1
		case '}', ']':
			depth--
		case ',':
			expectKey = depth == 1
		}
	}
	return inexact, nil
}

// inexactKey reports whether the raw key k holds an escape or matches one
// of keys the way encoding/json folds names without being equal to it.
func inexactKey(k []byte, keys []string) bool {
	if len(keys) == 0 {
		return false
	}
	if bytes.IndexByte(k, '\\') >= 0 {
		return true
	}
	for _, key := range keys {
		if string(k) != key && bytes.EqualFold(k, []byte(key)) {
			return true
		}
	}
	return false
}

func isJSONSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
