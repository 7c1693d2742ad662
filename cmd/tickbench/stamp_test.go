package main

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A stampConn reads what was written, and each read carries the moment
// the kernel took the segment in: after the write began, before it
// returned (on loopback the receiving side runs inside the write).
func TestStampConnReadsTheKernelsReceiveTime(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	sc, err := newStampConn(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	// The kernel turns stamping on shortly after the first socket asks
	// (a deferred switch): the first segments may go unstamped.
	buf := make([]byte, 64)
	stamped := 0
	for i := 0; i < 200 && stamped < 5; i++ {
		before := time.Now()
		if _, err := peer.Write([]byte("tick")); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		n, err := sc.Read(buf)
		if err != nil || string(buf[:n]) != "tick" {
			t.Fatalf("read %q, %v; want \"tick\"", buf[:n], err)
		}
		if sc.at == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		stamped++
		if at := time.Unix(0, sc.at); at.Before(before) || at.After(after) {
			t.Errorf("stamp %v not within the write (%v to %v)", at, before, after)
		}
	}
	if stamped < 5 {
		t.Fatalf("%d stamped reads of 200, want the kernel's stamps", stamped)
	}

	// A read that takes two segments carries the newer one's stamp: the
	// figure errs late, never early.
	if _, err := peer.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	second := time.Now()
	if _, err := peer.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // both in the socket before the read
	if n, err := sc.Read(buf); err != nil || string(buf[:n]) != "ab" {
		t.Fatalf("read %q, %v; want both segments", buf[:n], err)
	}
	if at := time.Unix(0, sc.at); at.Before(second) {
		t.Errorf("a read of two segments stamped %v, before the second was written (%v)", at, second)
	}

	// The read deadline holds, and the peer's close is io.EOF.
	_ = sc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := sc.Read(buf); !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	_ = sc.SetReadDeadline(time.Time{})
	_ = peer.Close()
	if n, err := sc.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed: %d, %v; want 0, io.EOF", n, err)
	}
}

// cmsg is one control message as recvmsg lays it out.
func cmsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func TestRxStamp(t *testing.T) {
	ts := unix.NsecToTimespec(1_767_225_600_123_456_789)
	stamp := unsafe.Slice((*byte)(unsafe.Pointer(&ts)), unsafe.Sizeof(ts))
	other := cmsg(unix.SOL_SOCKET, unix.SCM_RIGHTS, []byte{1, 0, 0, 0})
	tests := map[string]struct {
		oob  []byte
		want int64
	}{
		"none":                 {nil, 0},
		"the stamp":            {cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp), 1_767_225_600_123_456_789},
		"after another":        {append(other, cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp)...), 1_767_225_600_123_456_789},
		"another only":         {other, 0},
		"another level":        {cmsg(unix.IPPROTO_TCP, unix.SCM_TIMESTAMPNS, stamp), 0},
		"short payload":        {cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp[:8]), 0},
		"truncated by recvmsg": {cmsg(unix.SOL_SOCKET, unix.SCM_TIMESTAMPNS, stamp)[:12], 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := rxStamp(tc.oob); got != tc.want {
				t.Fatalf("rxStamp = %d, want %d", got, tc.want)
			}
		})
	}
}
