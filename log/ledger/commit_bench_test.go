package ledger

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkIndexCommit is the follower's commit of one pass (64 bundles)
// of records this process appended: what it costs per event.
func BenchmarkIndexCommit(b *testing.B) {
	s, err := openPebbleStore(b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const pass = 64 * 256
	var next uint64
	recs := make([]record, pass)
	var spent time.Duration
	for b.Loop() {
		for i := range recs {
			idx := next + uint64(i)
			recs[i] = record{
				Key:      dedupeKey("bench", fmt.Sprintf("bench:0a1b2c3d:%d", idx)),
				Index:    idx,
				LeafHash: sha256.Sum256(fmt.Appendf(nil, "leaf %d", idx)),
				Digest:   sha256.Sum256(fmt.Appendf(nil, "event %d", idx)),
				New:      true,
			}
		}
		next += pass
		start := time.Now()
		if err := s.Commit(recs, next); err != nil {
			b.Fatal(err)
		}
		spent += time.Since(start)
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*pass), "ns/event")
}
