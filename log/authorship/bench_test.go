package authorship

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// BenchmarkVerify is the per-event cost of authorship on append: the
// signing payload (canonical encoding) plus one Ed25519 verification.
func BenchmarkVerify(b *testing.B) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	pub, priv, _ := ed25519.GenerateKey(nil)
	h := NewKeyHistory()
	if err := h.Register("acme", "k1", pub, t0, 0); err != nil {
		b.Fatal(err)
	}
	ev := signedEvent(b, "e1", t0.Add(time.Hour), "k1", priv)
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Verify(ev); err != nil {
			b.Fatal(err)
		}
	}
}
