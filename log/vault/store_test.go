package vault_test

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/provlog/provlog/log/ledger/awstest"
	"github.com/provlog/provlog/log/vault"
	"github.com/provlog/provlog/log/vault/vaulttest"
)

func TestPebbleStoreConformance(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	vaulttest.StoreConformance(t, func(t *testing.T, name string) vault.Store {
		mu.Lock()
		dir, ok := dirs[t]
		if !ok {
			dir = t.TempDir()
			dirs[t] = dir
		}
		mu.Unlock()
		s, err := vault.OpenPebbleStore(filepath.Join(dir, name), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("OpenPebbleStore: %v", err)
		}
		return s
	})
}

// TestMySQLStoreConformance runs the suites against the MySQL store on the
// test MariaDB: one database per store name and test.
func TestMySQLStoreConformance(t *testing.T) {
	awstest.ServerDSN(t) // skip or fail before the suite when absent
	var mu sync.Mutex
	dsns := map[*testing.T]map[string]string{}
	open := func(t *testing.T, name string) vault.Store {
		mu.Lock()
		if dsns[t] == nil {
			dsns[t] = map[string]string{}
		}
		dsn, ok := dsns[t][name]
		if !ok {
			dsn = awstest.NewDatabase(t)
			dsns[t][name] = dsn
		}
		mu.Unlock()
		s, err := vault.OpenMySQLStore(t.Context(), dsn)
		if err != nil {
			t.Fatalf("OpenMySQLStore: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	vaulttest.StoreConformance(t, open)
	vaulttest.SharedConformance(t, open)
}
