package gateway

import (
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

const cacheLine = 64

// lineOf is the cache line of a field at offset off in an object that
// starts on a line.
func lineOf(off uintptr) uintptr { return off / cacheLine }

// TestSubscriptionLayout: what deliver, queueUpdate, ready and unmerged
// use of a subscription sits in its first two lines, and the struct fits
// the 192-byte size class, whose objects start on a line.
func TestSubscriptionLayout(t *testing.T) {
	var s subscription
	checkSizeClass192(t, "subscription", unsafe.Sizeof(s))
	checkLines(t, "subscription", []fieldLine{
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
	})
	checkAligned(t, "subscription", func() unsafe.Pointer { return unsafe.Pointer(&subscription{}) })
}

// TestOutboxLayout: the fields the fan-out uses for every message share
// the outbox's first line, the wake-up fields its second.
func TestOutboxLayout(t *testing.T) {
	var o outbox
	checkSizeClass192(t, "outbox", unsafe.Sizeof(o))
	checkLines(t, "outbox", []fieldLine{
		{"mu", unsafe.Offsetof(o.mu), 0},
		{"queue", unsafe.Offsetof(o.queue) + unsafe.Sizeof(o.queue) - 1, 0},
		{"closing", unsafe.Offsetof(o.closing), 0},
		{"queuedAt", unsafe.Offsetof(o.queuedAt), 0},
		{"takes", unsafe.Offsetof(o.takes), 0},
		{"writing", unsafe.Offsetof(o.writing), 0},
		{"busy", unsafe.Offsetof(o.busy), 0},
		{"wakes", unsafe.Offsetof(o.wakes), 1},
		{"held", unsafe.Offsetof(o.held), 1},
		{"run", unsafe.Offsetof(o.run) + unsafe.Sizeof(o.run) - 1, 1},
	})
	checkAligned(t, "outbox", func() unsafe.Pointer { return unsafe.Pointer(newOutbox(1, nil)) })
}

// TestConnLayout: the fan-out reads a connection's variant and outbox
// from one line; conn stays in the 512-byte size class.
func TestConnLayout(t *testing.T) {
	var c conn
	if n := unsafe.Sizeof(c); n <= 448 || n > 512 {
		t.Errorf("conn is %d bytes: out of the 512-byte size class, its lines move", n)
	}
	if a, b := lineOf(unsafe.Offsetof(c.variant)), lineOf(unsafe.Offsetof(c.out)); a != b {
		t.Errorf("conn.variant on line %d, conn.out on line %d: want one line", a, b)
	}
}

// fieldLine is a field's last byte (its offset, for a field of one word
// or less) and the cache line it must be on.
type fieldLine struct {
	name string
	off  uintptr
	line uintptr
}

func checkLines(t *testing.T, typ string, fields []fieldLine) {
	t.Helper()
	for _, f := range fields {
		if got := lineOf(f.off); got != f.line {
			t.Errorf("%s.%s ends on cache line %d, want %d", typ, f.name, got, f.line)
		}
	}
}

// checkSizeClass192 fails unless a struct of n bytes is allocated from the
// runtime's 192-byte size class (sizes 177 to 192): the classes just
// below (176) and above (208) are not multiples of a cache line, so an
// object's lines would fall at a different offset for each object.
func checkSizeClass192(t *testing.T, name string, n uintptr) {
	t.Helper()
	if n <= 176 || n > 192 {
		t.Errorf("%s is %d bytes: want 177 to 192, the 192-byte size class", name, n)
	}
}

// checkAligned allocates objects as the node does and checks that each
// starts on a cache line.
func checkAligned(t *testing.T, name string, alloc func() unsafe.Pointer) {
	t.Helper()
	keep := make([]unsafe.Pointer, 0, 64)
	for range cap(keep) {
		p := alloc()
		keep = append(keep, p)
		if uintptr(p)%cacheLine != 0 {
			t.Fatalf("a %s at %#x does not start on a cache line", name, uintptr(p))
		}
	}
}
