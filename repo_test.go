// Repository hygiene, as tests: the README's promises, import boundaries,
// and what must never be committed.
package provlog_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEOpensWithTheTwoCommands checks README.md opens with a code block
// holding exactly the run command and the test command, and that CI runs
// that same test command.
func TestREADMEOpensWithTheTwoCommands(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)^# provlog\n\n```sh\n(.*?)```\n").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md must open with its title and one sh code block")
	}
	var cmds []string
	for _, l := range strings.Split(strings.TrimSpace(string(m[1])), "\n") {
		cmd, _, _ := strings.Cut(l, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	want := []string{"go run ./cmd/provlogd", "./scripts/test.sh"}
	if strings.Join(cmds, "\n") != strings.Join(want, "\n") {
		t.Fatalf("README.md opening commands are %q, want %q", cmds, want)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^exec \./scripts/test\.sh$`).Match(ci) {
		t.Errorf(".ci/run does not run the README's test command %q", want[1])
	}
}

// TestClientImportsNoServerCode keeps client/ linkable by auditors alone.
func TestClientImportsNoServerCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./client/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{
		"github.com/provlog/provlog/log/server",
		"github.com/provlog/provlog/log/ledger",
		"github.com/provlog/provlog/log/auth",
		"github.com/transparency-dev/tessera/storage",
		"github.com/cockroachdb/pebble",
		"go.etcd.io/bbolt",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("client depends on %s", dep)
			}
		}
	}
}

// TestNoOsExitOutsideMain: one exit point per binary, none in libraries.
func TestNoOsExitOutsideMain(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "-co", "--exclude-standard", "*.go").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "cmd/") || strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, ".pb.go") || strings.HasSuffix(f, ".pb.gw.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue // deleted in the work tree
		}
		if bytes.Contains(b, []byte("\npackage main\n")) && strings.HasPrefix(f, "examples/") {
			continue // a runnable example is a binary too (issue 10)
		}
		if bytes.Contains(b, []byte("os.Exit(")) || bytes.Contains(b, []byte("log.Fatal")) {
			t.Errorf("%s calls os.Exit or log.Fatal outside a main package", f)
		}
	}
}

// TestNoBinariesOrDataCommitted: no executables, data dirs or large files.
func TestNoBinariesOrDataCommitted(t *testing.T) {
	out, err := exec.Command("git", "ls-files").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "provlog-data/") || strings.Contains(f, "/provlog-data/") {
			t.Errorf("data dir committed: %s", f)
		}
		st, err := os.Stat(f)
		if err != nil {
			continue
		}
		if st.Size() > 2<<20 {
			t.Errorf("%s is %d bytes: too large to commit", f, st.Size())
		}
		if st.Mode().IsRegular() {
			h := make([]byte, 4)
			if fh, err := os.Open(filepath.Clean(f)); err == nil {
				fh.Read(h)
				fh.Close()
			}
			if bytes.Equal(h, []byte("\x7fELF")) {
				t.Errorf("%s is an executable", f)
			}
		}
	}
}
