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
	// What flushes and compactions wrote: the write amplification that
	// costs provlogd CPU in the background.
	t := s.db.Metrics().Total()
	b.ReportMetric(float64(t.TableBytesFlushed+t.TableBytesCompacted)/float64(b.N*pass), "written-B/event")
	lookups := make([]string, 1024)
	for i := range lookups {
		lookups[i] = dedupeKey("bench", fmt.Sprintf("absent:%d", i))
	}
	start := time.Now()
	for range 100 {
		if _, err := s.LookupMany(lookups); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(100*len(lookups)), "ns/absent-lookup")
}
