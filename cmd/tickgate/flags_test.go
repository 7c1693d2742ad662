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
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nope"}, "nope"},
		{"no tls", []string{"--hmac-secret-file", "x"}, "--tls-cert"},
		{"no keys", []string{"--insecure-plaintext"}, "--hmac-secret-file"},
		{"bad log level", []string{"--insecure-plaintext", "--log-level", "loud"}, "--log-level"},
		{"unknown yaml key", []string{"--config", writeFile(t, dir, "bad.yaml", "listn: x\n")}, "listn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := runServe(t.Context(), tt.args, io.Discard, io.Discard)
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
