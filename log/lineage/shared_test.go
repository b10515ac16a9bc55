package lineage

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/provlog/provlog/log/ledger/awstest"
)

// TestSharedWriterTakeover runs two Shared indexes on one MariaDB table
// over one log: one writes, the other follows and answers the same digest;
// when the writer's session dies, its commits fail and the other takes
// over from the stored watermark. Both end at the digest of an embedded
// index built over the same log.
func TestSharedWriterTakeover(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	ctx := t.Context()
	src := &synthSource{g: synth{tenants: 3}, size: 700}
	opts := Options{Logger: testLogger, PassSize: 256}
	open := func() *Shared {
		s, err := OpenShared(ctx, dsn, "lineage_shared", src, opts, false)
		if err != nil {
			t.Fatalf("OpenShared: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	if err := b.Index().CatchUp(ctx); !errors.Is(err, ErrNotWriter) {
		t.Fatalf("CatchUp without the lock: %v, want ErrNotWriter", err)
	}
	a.step(ctx, false)
	b.step(ctx, false)
	if !a.Writer() || b.Writer() {
		t.Fatalf("writers: a %v, b %v; want a only", a.Writer(), b.Writer())
	}
	want := func(size uint64) [32]byte {
		t.Helper()
		ref := openIndex(t, &synthSource{g: src.g, size: size}, Options{})
		n, d, _ := ref.Digest(ctx)
		if n != size {
			t.Fatalf("reference index at %d, want %d", n, size)
		}
		return d
	}
	check := func(s *Shared, size uint64, d [32]byte) {
		t.Helper()
		n, got, err := s.Index().Digest(ctx)
		if err != nil || n != size || got != d {
			t.Fatalf("Digest = %d %x %v, want %d %x", n, got, err, size, d)
		}
		if _, _, err := s.Index().VerifyDigest(ctx); err != nil {
			t.Fatalf("VerifyDigest: %v", err)
		}
	}
	d700 := want(700)
	check(a, 700, d700)
	check(b, 700, d700)

	// The writer's session dies (as when its process is killed).
	var id int64
	a.store.mu.Lock()
	err := a.store.conn.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&id)
	a.store.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := mysql.ParseDSN(dsn)
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `KILL ?`, id); err != nil {
		t.Fatalf("KILL: %v", err)
	}
	src.setSize(1500)
	if err := a.Index().CatchUp(ctx); err == nil {
		t.Fatal("a pass committed after the writer's session died")
	}
	deadline := time.Now().Add(10 * time.Second)
	for !b.Writer() {
		if time.Now().After(deadline) {
			t.Fatal("b never took the writer lock")
		}
		a.step(ctx, false)
		b.step(ctx, false)
	}
	if a.Writer() {
		t.Fatal("a still thinks it writes")
	}
	a.step(ctx, false)
	d1500 := want(1500)
	check(b, 1500, d1500)
	check(a, 1500, d1500)
}
