package pebblekit

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestLifeMemory: an open DB reports its memtables; after Close, nothing,
// without touching the DB (which the store closes next).
func TestLifeMemory(t *testing.T) {
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	var l Life
	if _, mem, ok := l.Memory(db); !ok || mem <= 0 {
		t.Errorf("open DB: memtables %d, ok %v; want > 0, true", mem, ok)
	}
	l.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if c, m, ok := l.Memory(db); ok || c != 0 || m != 0 {
		t.Errorf("closed DB: %d %d %v, want 0 0 false", c, m, ok)
	}
}

// TestLogger: pebble's messages reach slog with the store's name, info at
// Debug, and Fatalf does not return.
func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l := Logger{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), Store: "lineage"}
	l.Infof("flushed %d", 3)
	l.Errorf("disk %s", "full")
	for _, want := range []string{`level=DEBUG msg="flushed 3" component=pebble store=lineage`, `level=ERROR msg="disk full" component=pebble store=lineage`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Fatalf returned")
		}
	}()
	l.Fatalf("corrupt %s", "manifest")
}
