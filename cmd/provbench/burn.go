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
		hashChain([sha256.Size]byte{}, calibrationHashes)
		best = min(best, time.Since(start))
	}
	best = max(best, time.Microsecond)
	return burner{iters: max(1, int(float64(calibrationHashes)*float64(per)/float64(best)))}
}

func (b burner) spend() {
	if b.iters > 0 {
		hashChain([sha256.Size]byte{}, b.iters)
	}
}

// hashChain hashes n times, each hash over the one before it, starting
// from h. (The compiler cannot drop the calls: SHA-256's block function is
// assembly, so there is no need to keep the result, nor a shared variable
// for the appending goroutines to race on.)
func hashChain(h [sha256.Size]byte, n int) [sha256.Size]byte {
	for range n {
		h = sha256.Sum256(h[:])
	}
	return h
}
