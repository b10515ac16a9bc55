package vault

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkSealBatch seals 100 events of 3 values each per op, in one
// synced write: the vault's share of appending a batch.
func BenchmarkSealBatch(b *testing.B) {
	dir := b.TempDir()
	km, err := NewFileKeyManager(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	v, err := Open(Config{Dir: filepath.Join(dir, "vault"), Keys: km})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	n := 0
	for b.Loop() {
		reqs := make([]Request, 100)
		for i := range reqs {
			n++
			reqs[i] = Request{Tenant: "acme", EventID: fmt.Sprintf("evt-%d", n), Values: []Plain{
				{Name: "email", Classification: "pii", Value: []byte(fmt.Sprintf("alice.%d@example.com", n))},
				{Name: "phone", Classification: "pii", Value: []byte("+33 6 12 34 56 78")},
				{Name: "amount", Classification: "confidential", Value: []byte("1250000.00")},
			}}
		}
		if _, err := v.SealBatch(reqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*300), "ns/value")
}
