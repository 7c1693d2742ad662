package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The tools (token, revoke, top, feedsim, stream) read the node's config
// file, from --config or TICKGATE_CONFIG set for the whole host, taking
// the keys they know; before, every key of the node's that they lack
// refused the run, and the leaked-token runbook's revoke did not run on
// such a host. A node still refuses a key it does not know.
func TestToolsShareTheNodesConfig(t *testing.T) {
	file := writeFile(t, t.TempDir(), "node.yaml", "listen: 10.0.0.1:1\nsubject-prefix: md\nadmin-token-file: /etc/tickgate/admin.token\n")
	t.Setenv("TICKGATE_CONFIG", file)
	fs := newFlagSet("revoke", io.Discard)
	tokenFile := fs.String("admin-token-file", "", "")
	if err := parseToolFlags(fs, nil); err != nil {
		t.Fatalf("a tool with the node's config: %v", err)
	}
	if *tokenFile != "/etc/tickgate/admin.token" {
		t.Fatalf("the key it knows: %q", *tokenFile)
	}
	strict := newFlagSet("serve", io.Discard)
	strict.String("listen", "", "")
	if err := parseFlags(strict, nil); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "subject-prefix") {
		t.Fatalf("a node with a key it does not know: %v, want a usage error naming it", err)
	}
	// A key that is neither the tool's nor a node's is a typo: refused.
	typo := writeFile(t, t.TempDir(), "token.yaml", "listen: 10.0.0.1:1\ntll: 5m\n")
	t.Setenv("TICKGATE_CONFIG", typo)
	fs = newFlagSet("token", io.Discard)
	fs.Duration("ttl", 0, "")
	if err := parseToolFlags(fs, nil); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "tll") {
		t.Fatalf("a tool's config with a typo: %v, want a usage error naming it", err)
	}
}

// Flags win over TICKGATE_* variables, which win over the YAML file.
func TestFlagPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	yaml := "listen: 10.0.0.1:1\nnode-id: from-file\nsubject-prefix: file\nallowed-origins:\n  - https://a.example\n  - https://b.example\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TICKGATE_NODE_ID", "from-env")
	t.Setenv("TICKGATE_SUBJECT_PREFIX", "env")
	var f serveFlags
	fs := newFlagSet("serve", os.Stderr)
	f.register(fs)
	if err := parseFlags(fs, []string{"--config", file, "--subject-prefix", "flag"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, got, want string }{
		{"file only", f.listen, "10.0.0.1:1"},
		{"env over file", f.nodeID, "from-env"},
		{"flag over env", f.subjectPrefix, "flag"},
		{"default", f.natsURL, "nats://127.0.0.1:4222"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if !slices.Equal(f.allowedOrigins.vals, []string{"https://a.example", "https://b.example"}) {
		t.Errorf("allowed-origins from a YAML list: %q", f.allowedOrigins.vals)
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "secret", strings.Repeat("s", 32))
	tests := []struct {
		name string
		cmd  string
		args []string
		want string
	}{
		{"unknown flag", "serve", []string{"--nope"}, "nope"},
		{"no tls", "serve", []string{"--hmac-secret-file", "x"}, "--tls-cert"},
		{"no keys", "serve", []string{"--insecure-plaintext"}, "--hmac-secret-file"},
		{"bad log level", "serve", []string{"--insecure-plaintext", "--log-level", "loud"}, "--log-level"},
		{"unknown yaml key", "serve", []string{"--config", writeFile(t, dir, "bad.yaml", "listn: x\n")}, "listn"},
		// A zero the packages below would replace by their default.
		{"drain within 0", "serve", []string{"--drain-within", "0"}, "--drain-within must be above 0"},
		{"handshake rate below one every two seconds", "serve", []string{"--handshake-rate", "0.4"}, "--handshake-rate must be at least 0.5"},
		{"empty subject prefix", "serve", []string{"--subject-prefix", ""}, "--subject-prefix: feed: bad config: empty subject prefix"},
		{"heartbeat 0", "serve", []string{"--heartbeat", "0"}, "--heartbeat"},
		{"handshake rate 0", "serve", []string{"--handshake-rate", "0"}, "--handshake-rate"},
		{"conns per ip 0", "serve", []string{"--max-conns-per-ip", "0"}, "--max-conns-per-ip must be -1 (no limit) or above 0"},
		{"negative leeway", "serve", []string{"--leeway", "-1s"}, "--leeway"},
		{"shutdown before the drain ends", "serve", []string{"--drain-within", "4s", "--shutdown-timeout", "1s"}, "--shutdown-timeout must be longer than --drain-within"},
		{"bad origin", "serve", []string{"--allowed-origins", "example.com"}, "--allowed-origins"},
		{"zero from the config file", "serve", []string{"--config", writeFile(t, dir, "zero.yaml", "drain-within: 0s\n")}, "--drain-within must be above 0"},
		{"dev with a serve flag", "dev", []string{"--nats", "nats://127.0.0.1:1"}, "--nats is a serve flag"},
		{"dev with a serve flag in its config file", "dev", []string{"--config", writeFile(t, dir, "dev.yaml", "tls-cert: x.pem\n")}, "--tls-cert is a serve flag"},
		{"dev without HS256", "dev", []string{"--algorithms", "RS256"}, "--algorithms must include HS256"},
		{"dev without symbols", "dev", []string{"--symbols", "0"}, "--symbols must be between 1"},
		{"feedsim at rate 0", "feedsim", []string{"--rate", "0"}, "--rate must be above 0"},
		{"token for no channel", "token", []string{"--hmac-secret-file", secret, "--sub", "a", "--channels", "bogus"}, `pattern "bogus" matches no channel`},
		{"token for an unknown kind", "token", []string{"--hmac-secret-file", secret, "--sub", "a", "--channels", "ticker.*,candles.*"}, `"candles" is not a kind`},
		{"token for a three-token channel", "token", []string{"--hmac-secret-file", secret, "--sub", "a", "--channels", "ticker.BTC.USD"}, "matches no channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			switch tt.cmd {
			case "serve":
				err = runServe(t.Context(), tt.args, io.Discard, io.Discard)
			case "dev":
				err = runDev(t.Context(), append(tt.args, "--dir", t.TempDir()), io.Discard, io.Discard)
			case "feedsim":
				err = runFeedsim(t.Context(), tt.args, io.Discard, io.Discard)
			case "token":
				err = runToken(tt.args, io.Discard, io.Discard)
			}
			if err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a usage error naming %q", err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// --print-config prints what --config reads back to the same values.
func TestPrintConfigRoundTrip(t *testing.T) {
	var out strings.Builder
	args := []string{"--print-config", "--listen", "0.0.0.0:1", "--allowed-origins", "https://a.example,https://b.example", "--heartbeat", "7s"}
	if err := runServe(t.Context(), args, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	file := writeFile(t, t.TempDir(), "printed.yaml", out.String())
	var f serveFlags
	fs := newFlagSet("serve", io.Discard)
	f.register(fs)
	if err := parseFlags(fs, []string{"--config", file}); err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, out.String())
	}
	if f.listen != "0.0.0.0:1" || f.heartbeat.String() != "7s" || len(f.allowedOrigins.vals) != 2 {
		t.Fatalf("round trip: listen %q heartbeat %v origins %q", f.listen, f.heartbeat, f.allowedOrigins.vals)
	}
}

func TestRedactURLs(t *testing.T) {
	tests := map[string]string{
		"nats://127.0.0.1:4222":                      "nats://127.0.0.1:4222",
		"nats://alice:s3cret@n1:4222,nats://n2:4222": "nats://alice:REDACTED@n1:4222,nats://n2:4222",
		"nats://mytoken@n1:4222":                     "nats://REDACTED@n1:4222",
	}
	for in, want := range tests {
		if got := redactURLs(in); got != want {
			t.Errorf("redactURLs(%q) = %q, want %q", in, got, want)
		}
	}
}

// A token's patterns must be able to match a channel: two tokens for most
// kinds, three for candle (candle.<interval>.<symbol>).
func TestReachablePattern(t *testing.T) {
	for p, ok := range map[string]bool{
		">": true, "*.*": true, "*.>": true, "ticker.*": true, "ticker.BTC-USD": true, "book.>": true,
		"candle.>": true, "candle.*.BTC-USD": true, "candle.1m.*": true, "candle.1d.BTC-USD": true, "*.*.*": true, "candle.1m.>": true,
		"candle.*": false, "candle.BTC-USD": false, "candle.2m.BTC-USD": false, "ticker.1m.BTC-USD": false,
		"ticker.BTC.USD": false, "bogus": false, "bogus.*": false, "*.*.*.*": false, "ticker": false,
	} {
		if err := reachablePattern(p); (err == nil) != ok {
			t.Errorf("reachablePattern(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}
