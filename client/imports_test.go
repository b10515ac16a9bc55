package client

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerImports: an auditor links only what verifies. client must
// not depend on the server, the ledger, the lineage index or storage.
func TestNoServerImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{
		"github.com/provlog/provlog/log/server", "github.com/provlog/provlog/log/ledger",
		"github.com/provlog/provlog/log/lineage", "github.com/provlog/provlog/log/auth",
		"github.com/provlog/provlog/witness", "github.com/cockroachdb/pebble", "go.etcd.io/bbolt",
		"github.com/transparency-dev/tessera/storage",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, b := range banned {
			if dep == b || strings.HasPrefix(dep, b+"/") {
				t.Errorf("client depends on %s", dep)
			}
		}
	}
}
