package codec

// DecodeMessage decodes one server message b, encoded with c, into v (a
// pointer to a struct or map): c.Decode. It is the client side of Append,
// for Go clients, load generators and tests.
func DecodeMessage(c Codec, b []byte, v any) error { return c.Decode(b, v) }

// Raw is one value of a decoded map kept as its encoded bytes, in the
// codec that decoded the map, for a later Decode once its type is known
// (a feed payload's data, whose shape depends on the channel's kind).
// IsNull reports a value that was null (or absent).
type Raw []byte

// IsNull reports whether r holds no value: absent, JSON null or msgpack
// nil.
func (r Raw) IsNull() bool {
	return len(r) == 0 || len(r) == 1 && r[0] == 0xc0 || string(r) == "null"
}

// UnmarshalJSON implements json.Unmarshaler: it keeps a copy of b.
func (r *Raw) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}
