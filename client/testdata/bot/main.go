// bot prints the best bid and ask of book.BTC-USD, 20 times, from the book
// the Go client keeps and verifies. go run . URL TOKEN CERT.PEM
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/tickgate/tickgate/client"
)

func main() {
	ctx, stop := context.WithCancel(context.Background())
	roots := x509.NewCertPool()
	if pem, err := os.ReadFile(os.Args[3]); err != nil || !roots.AppendCertsFromPEM(pem) {
		panic(fmt.Sprint("certificate: ", err))
	}
	seen := 0
	c, err := client.Dial(ctx, os.Args[1], client.Options{
		TLS:         &tls.Config{RootCAs: roots},
		TokenSource: func(context.Context) (string, error) { return os.Args[2], nil },
		OnEvent: func(e client.Event) { // on the client's goroutine, never its read loop
			if e.Book == nil || seen == 20 {
				return // not a book event: a state change, a gap, ...
			}
			bid, _ := e.Book.BestBid() // e.Book is verified by its checksum
			ask, _ := e.Book.BestAsk()
			fmt.Printf("%s seq %d: bid %s × %s, ask %s × %s\n", e.Channel, e.Seq, bid[0], bid[1], ask[0], ask[1])
			if seen++; seen == 20 {
				stop()
			}
		},
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, []string{"book.BTC-USD"}); err != nil {
		panic(err)
	}
	<-ctx.Done()
}
