package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tickgate/tickgate/admin"
	"github.com/tickgate/tickgate/feed"
)

// Operating a fleet (docs/operations.md, "Inspecting and revoking"): serve's flags for the admin token
// and for revocations between nodes, the admin API's place on the admin
// listener, and `tickgate revoke`.

// fleetFlags are serve's (and dev's) flags for the admin API and for
// revocations.
type fleetFlags struct {
	adminTokenFile    string
	revocationSubject string
	revocationBucket  string
	revocationTTL     time.Duration
}

func (f *fleetFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the admin token: /v1/* on the admin listener then needs Authorization: Bearer <token> (/metrics, /healthz, /readyz stay open)")
	fs.StringVar(&f.revocationSubject, "revocation-subject", feed.DefaultRevocationSubject, "NATS subject that carries revocations between nodes (outside the feed subjects <subject-prefix>.>)")
	fs.StringVar(&f.revocationBucket, "revocation-bucket", feed.DefaultRevocationBucket, "JetStream key-value bucket that keeps revocations for nodes that start later (created when missing)")
	fs.DurationVar(&f.revocationTTL, "revocation-ttl", feed.DefaultRevocationTTL, "how long a revocation holds: the longest lifetime of your tokens (at least 1m)")
}

// controlConfig is the revocation bus's configuration.
func (f *fleetFlags) controlConfig() feed.ControlConfig {
	return feed.ControlConfig{Subject: f.revocationSubject, Bucket: f.revocationBucket, TTL: f.revocationTTL}
}

// check validates the flags against the feed subject prefix.
func (f *fleetFlags) check(prefix string) error {
	if f.revocationTTL < time.Minute {
		return usagef("--revocation-ttl must be at least 1m (got %v)", f.revocationTTL)
	}
	if err := feed.ValidControlSubject(f.revocationSubject, prefix); err != nil {
		return usagef("--revocation-subject: %v", err)
	}
	if err := f.controlConfig().Validate(prefix); err != nil {
		return usagef("--revocation-bucket: %v", err)
	}
	return nil
}

// adminToken reads --admin-token-file ("" when not set).
func (f *fleetFlags) adminToken() (string, error) {
	if f.adminTokenFile == "" {
		return "", nil
	}
	tok, err := admin.ReadTokenFile(f.adminTokenFile)
	if err != nil {
		return "", usagef("--admin-token-file: %v", err)
	}
	return tok, nil
}

// adminAPI is the handler of /v1/ on the admin listener.
func (n *node) adminAPI() http.Handler {
	return admin.Handler(admin.Config{Node: n.srv, Token: n.adminToken, Logger: n.logger})
}

// warnOpenAdmin warns when the admin listener answers beyond this host
// without an admin token: anyone who reaches it can list every
// connection and revoke any subscriber.
func warnOpenAdmin(log *slog.Logger, addr net.Addr, token bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if token || !ok || tcp.IP.IsLoopback() {
		return
	}
	log.Warn("the admin listener is not on loopback and has no admin token: anyone who reaches it can list connections and revoke subscribers; set --admin-token-file or listen on 127.0.0.1",
		"admin", addr.String())
}

// runRevoke asks a node's admin API to revoke a subscriber on every node.
func runRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("revoke", stderr)
	adminURL := fs.String("admin", "", "admin listener of any node (http://host:port, or host:port)")
	sub := fs.String("sub", "", "the token sub to revoke")
	before := fs.String("issued-before", "", "revoke tokens issued before this time (Unix seconds or RFC 3339); empty: every token issued up to now")
	tokenFile := fs.String("admin-token-file", "", "file holding the admin token, when the node has one")
	asJSON := fs.Bool("json", false, "print the node's answer as JSON")
	if err := parseToolFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *adminURL == "":
		return usagef("--admin is required")
	case *sub == "":
		return usagef("--sub is required")
	}
	var cutoff int64
	if *before != "" {
		var err error
		if cutoff, err = parseCutoff(*before); err != nil {
			return usagef("--issued-before: %v", err)
		}
	}
	token := ""
	if *tokenFile != "" {
		var err error
		if token, err = admin.ReadTokenFile(*tokenFile); err != nil {
			return usagef("--admin-token-file: %v", err)
		}
	}
	c, err := admin.NewClient(*adminURL, token)
	if err != nil {
		return usagef("--admin: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.Revoke(ctx, *sub, cutoff)
	if err != nil {
		return err
	}
	// Not published: the revocation holds on that one node only, which a
	// script must be able to tell (exit 1; the runbook then revokes
	// through another node). Not stored is a warning: without JetStream
	// it is never stored.
	var partial error
	if !res.Published {
		partial = fmt.Errorf("the revocation holds on %s only: it was not published to the other nodes; revoke through another node", c.Base())
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
		return partial
	}
	fmt.Fprintf(stdout, "revoked %q: tokens issued before %s (iat < %d) and tokens without iat are refused until %s\n",
		res.Sub, time.Unix(res.IssuedBefore, 0).UTC().Format(time.RFC3339), res.IssuedBefore, time.Unix(res.ExpiresAt, 0).UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "closed %d connection(s) on %s; published to every node up: %v; stored for nodes that start later: %v\n",
		res.Closed, c.Base(), res.Published, res.Stored)
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return partial
}

// parseCutoff reads a cut-off: Unix seconds, or an RFC 3339 time.
func parseCutoff(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("%q: a positive Unix time in seconds, or RFC 3339", s)
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.Unix() <= 0 {
		return 0, fmt.Errorf("%q: a positive Unix time in seconds, or RFC 3339", s)
	}
	return t.Unix(), nil
}
