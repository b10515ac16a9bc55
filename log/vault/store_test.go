package vault_test

import (
	"bytes"
	"errors"
	"fmt"
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

// TestCopyStoreToMySQL moves an embedded vault into MySQL and opens it
// there with the same master key.
func TestCopyStoreToMySQL(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	ctx := t.Context()
	km, err := vault.NewFileKeyManager(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	v, err := vault.Open(vault.Config{Dir: dir, Keys: km})
	if err != nil {
		t.Fatal(err)
	}
	var sealed [][]vault.Sealed
	for i := range 3 {
		s, err := v.Seal("acme", fmt.Sprint("ev-", i), []vault.Plain{{Name: "email", Classification: "pii", Value: []byte(fmt.Sprint("v", i))}})
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
	}
	v.Close()
	src, err := vault.OpenPebbleStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := vault.OpenMySQLStore(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second run resumes, changing nothing
		if n, err := vault.CopyStore(ctx, dst, src); err != nil || n != 3 {
			t.Fatalf("CopyStore = %d, %v; want 3 values", n, err)
		}
	}
	other, err := vault.OpenPebbleStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	other.WriteKeyring(ctx, []byte(`{"version":1}`), 0)
	if _, err := vault.CopyStore(ctx, dst, other); !errors.Is(err, vault.ErrOtherVault) {
		t.Fatalf("CopyStore of another vault: %v, want ErrOtherVault", err)
	}
	other.Close()
	mv, err := vault.Open(vault.Config{Dir: t.TempDir(), Store: dst, Keys: km})
	if err != nil {
		t.Fatal(err)
	}
	defer mv.Close()
	for i, s := range sealed {
		o, err := mv.Reveal("acme", fmt.Sprint("ev-", i), s[0])
		if err != nil || string(o.Value) != fmt.Sprint("v", i) {
			t.Fatalf("Reveal %d from MySQL: %q, %v", i, o.Value, err)
		}
	}
}
