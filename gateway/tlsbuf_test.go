package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/tickgate/tickgate/internal/selfsigned"
)

// tlsPipe returns the server and client ends of a TLS connection over an
// in-memory pipe, handshaken.
func tlsPipe(t *testing.T, cert *selfsigned.Cert) (srv, cli *tls.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	ccfg := cert.ClientConfig()
	ccfg.ServerName = "localhost"
	cli, srv = tls.Client(a, ccfg), tls.Server(b, cert.ServerConfig())
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// Two connections take turns at wake-ups that borrow arrays from one pool
// for crypto/tls's rawInput, and give them back at each park: each reads
// exactly what its client wrote (small records in the lent array, a big
// one in a buffer crypto/tls grows itself, which is not pooled), and a
// parked connection holds neither the array nor a reader over it.
func TestTLSReadBufsLentAndTakenBack(t *testing.T) {
	if !tlsConnBuffers.ok {
		t.Skip("crypto/tls's read buffers not found: TestTLSBuffersFound says so")
	}
	cert, err := selfsigned.New(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var bufs tlsReadBufs
	type end struct{ srv, cli *tls.Conn }
	var ends [2]end
	for i := range ends {
		ends[i].srv, ends[i].cli = tlsPipe(t, cert)
		tlsConnBuffers.release(ends[i].srv, &bufs) // parked after the handshake
	}
	cases := []struct {
		size int
		lent bool // the record fits the lent array
	}{{14, true}, {200, true}, {4096, false}, {14, true}, {300, true}}
	for round, c := range cases {
		for i, e := range ends {
			msg := bytes.Repeat([]byte{byte('a' + 2*round + i)}, c.size)
			raw, in, _ := tlsConnBuffers.fields(e.srv)
			tlsConnBuffers.lend(e.srv, &bufs)
			if raw.Cap() != tlsReadBufBytes {
				t.Fatalf("round %d, conn %d: rawInput's capacity %d after lend, want %d", round, i, raw.Cap(), tlsReadBufBytes)
			}
			errc := make(chan error, 1)
			go func() { _, err := e.cli.Write(msg); errc <- err }()
			got := make([]byte, c.size)
			if _, err := io.ReadFull(e.srv, got); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("round %d, conn %d: read %q…, want %q…", round, i, got[:min(8, len(got))], msg[:min(8, len(msg))])
			}
			if fits := raw.Cap() == tlsReadBufBytes; fits != c.lent {
				t.Fatalf("round %d, conn %d: a record of %d bytes read into the lent array: %v, want %v", round, i, c.size, fits, c.lent)
			}
			tlsConnBuffers.release(e.srv, &bufs)
			if raw.Cap() != 0 || in.Len() != 0 || in.Size() != 0 {
				t.Fatalf("round %d, conn %d: parked with rawInput's capacity %d, input %d of %d", round, i, raw.Cap(), in.Len(), in.Size())
			}
		}
	}
}
