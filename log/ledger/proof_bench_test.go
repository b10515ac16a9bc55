package ledger

import (
	"testing"

	"github.com/transparency-dev/tessera/client"
)

// BenchmarkReceiptProofs: the inclusion proofs of one AppendBatch of 100
// events waiting for publication, at the end of a log of 20,000 leaves:
// tessera's client.ProofBuilder (one per call, as before) beside the
// shared tree-node cache, first use (cold: tiles read and hashed) and the
// 2nd to 64th callers at the same size (warm).
//
//	go test ./log/ledger -run '^$' -bench ReceiptProofs
func BenchmarkReceiptProofs(b *testing.B) {
	l := openLedger(b, b.TempDir(), nil)
	const total = 20000
	for i := 0; i < total; i += 1000 {
		appendAll(b, l, eventsFor("acme", ids("b"+string(rune('a'+i/1000)), 1000))...)
	}
	awaitSize(b, l, total)
	size := uint64(total)
	batch := make([]uint64, 100)
	for i := range batch {
		batch[i] = size - 100 + uint64(i)
	}
	b.Run("tessera-client", func(b *testing.B) {
		for b.Loop() {
			pb, err := client.NewProofBuilder(b.Context(), size, l.reader.ReadTile)
			if err != nil {
				b.Fatal(err)
			}
			for _, i := range batch {
				if _, err := pb.InclusionProof(b.Context(), i); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("shared-cold", func(b *testing.B) {
		for b.Loop() {
			tree := newTreeNodes(size, l.reader.ReadTile)
			for _, i := range batch {
				if _, err := tree.inclusion(b.Context(), i); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("shared-warm", func(b *testing.B) {
		if _, err := l.InclusionProofs(b.Context(), size, batch); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := l.InclusionProofs(b.Context(), size, batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
