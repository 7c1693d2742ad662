package main

import (
	"fmt"
	"io"
	"slices"
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
	if err := parseToolFlags(fs, args); err != nil {
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
// some channel, <kind>.<symbol> or <kind>.<param>.<symbol> for a kind
// with params (candle.<interval>.<symbol>): a token whose patterns match
// nothing would be refused on every subscribe.
func reachablePattern(p string) error {
	if _, err := auth.ParsePattern(p); err != nil {
		return err
	}
	toks := strings.Split(p, ".")
	if toks[0] == ">" {
		return nil
	}
	kinds := proto.Kinds()
	if toks[0] != "*" {
		k, err := proto.ParseKind(toks[0])
		if err != nil {
			names := make([]string, len(kinds))
			for i, k := range kinds {
				names[i] = k.String()
			}
			return fmt.Errorf("pattern %q matches no channel: %q is not a kind (%s) or a wildcard", p, toks[0], strings.Join(names, ", "))
		}
		kinds = []proto.Kind{k}
	}
	for _, k := range kinds {
		if matchesSome(toks[1:], k.Spec().Params) {
			return nil
		}
	}
	return fmt.Errorf("pattern %q matches no channel: channels are <kind>.<symbol>, or candle.<interval>.<symbol>", p)
}

// matchesSome reports whether pattern tokens toks can match the tokens
// after the kind of a channel whose kind has params (none: no param
// token): [param] symbol.
func matchesSome(toks []string, params []string) bool {
	want := 1
	if len(params) > 0 {
		want = 2
	}
	for i, tok := range toks {
		switch {
		case tok == ">":
			return i < want
		case i >= want:
			return false
		case tok == "*":
		case i == want-1 && !proto.ValidSymbol(tok):
			return false
		case i < want-1 && !slices.Contains(params, tok):
			return false
		}
	}
	return len(toks) == want
}
