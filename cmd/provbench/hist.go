package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in log-linear buckets, the HdrHistogram idea
// at two significant digits: values below 2^subBits nanoseconds get a bucket
// each, larger ones keep their top subBits bits, so a bucket is never wider
// than 1/64 of its lower bound. Percentiles report the bucket's midpoint,
// clamped to the exact minimum and maximum, so they are within 0.8% of the
// exact nearest-rank value. Memory is fixed (about 30 KiB) however long the
// run, and histograms merge exactly. Not safe for concurrent use: give each
// worker its own and merge them at the end.
type histogram struct {
	counts   []uint64
	n        uint64
	sum      float64 // nanoseconds
	min, max uint64  // nanoseconds
}

const (
	subBits    = 7
	subBuckets = 1 << subBits // 128
	halfSub    = subBuckets / 2
	// Shifts run from 1 to 64-subBits; each adds halfSub buckets.
	numBuckets = subBuckets + (64-subBits)*halfSub
)

func newHistogram() *histogram {
	return &histogram{counts: make([]uint64, numBuckets), min: math.MaxUint64}
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits // >= 1
	m := v >> shift                  // in [halfSub, subBuckets)
	return subBuckets + (shift-1)*halfSub + int(m-halfSub)
}

// bucketRange returns the smallest and largest value in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subBuckets {
		return uint64(i), uint64(i)
	}
	shift := (i-subBuckets)/halfSub + 1
	m := uint64((i-subBuckets)%halfSub + halfSub)
	lo = m << shift
	return lo, lo + (uint64(1) << shift) - 1
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	h.counts[bucketOf(v)]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

func (h *histogram) count() uint64 { return h.n }

func (h *histogram) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

func (h *histogram) maximum() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.max)
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100): the
// smallest recorded value with at least p% of the values at or below it,
// up to the bucket resolution. It is 0 for an empty histogram.
func (h *histogram) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := nearestRank(p, h.n)
	if rank == h.n {
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// nearestRank is the 1-based rank of the p-th percentile of n values:
// ceil(p/100 * n), at least 1 and at most n. The tolerance keeps float
// error from pushing an exact product up a rank (99.9% of 1000 is 999,
// not 1000).
func nearestRank(p float64, n uint64) uint64 {
	r := uint64(math.Ceil(p*float64(n)/100 - 1e-9))
	return min(max(r, 1), n)
}

// exactPercentile is the nearest-rank p-th percentile of sorted values; the
// reference the histogram is tested against.
func exactPercentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[nearestRank(p, uint64(len(sorted)))-1]
}
