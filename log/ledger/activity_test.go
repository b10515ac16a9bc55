package ledger

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestAppendedWithin: the ledger says whether appends are arriving, by the
// time of the last Append call on its clock.
func TestAppendedWithin(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC).UnixNano())
	l := openLedger(t, t.TempDir(), func(c *Config) {
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	if l.AppendedWithin(time.Second) {
		t.Fatal("AppendedWithin(1s) before any append = true")
	}
	appendAll(t, l, testEvent("acme", "evt-1"))
	if !l.AppendedWithin(time.Second) {
		t.Error("AppendedWithin(1s) just after an append = false")
	}
	now.Add(int64(2 * time.Second))
	if l.AppendedWithin(time.Second) {
		t.Error("AppendedWithin(1s) 2s after the last append = true")
	}
	if !l.AppendedWithin(3 * time.Second) {
		t.Error("AppendedWithin(3s) 2s after the last append = false")
	}
}
