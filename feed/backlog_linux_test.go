package feed

import (
	"io"
	"net"
	"testing"
	"time"
)

// Backlogged tells bytes that wait unread in the socket the feed dialed
// from none: true while the peer's bytes sit in the kernel, false once
// they are read.
func TestBackloggedReadsTheDialedSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := &Source{dialer: newFeedDialer(time.Second, nil)}
	if s.Backlogged() {
		t.Fatal("Backlogged before any connection")
	}
	c, err := s.dialer.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if s.Backlogged() {
		t.Fatal("Backlogged with nothing sent")
	}
	if _, err := peer.Write([]byte("MSG 0123456789")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !s.Backlogged(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("not Backlogged with 14 bytes unread")
		}
	}
	if _, err := io.ReadFull(c, make([]byte, 14)); err != nil {
		t.Fatal(err)
	}
	if s.Backlogged() {
		t.Fatal("Backlogged after everything was read")
	}
}
