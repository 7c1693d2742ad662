package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tickgate/tickgate/auth"
	"github.com/tickgate/tickgate/proto"
)

// runToken mints an HS256 token with the secret of --hmac-secret-file.
func runToken(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("token", stderr)
	secretFile := fs.String("hmac-secret-file", "", "file holding the HS256 secret")
	sub := fs.String("sub", "", "subscriber id (sub claim)")
	var channels listFlag
	fs.Var(&channels, "channels", "comma-separated channel patterns, NATS wildcards (ticker.*,book.BTC-USD,>)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	audience := fs.String("audience", "", "aud claim")
	issuer := fs.String("issuer", "", "iss claim")
	kid := fs.String("kid", "", "kid header (empty: none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *secretFile == "":
		return usagef("--hmac-secret-file is required")
	case *sub == "":
		return usagef("--sub is required")
	case len(channels.vals) == 0:
		return usagef("--channels is required")
	case *ttl <= 0:
		return usagef("--ttl must be positive")
	}
	for _, p := range channels.vals {
		if err := reachablePattern(p); err != nil {
			return usagef("--channels: %v", err)
		}
	}
	signer, err := auth.NewHMACSignerFile(*secretFile, *kid)
	if err != nil {
		return fmt.Errorf("--hmac-secret-file: %w", err)
	}
	token, err := signer.Sign(auth.TokenSpec{Subject: *sub, Channels: channels.vals, TTL: *ttl, Audience: *audience, Issuer: *issuer})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// reachablePattern checks that channel pattern p is valid and can match
// some channel <kind>.<symbol>: a token whose patterns match nothing would
// be refused on every subscribe.
func reachablePattern(p string) error {
	if _, err := auth.ParsePattern(p); err != nil {
		return err
	}
	kind, symbol, two := strings.Cut(p, ".")
	if kind == ">" {
		return nil
	}
	if _, err := proto.ParseKind(kind); err != nil && kind != "*" {
		return fmt.Errorf("pattern %q matches no channel: %q is not a kind (ticker, book, trade) or a wildcard", p, kind)
	}
	if !two || strings.Contains(symbol, ".") || symbol != "*" && symbol != ">" && !proto.ValidSymbol(symbol) {
		return fmt.Errorf("pattern %q matches no channel: channels are <kind>.<symbol>", p)
	}
	return nil
}
