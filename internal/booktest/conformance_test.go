package booktest

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/tickgate/tickgate/internal/conformance"
	"github.com/tickgate/tickgate/proto"
)

// The reference book agrees with the book cases of the conformance suite:
// following the README's rules with this book, every expected book and
// checksum comes out, and so does every checksum verdict.
func TestConformanceBooks(t *testing.T) {
	cases, err := conformance.Load(filepath.Join("..", "..", filepath.FromSlash(conformance.Dir)))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		ch, _ := proto.ParseChannel(c.Channel)
		if ch.Kind != proto.KindBook {
			continue
		}
		t.Run(c.File, func(t *testing.T) {
			b := New()
			var last uint64
			held, broken := false, false
			for i, s := range c.Steps {
				m, err := s.Decode()
				if err != nil {
					t.Fatal(err)
				}
				var checksumOK *bool
				switch {
				case m.Type == "snapshot":
					b.Reset(m.Data.Bids, m.Data.Asks)
					ok := b.Checksum() == m.Data.Checksum
					checksumOK = &ok
					last, held, broken = m.Seq, ok, !ok
				case m.Type != "update" || broken || !held:
				case m.Prev != last:
					broken = true
				default:
					b.Update(m.Data.Bids, m.Data.Asks)
					ok := b.Checksum() == m.Data.Checksum
					checksumOK = &ok
					if ok {
						last = m.Seq
					} else {
						held, broken = false, true
					}
				}
				e := s.Expect
				if e.ChecksumOK != nil && (checksumOK == nil || *checksumOK != *e.ChecksumOK) {
					t.Fatalf("step %d: checksum_ok %v, the reference says %v", i, *e.ChecksumOK, checksumOK)
				}
				if e.Book != nil {
					bids, asks := b.Levels()
					if !slices.Equal(bids, e.Book.Bids) || !slices.Equal(asks, e.Book.Asks) {
						t.Fatalf("step %d: reference book %v %v, case says %v %v", i, bids, asks, e.Book.Bids, e.Book.Asks)
					}
				}
				if e.Checksum != nil && b.Checksum() != *e.Checksum {
					t.Fatalf("step %d: reference checksum %d, case says %d", i, b.Checksum(), *e.Checksum)
				}
			}
		})
	}
}
