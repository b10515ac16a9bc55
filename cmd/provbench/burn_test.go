package main

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

func TestBurnerCalibration(t *testing.T) {
	if b := newBurner(0); b.iters != 0 {
		t.Errorf("newBurner(0) hashes %d times per call, want 0 (bare tessera)", b.iters)
	}
	// More CPU per event means proportionally more hashes. Each burner is
	// calibrated on its own (fastest of five runs), so allow for a machine
	// that other tests load more during one calibration than the other;
	// a unit mistake would be off by a thousand.
	small, large := newBurner(20*time.Microsecond), newBurner(200*time.Microsecond)
	if small.iters < 1 || large.iters < 2*small.iters || large.iters > 50*small.iters {
		t.Errorf("20µs: %d hashes, 200µs: %d hashes; want about 10 times as many", small.iters, large.iters)
	}
	// Each iteration is one SHA-256 over the last.
	var seed [sha256.Size]byte
	if got, want := hashChain(seed, 2), sha256.Sum256(func() []byte { h := sha256.Sum256(seed[:]); return h[:] }()); got != want {
		t.Errorf("hashChain(seed, 2) = %x, want SHA-256(SHA-256(seed)) = %x", got, want)
	}
}

func TestReportNamesBaselineCPU(t *testing.T) {
	var out strings.Builder
	if err := goldenReport().writeTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "plus 20µs of CPU per event") {
		t.Errorf("table does not say the baseline spent CPU per event:\n%s", out.String())
	}
}
