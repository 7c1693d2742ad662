package gateway

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/lxzan/gws"
)

// Compression (Config.Compression): permessage-deflate, RFC 7692, with no
// context takeover in either direction, so every message is compressed on
// its own and one compressed frame can be shared by every connection that
// negotiated the extension, exactly like a plain one.
//
// Frames are indexed by variant, not by codec: variant v is codec
// v%numCodecs, plain when v < numCodecs and deflated from there on. Every
// cache of shared frames (an event's update and gap, a snapshot, a status)
// is an array over the variants, and a connection reads its frames at its
// own variant (conn.variant). A deflated frame is made from its plain
// sibling, once per event and codec, however many connections get it.
//
// The handshake decides (deflateOffered) before the upgrade, so the
// welcome is already encoded in the connection's variant, and picks the
// upgrader accordingly: only the compressing upgraders, handed the one
// offer the node accepts, let gws answer with the extension and inflate
// the client's compressed frames (up to MaxMessageBytes inflated; see
// echoReasonConn for the close code).

// numVariants is how many forms a frame takes: each codec, plain and
// deflated.
const numVariants = 2 * numCodecs

// variantOf is the frame variant of codec ci, deflated or not.
func variantOf(ci int, deflated bool) int {
	if deflated {
		return ci + numCodecs
	}
	return ci
}

// deflateMinBytes is the smallest payload worth compressing. Below it a
// deflated payload saves a few bytes at best (heartbeats, acks, statuses,
// a lone trade) and costs a compressor run; such frames go out plain
// (RSV1 clear) on a compressed connection too, which RFC 7692 allows per
// message. The figure is measured (BenchmarkDeflateFrame and
// docs/benchmarks.md, "Compression").
const deflateMinBytes = 160

// deflateLevel is the compression level: on the node's small frames
// flate.BestSpeed gives 2-11% more bytes than the default level for about
// the same CPU (the compressor's per-message set-up dominates), and less
// CPU on snapshots (docs/benchmarks.md, "Compression";
// BenchmarkDeflateFrame's level6 cases).
// The compressor is klauspost/compress's (already gws's): on the node's
// frames it takes 1.1 to 1.6 times less CPU than the standard library's
// at the same level, for output as small or smaller up to a few KiB.
const deflateLevel = flate.BestSpeed

// deflateTail is the end of a sync flush, which RFC 7692 §7.2.1 has the
// sender remove and the receiver add back.
const deflateTail = "\x00\x00\xff\xff"

// rsv1 marks a data frame's payload as compressed (RFC 7692 §6).
const rsv1 = 0x40

// deflater compresses frames, with pooled compressors; safe for
// concurrent use.
type deflater struct {
	pool sync.Pool // of *deflateScratch
}

// deflateScratch is one compressor and the buffer it writes to.
type deflateScratch struct {
	w   *flate.Writer
	out appendBuffer
}

// appendBuffer is an io.Writer that appends to its slice.
type appendBuffer struct{ b []byte }

func (a *appendBuffer) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

func (d *deflater) get() *deflateScratch {
	if s, ok := d.pool.Get().(*deflateScratch); ok {
		return s
	}
	s := &deflateScratch{}
	s.w, _ = flate.NewWriter(&s.out, deflateLevel) // the level is valid
	return s
}

// maxPooledScratch bounds the buffer a pooled compressor keeps: one big
// snapshot must not pin its size in every pool slot.
const maxPooledScratch = 256 << 10

func (d *deflater) put(s *deflateScratch) {
	if cap(s.out.b) > maxPooledScratch {
		s.out.b = nil
	}
	d.pool.Put(s)
}

// frame returns plain, one complete unmasked data frame as codecSet.frame
// builds it, as a compressed frame in a new slice, and true; or plain
// itself and false when its payload is below deflateMinBytes or does not
// shrink.
func (d *deflater) frame(plain []byte) ([]byte, bool) {
	if len(plain) < 2 {
		return plain, false
	}
	payload := plain[frameHeaderLen(plain[1]):]
	if len(payload) < deflateMinBytes {
		return plain, false
	}
	s := d.get()
	defer d.put(s)
	s.out.b = s.out.b[:0]
	s.w.Reset(&s.out)
	if _, err := s.w.Write(payload); err != nil {
		return plain, false // appendBuffer never fails
	}
	if err := s.w.Flush(); err != nil {
		return plain, false
	}
	z := bytes.TrimSuffix(s.out.b, []byte(deflateTail))
	if len(z) >= len(payload) {
		return plain, false
	}
	f := appendFrameHeader(make([]byte, 0, maxFrameHeader+len(z)), 0, len(z))
	f[0] = plain[0] | rsv1 // FIN and the opcode of the plain frame
	return append(f, z...), true
}

// frameHeaderLen is the length of a server frame's header whose second
// byte is b1 (RFC 6455 §5.2; server frames are unmasked).
func frameHeaderLen(b1 byte) int {
	switch b1 & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// variantFrame returns frames[v], making it on first use: a plain variant
// by encode (with its codec), a deflated one from its plain sibling, made
// first when missing. Callers check frames[v] for nil first, so a frame
// already there costs no closure and no boxing of the value encode
// encodes.
func (cs *codecSet) variantFrame(frames *[numVariants][]byte, v int, encode func(ci int) []byte) []byte {
	if f := frames[v]; f != nil {
		return f
	}
	ci := v % numCodecs
	if frames[ci] == nil {
		frames[ci] = encode(ci)
	}
	if v != ci && frames[ci] != nil {
		frames[v] = cs.deflate(frames[ci])
	}
	return frames[v]
}

// frame returns v encoded as one complete frame of variant fv, or nil
// (logged) on failure: encoded with the variant's codec (encode), then,
// for a deflated variant, compressed.
func (cs *codecSet) frame(fv int, v any) []byte {
	f := cs.encode(fv%numCodecs, v)
	if fv < numCodecs || f == nil {
		return f
	}
	return cs.deflate(f)
}

// deflate returns plain compressed (deflater.frame), counting the frames
// actually compressed.
func (cs *codecSet) deflate(plain []byte) []byte {
	f, compressed := cs.z.frame(plain)
	if compressed {
		cs.compressions.Add(1)
	}
	return f
}

// The handshake's side of the extension.

// extensionsHeader is the request header of extension offers.
const extensionsHeader = "Sec-WebSocket-Extensions"

// deflateOffer is the one offer handed to gws when the node accepts
// one: gws answers it with "permessage-deflate; server_no_context_takeover;
// client_no_context_takeover", whatever the client offered.
const deflateOffer = "permessage-deflate"

// deflateOffered reports whether h offers permessage-deflate in a form
// the node accepts (RFC 7692 §7.1): some offer, in any Sec-WebSocket-
// Extensions line, of permessage-deflate whose parameters are each known,
// valid and given once, and do not ask the server for a window smaller
// than compress/flate's 32 KiB (server_max_window_bits below 15). The
// client's window (client_max_window_bits, with or without a value, as
// browsers send it) binds the client alone: the node inflates any window.
func deflateOffered(h http.Header) bool {
	for _, line := range h.Values(extensionsHeader) {
		for offer := range strings.SplitSeq(line, ",") {
			if acceptableDeflate(offer) {
				return true
			}
		}
	}
	return false
}

// acceptableDeflate reports whether one extension offer is an acceptable
// permessage-deflate offer.
func acceptableDeflate(offer string) bool {
	params := strings.Split(offer, ";")
	if !strings.EqualFold(strings.TrimSpace(params[0]), deflateOffer) {
		return false
	}
	seen := make(map[string]bool, len(params))
	for _, p := range params[1:] {
		name, value, hasValue := strings.Cut(p, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		value = strings.Trim(strings.TrimSpace(value), `"`)
		if seen[name] {
			return false // a parameter given twice
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if hasValue {
				return false
			}
		case "server_max_window_bits":
			if bits, ok := windowBits(value); !hasValue || !ok || bits != 15 {
				return false
			}
		case "client_max_window_bits":
			if _, ok := windowBits(value); hasValue && !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// windowBits parses a window-bits value: 8 to 15.
func windowBits(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 8 && n <= 15 && s[0] != '+'
}

// withDeflate is opt negotiating permessage-deflate with no context
// takeover either way; gws then inflates the client's compressed frames
// up to opt.ReadMaxPayloadSize. Its own compression of what it writes
// (close frames only: every data frame is the node's) stays unused.
func withDeflate(opt gws.ServerOption) *gws.ServerOption {
	opt.PermessageDeflate = gws.PermessageDeflate{
		Enabled:               true,
		ServerContextTakeover: false,
		ClientContextTakeover: false,
		// Inflaters gws keeps per upgrader, each with a compressor the
		// node never uses: about 540 KiB apiece, made at start. Client
		// commands are few and small, so one per upgrader (shared under
		// a lock by its connections) is plenty.
		PoolSize: 1,
	}
	return &opt
}

// upgradersFor returns the upgraders for c's handshake, whose request
// header is h: the compressing ones when the node compresses and h offers
// permessage-deflate acceptably, with c's frames made deflated from the
// welcome on. The accepted offer is then the only one gws sees, and none
// is left for the plain upgraders (which never negotiate it anyway).
func (s *Server) upgradersFor(c *conn, h http.Header) *[numCodecs + 1]*gws.Upgrader {
	if !s.cfg.Compression {
		return &s.upgraders
	}
	if !deflateOffered(h) {
		h.Del(extensionsHeader)
		return &s.upgraders
	}
	h.Set(extensionsHeader, deflateOffer)
	c.variant = variantOf(c.codecIdx, true)
	return &s.deflaters
}
