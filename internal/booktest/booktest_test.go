package booktest

import (
	"hash/crc32"
	"testing"

	"github.com/tickgate/tickgate/proto"
)

func TestBookApply(t *testing.T) {
	b := New()
	b.Reset([]proto.Level{{"99", "1"}, {"100.10", "2"}}, []proto.Level{{"101", "3"}})
	b.Update([]proto.Level{{"100.1", "5"}, {"99.00", "0"}, {"98", "1"}}, []proto.Level{{"102", "1"}})
	bids, asks := b.Levels()
	want := "100.1:5|98:1|101:3|102:1|" // equal prices merge, the last spelling wins
	if got := crc32.ChecksumIEEE([]byte(want)); b.Checksum() != got {
		t.Fatalf("levels %v %v, want %s", bids, asks, want)
	}
}

// Every message of a feed keeps its checksum true, and a client rebuilding
// from the messages ends at the publisher's book.
func TestFeedIsConsistent(t *testing.T) {
	f := NewFeed("X", 1)
	client := New()
	for i := range 500 {
		m := f.Update(int64(i))
		if i%100 == 0 {
			m = f.Snapshot(int64(i))
		}
		client.Apply(m.Data.(*proto.Book), m.Type == proto.FeedSnapshot)
		if got := client.Checksum(); got != m.Data.(*proto.Book).Checksum {
			t.Fatalf("message %d: checksum %d, rebuilt %d", m.Seq, m.Data.(*proto.Book).Checksum, got)
		}
	}
	if client.Checksum() != f.Book().Checksum() {
		t.Fatal("client and publisher differ")
	}
}
