package codec

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// DecodeMessage decodes one server message b, encoded with c, into v (a
// pointer to a struct or map). It is the client side of Append: for Go
// clients, load generators and tests. msgpack input passes the same
// length and depth checks as commands before it is decoded.
func DecodeMessage(c Codec, b []byte, v any) error {
	if c.Binary() {
		if err := validateMsgpack(b); err != nil {
			return err
		}
		if err := msgpack.Unmarshal(b, v); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return nil
}
