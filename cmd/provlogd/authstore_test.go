package main

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger/awstest"
)

// TestMigrateAuth: auth.json is copied into the database; a second run
// changes nothing; a different state already there is refused, not
// overwritten; no file, nothing to copy.
func TestMigrateAuth(t *testing.T) {
	ctx := t.Context()
	dsn := awstest.NewDatabase(t)
	dir := t.TempDir()
	if ok, err := migrateAuth(ctx, dir, dsn); ok || err != nil {
		t.Fatalf("migrateAuth without auth.json = %v, %v; want false, nil", ok, err)
	}
	s, err := auth.OpenStore(filepath.Join(dir, auth.StoreFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant("acme", auth.TenantPolicy{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if ok, err := migrateAuth(ctx, dir, dsn); !ok || err != nil {
			t.Fatalf("migrateAuth = %v, %v; want true, nil", ok, err)
		}
	}
	p, err := auth.OpenMySQLPersistence(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m, err := auth.OpenStoreWith(ctx, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !m.HasTenant("acme") {
		t.Fatal("the migrated state lacks tenant acme")
	}
	if _, err := s.CreateTenant("other", auth.TenantPolicy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := migrateAuth(ctx, dir, dsn); !errors.Is(err, errOtherAuthState) {
		t.Fatalf("migrateAuth over a different state: %v, want errOtherAuthState", err)
	}
}
