package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestDriveStopsAtCount(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		concurrency, unit, count int
	}{
		{"unary", 8, 1, 1000},
		{"batch, exact", 4, 10, 1000},
		{"batch, partial last call", 3, 7, 1000},
		{"fewer events than workers", 16, 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls, events atomic.Int64
			call := func(_ context.Context, _, n int, st *workerStats, _ time.Time) error {
				if n < 1 || n > tc.unit {
					t.Errorf("call with n = %d, want 1..%d", n, tc.unit)
				}
				calls.Add(1)
				events.Add(int64(n))
				st.events += uint64(n)
				return nil
			}
			st, err := drive(t.Context(), tc.concurrency, tc.unit, 0, time.Minute, uint64(tc.count), call)
			if err != nil {
				t.Fatal(err)
			}
			if got := events.Load(); got != int64(tc.count) {
				t.Errorf("%d events appended, want %d", got, tc.count)
			}
			if st.events != uint64(tc.count) {
				t.Errorf("stats say %d events, want %d", st.events, tc.count)
			}
			if st.lat.count() != uint64(calls.Load()) {
				t.Errorf("%d latencies recorded for %d calls", st.lat.count(), calls.Load())
			}
		})
	}
}

func TestDriveStopsAtDuration(t *testing.T) {
	call := func(ctx context.Context, _, n int, st *workerStats, _ time.Time) error {
		time.Sleep(time.Millisecond)
		st.events += uint64(n)
		return nil
	}
	st, err := drive(t.Context(), 4, 1, 0, 100*time.Millisecond, 0, call)
	if err != nil {
		t.Fatal(err)
	}
	if st.elapsed < 100*time.Millisecond || st.elapsed > 5*time.Second {
		t.Errorf("elapsed %v, want about 100ms", st.elapsed)
	}
	if st.events == 0 {
		t.Error("no events appended")
	}
}

// TestDriveWarmup: calls started during the warm-up count for nothing but
// warmupEvents, later ones count as usual, and -count applies after it.
func TestDriveWarmup(t *testing.T) {
	const warmup = 150 * time.Millisecond
	start := time.Now()
	var late atomic.Int64 // events of calls started after the warm-up
	call := func(_ context.Context, _, n int, st *workerStats, _ time.Time) error {
		if time.Since(start) > warmup+20*time.Millisecond {
			late.Add(int64(n))
		}
		time.Sleep(time.Millisecond)
		st.events += uint64(n)
		return nil
	}
	st, err := drive(t.Context(), 3, 2, warmup, time.Minute, 500, call)
	if err != nil {
		t.Fatal(err)
	}
	if st.events != 500 {
		t.Errorf("%d events counted, want the -count of 500, all after the warm-up", st.events)
	}
	if st.warmupEvents == 0 {
		t.Error("no warm-up events")
	}
	if got := late.Load(); got > 500 {
		t.Errorf("%d events after the warm-up, want at most 500", got)
	}
	if st.lat.count() != 250 {
		t.Errorf("%d latencies recorded, want 250 (only measured calls)", st.lat.count())
	}
	if st.elapsed > time.Since(start)-warmup+time.Millisecond {
		t.Errorf("elapsed %v includes the warm-up", st.elapsed)
	}
}

func TestDriveReturnsFirstError(t *testing.T) {
	boom := errors.New("boom")
	var n atomic.Int64
	call := func(ctx context.Context, _, _ int, _ *workerStats, _ time.Time) error {
		if n.Add(1) == 50 {
			return boom
		}
		return nil
	}
	if _, err := drive(t.Context(), 4, 1, 0, time.Minute, 0, call); !errors.Is(err, boom) {
		t.Errorf("drive error = %v, want %v", err, boom)
	}
}

func TestDriveInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	call := func(ctx context.Context, _, _ int, _ *workerStats, _ time.Time) error {
		cancel()
		return nil
	}
	if _, err := drive(ctx, 2, 1, 0, time.Minute, 0, call); !errors.Is(err, context.Canceled) {
		t.Errorf("drive error = %v, want context.Canceled", err)
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8090", true},
		{"127.1.2.3:1", true},
		{"[::1]:8090", true},
		{"localhost:8090", true},
		{"10.0.0.1:8090", false},
		{"0.0.0.0:8090", false},
		{"example.com:8090", false},
		{"127.0.0.1", false},
	} {
		if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("checkLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
}

// TestDriveLogEnd: logEnd is the size of the log after the phase (one past
// the highest index any call was given, with a warm-up before), and each
// measured call's mark ends one past its own highest index.
func TestDriveLogEnd(t *testing.T) {
	var next atomic.Uint64 // the fake log's size
	call := func(_ context.Context, _, n int, st *workerStats, _ time.Time) error {
		end := next.Add(uint64(n))
		for i := end - uint64(n); i < end; i++ {
			st.sequenced(i)
		}
		st.events += uint64(n)
		time.Sleep(time.Millisecond)
		return nil
	}
	st, err := drive(t.Context(), 4, 10, 50*time.Millisecond, time.Minute, 200, call)
	if err != nil {
		t.Fatal(err)
	}
	if st.warmupEvents == 0 {
		t.Fatal("no warm-up calls")
	}
	if got, want := st.logEnd, next.Load(); got != want {
		t.Errorf("logEnd = %d, want %d (the fake log's size)", got, want)
	}
	if len(st.marks) != 20 {
		t.Fatalf("%d marks, want one per measured call (20)", len(st.marks))
	}
	for _, m := range st.marks {
		if m.end == 0 || m.end%10 != 0 || m.end > next.Load() {
			t.Errorf("mark ends at %d: want a call's end, a multiple of 10 up to %d", m.end, next.Load())
		}
	}
}
