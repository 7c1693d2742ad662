package js

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestModuleInNode runs the module's unit tests and every conformance case
// of proto/testdata/conformance, in both codecs, in Node (20 or later) when
// it is installed. CI runs the same tests in Chromium
// (cmd/tickgate/jsclient_integration_test.go), which needs no Node.
func TestModuleInNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the integration tests run these tests in Chromium")
	}
	began := time.Now()
	cmd := exec.Command(node, filepath.Join("test", "node.mjs"), filepath.Join("..", "..", "proto", "testdata", "conformance"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("node test/node.mjs: %v\n%s", err, out.String())
	}
	t.Logf("%s(%v)", out.String(), time.Since(began).Round(time.Millisecond))
}

var nodeOnlyRE = regexp.MustCompile(`\b(require\(|process\.|Buffer\.|__dirname)|"node:`)

// The module imports nothing but its own files, by relative path, so that
// a page can load it from any folder without a build step or an import
// map; and it uses no Node-only API.
func TestModuleImportsOnlyItself(t *testing.T) {
	importRE := regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"`)
	files, err := fs.Glob(Module(), "*.js")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded files: %v %v", files, err)
	}
	for _, f := range files {
		b, err := fs.ReadFile(Module(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			target := m[1]
			if !strings.HasPrefix(target, "./") || strings.Contains(target[2:], "/") {
				t.Errorf("%s imports %q: the module imports only its own files, as ./name.js", f, target)
				continue
			}
			if _, err := fs.Stat(Module(), target[2:]); err != nil {
				t.Errorf("%s imports %q, which is not embedded", f, target)
			}
		}
		if m := nodeOnlyRE.Find(b); m != nil {
			t.Errorf("%s uses %q, which browsers do not have", f, m)
		}
	}
	if _, err := os.Stat("tickgate.d.ts"); err != nil {
		t.Fatal(err)
	}
}
