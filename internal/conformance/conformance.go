// Package conformance reads the client conformance cases of
// proto/testdata/conformance (the format is that folder's README): one
// sequence of server messages on one channel per file, with the state a
// correct client holds after each. The Go client, the node's book code
// (feed) and the reference book (internal/booktest) run the same files in
// their tests; the browser module runs them in Chromium.
//
// The files are the source of truth. This package's tests check that they
// hold together (every checksum true to its book), and regenerate them
// from the Go description of the cases with -update.
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/tickgate/tickgate/proto"
)

// Case is one conformance case.
type Case struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Channel     string `json:"channel"`
	// ClientOnly marks a case whose prev gap has no seq jump: a gap only
	// one connection saw, which the node's own book does not see.
	ClientOnly bool   `json:"client_only,omitempty"`
	Steps      []Step `json:"steps"`
	// File is the case's file name (not in the file itself).
	File string `json:"-"`
}

// Step is one server message and what holds once the client processed it.
type Step struct {
	// Recv is the message exactly as it comes in tickgate.v1.json.
	Recv json.RawMessage `json:"recv"`
	// Expect holds only the fields a runner checks.
	Expect Expect `json:"expect"`
}

// Expect is what holds after a step; nil fields are not checked.
type Expect struct {
	State      *string       `json:"state,omitempty"`
	Gap        *bool         `json:"gap,omitempty"`
	ChecksumOK *bool         `json:"checksum_ok,omitempty"`
	Resync     *bool         `json:"resync,omitempty"`
	Seq        *uint64       `json:"seq,omitempty"`
	Book       *Levels       `json:"book,omitempty"`
	Checksum   *uint32       `json:"checksum,omitempty"`
	Ticker     *proto.Ticker `json:"ticker,omitempty"`
	Trades     *[]int64      `json:"trades,omitempty"`
	GapSeqs    *[2]uint64    `json:"gap_seqs,omitempty"`
}

// Levels is a whole book, best first, as the client keeps its text.
type Levels struct {
	Bids []proto.Level `json:"bids"`
	Asks []proto.Level `json:"asks"`
}

// Message is the union of the fields of the messages a case receives
// (snapshot, update, gap, status), for runners that want them decoded.
type Message struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Seq     uint64 `json:"seq"`
	Prev    uint64 `json:"prev"`
	N       uint32 `json:"n"`
	Data    struct {
		Symbol   string        `json:"symbol"`
		Bids     []proto.Level `json:"bids"`
		Asks     []proto.Level `json:"asks"`
		Checksum uint32        `json:"checksum"`
		TS       int64         `json:"ts"`
	} `json:"data"`
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	State  string `json:"state"`
	Reason string `json:"reason"`
}

// Decode decodes a step's message.
func (s Step) Decode() (Message, error) {
	var m Message
	err := json.Unmarshal(s.Recv, &m)
	return m, err
}

// Is reports whether a bool expectation is present and true.
func Is(b *bool) bool { return b != nil && *b }

// Dir is the folder of the cases, relative to the module root.
const Dir = "proto/testdata/conformance"

// Load reads every *.json case in dir, in file name order.
func Load(dir string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, fmt.Errorf("conformance: no cases in %s", dir)
	}
	cases := make([]Case, 0, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var c Case
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", filepath.Base(f), err)
		}
		if c.Name == "" || c.Channel == "" || len(c.Steps) == 0 {
			return nil, fmt.Errorf("conformance: %s: name, channel and steps are required", filepath.Base(f))
		}
		if _, err := proto.ParseChannel(c.Channel); err != nil {
			return nil, fmt.Errorf("conformance: %s: %w", filepath.Base(f), err)
		}
		c.File = filepath.Base(f)
		cases = append(cases, c)
	}
	return cases, nil
}
