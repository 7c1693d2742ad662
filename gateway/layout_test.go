package gateway

import (
	"reflect"
	"slices"
	"testing"
	"unsafe"
)

// The fan-out touches a subscription, its connection and its outbox for
// every message it delivers to one subscriber, and at a few thousand
// subscribers they are cold: each cache line it reads is a miss. These
// tests pin the layouts that keep it to a few lines (docs/benchmarks.md,
// *Cache lines of the fan-out*): a field added in the wrong place, or a
// struct that leaves its size class, fails here rather than in a
// benchmark run.

// fieldLine is a field's last byte (its offset, for a field of one word
// or less) and the cache line it must be on.
type fieldLine struct {
	name string
	off  uintptr
	line uintptr
}

// TestHotLayouts: for each struct the fan-out reads per message, the
// fields it uses sit on the lines given, the struct stays in a size class
// of whole cache lines (so every object's lines fall at the same
// offsets), and objects allocated as the node allocates them start on a
// line.
//
//   - subscription: what deliver, queueUpdate, ready and unmerged use in
//     its first two lines, in the 192-byte class;
//   - outbox: what the fan-out uses for every message on its first line,
//     the wake-up fields and a burst's mark (holder) on its second, in the
//     192-byte class;
//   - conn: variant and out on one line, in the 512-byte class.
func TestHotLayouts(t *testing.T) {
	var (
		s subscription
		o outbox
		c conn
	)
	for _, tc := range []struct {
		name   string
		size   uintptr
		class  [2]uintptr // the size class's bounds: (class[0], class[1]]
		fields []fieldLine
		alloc  func() unsafe.Pointer
	}{
		{"subscription", unsafe.Sizeof(s), [2]uintptr{176, 192}, []fieldLine{
			{"c", unsafe.Offsetof(s.c), 0},
			{"last", unsafe.Offsetof(s.last), 0},
			{"plan", unsafe.Offsetof(s.plan), 0},
			{"directAt", unsafe.Offsetof(s.directAt), 0},
			{"direct", unsafe.Offsetof(s.direct), 0},
			{"gen", unsafe.Offsetof(s.gen), 0},
			{"group", unsafe.Offsetof(s.group), 0},
			{"thr", unsafe.Offsetof(s.thr), 0},
			{"queued", unsafe.Offsetof(s.queued), 0},
			{"gated", unsafe.Offsetof(s.gated), 0},
			{"dead", unsafe.Offsetof(s.dead), 0},
			{"needSnapshot", unsafe.Offsetof(s.needSnapshot), 0},
			{"shapes", unsafe.Offsetof(s.shapes), 0},
			{"head", unsafe.Offsetof(s.head) + unsafe.Sizeof(s.head) - 1, 1},
			{"queue", unsafe.Offsetof(s.queue) + unsafe.Sizeof(s.queue) - 1, 1},
			{"status", unsafe.Offsetof(s.status), 1},
			{"told", unsafe.Offsetof(s.told), 1},
		}, func() unsafe.Pointer { return unsafe.Pointer(&subscription{}) }},
		{"outbox", unsafe.Sizeof(o), [2]uintptr{176, 192}, []fieldLine{
			{"mu", unsafe.Offsetof(o.mu), 0},
			{"queue", unsafe.Offsetof(o.queue) + unsafe.Sizeof(o.queue) - 1, 0},
			{"closing", unsafe.Offsetof(o.closing), 0},
			{"queuedAt", unsafe.Offsetof(o.queuedAt), 0},
			{"takes", unsafe.Offsetof(o.takes), 0},
			{"writing", unsafe.Offsetof(o.writing), 0},
			{"busy", unsafe.Offsetof(o.busy), 0},
			{"wakes", unsafe.Offsetof(o.wakes), 1},
			{"held", unsafe.Offsetof(o.held), 1},
			{"holder", unsafe.Offsetof(o.holder), 1},
			{"run", unsafe.Offsetof(o.run) + unsafe.Sizeof(o.run) - 1, 1},
		}, func() unsafe.Pointer { return unsafe.Pointer(newOutbox(1, nil)) }},
		{"conn", unsafe.Sizeof(c), [2]uintptr{480, 512}, []fieldLine{
			{"ws", unsafe.Offsetof(c.ws), 0},
			{"sock", unsafe.Offsetof(c.sock), 0},
			{"tlsConn", unsafe.Offsetof(c.tlsConn), 0},
			{"variant", unsafe.Offsetof(c.variant), 2},
			{"out", unsafe.Offsetof(c.out), 2},
		}, func() unsafe.Pointer { return unsafe.Pointer(&conn{}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.size <= tc.class[0] || tc.size > tc.class[1] {
				t.Errorf("%s is %d bytes: want %d to %d, the %d-byte size class (the classes beside it are not whole cache lines)",
					tc.name, tc.size, tc.class[0]+1, tc.class[1], tc.class[1])
			}
			for _, f := range tc.fields {
				if got := f.off / cacheLine; got != f.line {
					t.Errorf("%s.%s ends on cache line %d, want %d", tc.name, f.name, got, f.line)
				}
			}
			for range 64 {
				if p := tc.alloc(); uintptr(p)%cacheLine != 0 {
					t.Fatalf("a %s at %#x does not start on a cache line", tc.name, uintptr(p))
				}
			}
		})
	}
}

// queueDirect fills a FIFO item in place, field by field, instead of
// assigning a literal (outbox.go): a slot reused after a take keeps what
// an earlier item left in a field it does not set. So the fields it sets
// are all the fields there are; a field added to item fails here until
// queueDirect sets it too.
func TestQueueDirectSetsEveryItemField(t *testing.T) {
	want := []string{"frame", "sub", "gen", "ts"} // as queueDirect sets them
	typ := reflect.TypeFor[item]()
	var got []string
	for i := range typ.NumField() {
		got = append(got, typ.Field(i).Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("item's fields are %v; queueDirect sets %v: set the new ones there", got, want)
	}
}
