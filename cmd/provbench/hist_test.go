package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestNearestRank(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		n    uint64
		want uint64
	}{
		{50, 1, 1},
		{100, 1, 1},
		{50, 2, 1},
		{50, 3, 2},
		{90, 10, 9},
		{99, 10, 10},
		{99, 100, 99},
		{99.9, 1000, 999},
		{100, 1000, 1000},
		{0.0001, 1000, 1},
	} {
		if got := nearestRank(tc.p, tc.n); got != tc.want {
			t.Errorf("nearestRank(%v, %d) = %d, want %d", tc.p, tc.n, got, tc.want)
		}
	}
}

func TestExactPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	sorted := ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 5 * time.Millisecond},
		{90, 9 * time.Millisecond},
		{99, 10 * time.Millisecond},
		{100, 10 * time.Millisecond},
		{10, 1 * time.Millisecond},
		{11, 2 * time.Millisecond},
	} {
		if got := exactPercentile(sorted, tc.p); got != tc.want {
			t.Errorf("exactPercentile(1..10ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := exactPercentile(nil, 50); got != 0 {
		t.Errorf("exactPercentile(nil) = %v, want 0", got)
	}
}

func TestBucketsCoverEveryValue(t *testing.T) {
	// Bucket ranges tile [0, 2^64) in order without gaps.
	var next uint64
	for i := range numBuckets {
		lo, hi := bucketRange(i)
		if lo != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, next)
		}
		if hi < lo {
			t.Fatalf("bucket %d: hi %d < lo %d", i, hi, lo)
		}
		if lo >= subBuckets && float64(hi-lo+1)/float64(lo) > 1.0/halfSub {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its start", i, lo, hi, halfSub)
		}
		for _, v := range []uint64{lo, hi, lo + (hi-lo)/2} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		next = hi + 1
	}
	if next != 0 { // wrapped past 2^64-1
		t.Fatalf("buckets end at %d, want 2^64", next)
	}
}

func TestHistogramSmallValuesExact(t *testing.T) {
	h := newHistogram()
	var vals []time.Duration
	for v := range 100 {
		h.record(time.Duration(v))
		vals = append(vals, time.Duration(v))
	}
	for _, p := range []float64{1, 10, 50, 90, 99, 100} {
		if got, want := h.percentile(p), exactPercentile(vals, p); got != want {
			t.Errorf("percentile(%v) = %v, want %v", p, got, want)
		}
	}
}

func TestHistogramMatchesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
	}{
		{"uniform 0-100ms", func() time.Duration { return time.Duration(rng.Int64N(int64(100 * time.Millisecond))) }},
		{"lognormal around 2ms", func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*1.2) * float64(2*time.Millisecond))
		}},
		{"bimodal 1ms and 1s", func() time.Duration {
			if rng.IntN(100) < 97 {
				return time.Millisecond + time.Duration(rng.IntN(1000))*time.Microsecond
			}
			return time.Second + time.Duration(rng.IntN(1000))*time.Millisecond
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistogram()
			vals := make([]time.Duration, 50_000)
			for i := range vals {
				vals[i] = tc.gen()
				h.record(vals[i])
			}
			slices.Sort(vals)
			for _, p := range []float64{50, 90, 99, 99.9} {
				got, want := h.percentile(p), exactPercentile(vals, p)
				if rel := math.Abs(float64(got-want)) / float64(want); rel > 0.008 {
					t.Errorf("percentile(%v) = %v, exact %v: relative error %.4f > 0.008", p, got, want, rel)
				}
			}
			if got, want := h.percentile(100), vals[len(vals)-1]; got != want {
				t.Errorf("percentile(100) = %v, want exact max %v", got, want)
			}
			if got, want := h.maximum(), vals[len(vals)-1]; got != want {
				t.Errorf("maximum() = %v, want %v", got, want)
			}
			var sum float64
			for _, v := range vals {
				sum += float64(v)
			}
			if got, want := float64(h.mean()), sum/float64(len(vals)); math.Abs(got-want) > 1 {
				t.Errorf("mean() = %v, want %v", got, want)
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a, b, all := newHistogram(), newHistogram(), newHistogram()
	for i := range 10_000 {
		v := time.Duration(rng.Int64N(int64(time.Second)))
		all.record(v)
		if i%3 == 0 {
			a.record(v)
		} else {
			b.record(v)
		}
	}
	a.merge(b)
	a.merge(newHistogram()) // merging an empty one changes nothing
	if a.count() != all.count() || a.maximum() != all.maximum() || a.min != all.min {
		t.Fatalf("merged count/max/min = %d/%v/%d, want %d/%v/%d", a.count(), a.maximum(), a.min, all.count(), all.maximum(), all.min)
	}
	for _, p := range []float64{1, 50, 90, 99, 100} {
		if got, want := a.percentile(p), all.percentile(p); got != want {
			t.Errorf("merged percentile(%v) = %v, want %v", p, got, want)
		}
	}
}

func TestHistogramEmpty(t *testing.T) {
	h := newHistogram()
	if h.percentile(50) != 0 || h.maximum() != 0 || h.mean() != 0 || h.count() != 0 {
		t.Errorf("empty histogram: p50 %v max %v mean %v count %d, want all 0", h.percentile(50), h.maximum(), h.mean(), h.count())
	}
}
