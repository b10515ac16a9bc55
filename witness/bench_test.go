package witness

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAddCheckpoint measures cosignatures per second through the HTTP
// handler: parse, verify the log signature and the consistency proof,
// cosign, and commit to a real bbolt store with fsync, one checkpoint per
// iteration, each growing the log by one entry.
func BenchmarkAddCheckpoint(b *testing.B) {
	l := newTestLog(b, "example.com/bench", "", "e", 1)
	env := newTestWitness(b, l.config(b))
	h := env.w.Handler()
	if env.store.db.NoSync {
		b.Fatal("benchmark must run with fsync on")
	}
	if _, err := env.w.AddCheckpoint(b.Context(), 0, nil, l.checkpoint(b, 1)); err != nil {
		b.Fatal(err)
	}
	bodies := make([][]byte, b.N)
	for i := range bodies {
		l.append(b, []byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24)})
		bodies[i] = l.grow(b, l.size-1, l.size)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/add-checkpoint", bytes.NewReader(bodies[i])))
		if rec.Code != http.StatusOK {
			b.Fatalf("iteration %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cosigs/s")
}
