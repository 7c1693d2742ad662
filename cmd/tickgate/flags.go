package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffyaml"
)

// errUsage marks a command-line mistake (exit code 2); usagef makes them.
var errUsage = errors.New("usage")

// usageError is a command-line mistake whose text is only the message:
// errors.Is(err, errUsage) holds, but "usage" is not in the text.
type usageError struct{ msg string }

func (e usageError) Error() string      { return e.msg }
func (usageError) Is(target error) bool { return target == errUsage }

// usagef returns a usage error with a formatted message naming the flag.
func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// envPrefix prefixes every flag's environment variable.
const envPrefix = "TICKGATE"

// parseFlags parses args, then TICKGATE_* variables, then the YAML file
// named by --config, in that order of precedence. A key of the file that
// is not one of fs's flags is an error: a node's own settings are checked
// to the letter.
func parseFlags(fs *flag.FlagSet, args []string) error { return parseFlagsOf(fs, args, false) }

// parseToolFlags is parseFlags for the subcommands that are not a node
// (token, revoke, top, feedsim, stream): they share the node's config file
// (--config, or TICKGATE_CONFIG set for the whole host) and take the keys
// they know from it, leaving the node's other keys alone. A key that is
// neither theirs nor a node's (a typo) is still an error.
func parseToolFlags(fs *flag.FlagSet, args []string) error { return parseFlagsOf(fs, args, true) }

func parseFlagsOf(fs *flag.FlagSet, args []string, nodeKeys bool) error {
	fs.String("config", "", "YAML config file (keys are flag names)")
	parser := ffyaml.Parser
	if nodeKeys {
		node := newFlagSet("serve", io.Discard)
		new(serveFlags).register(node)
		parser = func(r io.Reader, set func(name, value string) error) error {
			return ffyaml.Parser(r, func(name, value string) error {
				if fs.Lookup(name) == nil && node.Lookup(name) != nil {
					return nil // the node's, not this tool's
				}
				return set(name, value)
			})
		}
	}
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix(envPrefix),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(parser),
	)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	return nil
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tickgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// listFlag is a comma-separated list; setting it again (a repeated flag,
// or a YAML list) appends.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			l.vals = append(l.vals, part)
		}
	}
	return nil
}

// printConfig writes the effective value of every flag as YAML that
// --config accepts. Key material lives in files, never in flags; what a
// flag may hold of a secret (a password in a NATS URL) is redacted.
func printConfig(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "print-config" {
			return
		}
		v := f.Value.String()
		if f.Name == "nats" {
			v = redactURLs(v)
		}
		fmt.Fprintf(w, "%s: %q\n", f.Name, v)
	})
}

// redactURLs hides the password (or token) of each comma-separated URL.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			continue
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		} else {
			u.User = url.User("REDACTED") // a token in the user part
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// logFlags are the logging flags every long-running command has.
type logFlags struct {
	level  string
	format string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", l.format)
}

// envVar is the environment variable of flag name: TICKGATE_<NAME>.
func envVar(name string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// givenAsFlag reports whether args name flag name itself: -name or --name,
// with or without =value.
func givenAsFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue // a value
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if n, _, _ := strings.Cut(a, "="); n == name {
			return true
		}
	}
	return false
}
