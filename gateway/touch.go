package gateway

import (
	"crypto/tls"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Touching the held connections' lines before their writer rounds.
//
// A fan-out to a hundred connections runs a hundred writer rounds one
// after another (wakes.go, sweepHeld), and on a node with thousands of
// connections each round's first reads of its connection, socket and,
// with TLS, tls.Conn and its cipher are misses: about twenty-five lines
// per round on TLS, each waited for alone, since each round's reads follow
// one another and a send(2) separates one round from the next. So the
// sweep first reads one word of each of those lines for every connection
// it holds (touchHeld): the loads do not depend on one another across
// connections, the CPU keeps many in flight, and the rounds then find
// their lines in cache. In seven pairs of profiles of A over TLS it cut
// crypto/tls's and AES-GCM's part of a delivery by a third to a half,
// and the node's user time in six, for 0.4-0.9 µs per delivery spent
// touching; in turns the node was 3% faster there (docs/benchmarks.md,
// *Touching the sweep's lines*).
//
// The words are read without synchronization while other goroutines may
// write some of them (a connection's own writer goroutine, its read loop
// under tls.Conn): a read whose value is dropped, of memory that stays
// valid (every pointer followed is read from a field that changes only
// when TLS changes keys, and holds its object alive while it is in a
// register). The race detector would report them all the same, so race
// builds touch nothing (touch_race.go).
//
// crypto/tls keeps its state private: tlsLines finds the fields a write
// reads by name, once, and the cipher's objects by their types, learned
// from the first connections (touches.learn). A Go release that renames
// them makes TLS connections go untouched, and TestTLSLinesFound fail.

// tlsLines is what findTLSLines found in this binary's tls.Conn: the
// offset of one word on each cache line tls.Conn.Write reads, and of the
// write cipher (an interface value: its type word, then its data).
type tlsLines struct {
	words  [7]uintptr // Static: offsets in tls.Conn, one per line.
	cipher uintptr    // Static: offset of out.cipher.
	ok     bool       // Static: every field was found.
}

// tlsConnLines is tlsLines for this binary's tls.Conn: a fact of the Go
// release the node was built with, looked up once.
var tlsConnLines = findTLSLines()

func findTLSLines() tlsLines {
	t := reflect.TypeFor[tls.Conn]()
	out, ok := t.FieldByName("out")
	if !ok || out.Type.Kind() != reflect.Struct {
		return tlsLines{}
	}
	var l tlsLines
	// Fields that stay put after the handshake, one on each line that
	// Write, writeRecordLocked, maxPayloadSizeForWrite and write read
	// (Go 1.26: the socket and the handshake flag; the version and the
	// config; closeNotifySent; out's lock, error and cipher; out's
	// sequence number; sendBuf and bytesSent; packetsSent and
	// activeCall).
	for i, name := range []string{"conn", "config", "clientProtocol", "out.cipher", "out.nextCipher", "sendBuf", "retryCount"} {
		var f reflect.StructField
		if n, ok := strings.CutPrefix(name, "out."); ok {
			if f, ok = out.Type.FieldByName(n); !ok {
				return tlsLines{}
			}
			f.Offset += out.Offset
		} else if f, ok = t.FieldByName(name); !ok {
			return tlsLines{}
		}
		l.words[i] = f.Offset
	}
	c, _ := out.Type.FieldByName("cipher")
	if c.Type.Kind() != reflect.Interface || c.Type.NumMethod() != 0 {
		return tlsLines{}
	}
	l.cipher = out.Offset + c.Offset
	l.ok = true
	return l
}

// maxCipherShapes bounds the cipher shapes a node learns: one per AEAD
// construction crypto/tls uses (AES-GCM and ChaCha20-Poly1305 for TLS
// 1.3, their TLS 1.2 forms).
const maxCipherShapes = 4

// cipherShape is the shape of one kind of tls.Conn write cipher: the
// AEAD crypto/tls wraps around the record nonce (outer), and the AEAD
// inside it (inner), an interface field of outer, with the line span of
// each object.
type cipherShape struct {
	outerType uintptr // the type word of out.cipher's interface value
	outerSize uintptr
	innerOff  uintptr // offset of the inner AEAD interface in outer
	innerWord uintptr // that interface's first word (itab)
	innerSize uintptr // 0: no inner AEAD was found
}

// touches is a node's part in touching: the write cipher shapes it has
// seen, learned from connections after their handshake (learn) and read
// by every sweep (shapes). Safe for concurrent use.
type touches struct {
	mu   sync.Mutex                    // Serializes learn.
	list atomic.Pointer[[]cipherShape] // Copied on write, under mu.
	// sink keeps touchHeld's loads, written once per sweep: the compiler
	// drops loads whose values go nowhere.
	sink atomic.Uintptr
}

// learn records the shape of tc's write cipher, if it is new and there
// is room. Called once the handshake is done and before any write on tc
// (so nothing writes out.cipher meanwhile).
func (cs *touches) learn(tc *tls.Conn) {
	l := &tlsConnLines
	if !l.ok || tc == nil {
		return
	}
	base := unsafe.Pointer(tc)
	typeWord := *(*uintptr)(unsafe.Add(base, l.cipher))
	if typeWord == 0 {
		return
	}
	for _, s := range cs.shapes() {
		if s.outerType == typeWord {
			return
		}
	}
	ci := reflect.ValueOf(tc).Elem().FieldByName("out").FieldByName("cipher")
	outer := ci.Elem().Type()
	if outer.Kind() != reflect.Pointer || outer.Elem().Kind() != reflect.Struct {
		return
	}
	s := cipherShape{outerType: typeWord, outerSize: outer.Elem().Size()}
	data := dataOf(base, l.cipher)
	// The first interface field of outer holding a pointer to a struct is
	// the inner AEAD (xorNonceAEAD's and prefixNonceAEAD's aead).
	ov := ci.Elem().Elem()
	for i := range ov.NumField() {
		f := ov.Field(i)
		if f.Kind() != reflect.Interface || f.IsNil() {
			continue
		}
		in := f.Elem().Type()
		if in.Kind() != reflect.Pointer || in.Elem().Kind() != reflect.Struct {
			continue
		}
		off := outer.Elem().Field(i).Offset
		s.innerOff, s.innerSize = off, in.Elem().Size()
		s.innerWord = *(*uintptr)(unsafe.Add(data, off))
		break
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.shapes()
	if len(old) >= maxCipherShapes {
		return
	}
	for _, o := range old {
		if o.outerType == typeWord {
			return
		}
	}
	list := append(append(make([]cipherShape, 0, len(old)+1), old...), s)
	cs.list.Store(&list)
}

// shapes returns the shapes learned so far.
func (cs *touches) shapes() []cipherShape {
	if p := cs.list.Load(); p != nil {
		return *p
	}
	return nil
}

// The lines of conn and sockConn a writer round reads beyond those the
// fan-out already read (conn's variant and out: TestHotLayouts): conn's
// socket and server, its byte count and progress, its last write, chores
// and deadline; the socket's lock and what it keeps.
const (
	connWordSock     = unsafe.Offsetof(conn{}.sock)
	connWordProgress = unsafe.Offsetof(conn{}.prog)
	connWordLast     = unsafe.Offsetof(conn{}.lastWrite)
	sockWordLock     = unsafe.Offsetof(sockConn{}.mu)
	sockWordRest     = unsafe.Offsetof(sockConn{}.rest)
)

// touchHeld reads a word of each line the writer rounds of held's
// connections will read (see above), and returns how many it read. It
// goes over held once for each step of the pointers that lead to the
// lines (the connection, then its socket and tls.Conn, then the cipher
// and the AEAD inside it), so that each pass's loads depend only on
// lines the pass before loaded, and every connection's are in flight at
// once. A no-op in race builds.
func touchHeld(held []*outbox, cs *touches) (lines int) {
	if !touching {
		return 0
	}
	var sum uintptr // what is read, kept so that the loads stay
	for _, o := range held {
		if c, ok := o.run.inline.(*conn); ok {
			p := unsafe.Pointer(c)
			sum += word(p, connWordSock) + word(p, connWordProgress) + word(p, connWordLast)
			lines += 3
		}
	}
	l := &tlsConnLines
	anyTLS := false
	for _, o := range held {
		c, ok := o.run.inline.(*conn)
		if !ok {
			continue
		}
		if s := c.sock; s != nil {
			sum += word(unsafe.Pointer(s), sockWordLock) + word(unsafe.Pointer(s), sockWordRest)
			lines += 2
		}
		if tc := c.tlsConn; tc != nil && l.ok {
			t := unsafe.Pointer(tc)
			for _, off := range l.words {
				sum += word(t, off)
			}
			lines += len(l.words)
			anyTLS = true
		}
	}
	if shapes := cs.shapes(); anyTLS && len(shapes) > 0 {
		for inner := range 2 {
			for _, o := range held {
				if c, ok := o.run.inline.(*conn); ok && c.tlsConn != nil {
					n, v := touchCipher(unsafe.Pointer(c.tlsConn), l.cipher, shapes, inner == 1)
					lines, sum = lines+n, sum+v
				}
			}
		}
	}
	cs.sink.Store(sum)
	return lines
}

// touchCipher reads the lines of the write cipher's outer object (inner
// false) or of the AEAD inside it (inner true) of the tls.Conn at t, when
// its shape is among shapes.
func touchCipher(t unsafe.Pointer, off uintptr, shapes []cipherShape, inner bool) (lines int, sum uintptr) {
	typeWord := word(t, off)
	for i := range shapes {
		s := &shapes[i]
		if s.outerType != typeWord {
			continue
		}
		outer := dataOf(t, off)
		switch {
		case outer == nil:
		case !inner:
			return touchObject(outer, s.outerSize)
		case s.innerSize != 0 && word(outer, s.innerOff) == s.innerWord:
			if in := dataOf(outer, s.innerOff); in != nil {
				return touchObject(in, s.innerSize)
			}
		}
		return 0, 0
	}
	return 0, 0
}

// touchObject reads a word of every line of the size bytes at p, the
// last word too (an object need not start on a line).
func touchObject(p unsafe.Pointer, size uintptr) (lines int, sum uintptr) {
	const w = unsafe.Sizeof(uintptr(0))
	if size < w {
		return 0, 0
	}
	for off := uintptr(0); off+w <= size; off += cacheLine {
		sum += word(p, off)
		lines++
	}
	return lines + 1, sum + word(p, size-w)
}

// cacheLine is this machine's cache line, in bytes (amd64 and arm64).
const cacheLine = 64

// dataOf is the data word of the interface value at p plus off (its
// second word: the first is its type or method table).
func dataOf(p unsafe.Pointer, off uintptr) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Add(p, off+unsafe.Sizeof(uintptr(0))))
}

// word reads the word at p plus off.
func word(p unsafe.Pointer, off uintptr) uintptr {
	return *(*uintptr)(unsafe.Add(p, off))
}
