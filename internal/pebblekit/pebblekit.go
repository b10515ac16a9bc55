// Package pebblekit holds what provlog's embedded pebble stores (the
// idempotency index, the lineage index, the vault) share: pebble's log
// messages sent to slog, and memory figures that are safe to read while
// the store closes.
package pebblekit

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Logger sends pebble's messages to slog, tagged with the store's name:
// pebble's informational chatter at Debug.
type Logger struct {
	Log   *slog.Logger
	Store string
}

func (l Logger) Infof(format string, args ...any) {
	l.Log.Debug(fmt.Sprintf(format, args...), "component", "pebble", "store", l.Store)
}

func (l Logger) Errorf(format string, args ...any) {
	l.Log.Error(fmt.Sprintf(format, args...), "component", "pebble", "store", l.Store)
}

// Fatalf is pebble's report of an unrecoverable state; pebble expects it
// not to return.
func (l Logger) Fatalf(format string, args ...any) {
	l.Log.Error(fmt.Sprintf(format, args...), "component", "pebble", "store", l.Store)
	panic(fmt.Sprintf(format, args...))
}

// Life guards reading a DB's metrics against the DB's closing: a store
// calls Close before it closes its DB, and Memory reports nothing after.
type Life struct {
	mu     sync.RWMutex
	closed bool
}

// Close marks the DB closed; Memory waits for no reader after it returns.
func (l *Life) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// Memory reports the bytes db holds outside the Go heap, in its block cache
// and its memtables; ok is false once Close was called.
func (l *Life) Memory(db *pebble.DB) (cache, memtables int64, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, 0, false
	}
	m := db.Metrics()
	return m.BlockCache.Size, int64(m.MemTable.Size), true
}
