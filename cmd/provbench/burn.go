package main

import (
	"crypto/sha256"
	"time"
)

// burner spends a fixed amount of CPU on each call of spend: the model of
// a service that does that much work per event in the same process as
// tessera, on the goroutines that append (-baseline-cpu-per-event). Run
// against the bare baseline it shows how tessera's rate falls with the
// CPU spent beside it (BENCHMARKS.md, "The ratio follows CPU per event").
type burner struct {
	iters int // hashes per call
}

// calibrationHashes is how many hashes one timed calibration run does
// (about 2 ms on the machine of BENCHMARKS.md).
const calibrationHashes = 8192

// newBurner returns a burner that spends about per of CPU per call,
// calibrated on this machine now: the fastest of five timed runs counts,
// so that a run the scheduler interrupted does not inflate it.
func newBurner(per time.Duration) burner {
	if per <= 0 {
		return burner{}
	}
	best := time.Duration(1<<63 - 1)
	for range 5 {
		start := time.Now()
		hashChain(calibrationHashes)
		best = min(best, time.Since(start))
	}
	best = max(best, time.Microsecond)
	return burner{iters: max(1, int(float64(calibrationHashes)*float64(per)/float64(best)))}
}

func (b burner) spend() {
	if b.iters > 0 {
		hashChain(b.iters)
	}
}

// burnSink keeps the compiler from dropping the hashing.
var burnSink [sha256.Size]byte

// hashChain hashes n times, each hash over the one before it.
func hashChain(n int) {
	h := burnSink
	for range n {
		h = sha256.Sum256(h[:])
	}
	burnSink = h
}
