package lineage

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestPause: Run rests after a pass to hold indexing to MaxBusy of the
// wall time, and not at all when nothing competes with it.
func TestPause(t *testing.T) {
	yes := func() bool { return true }
	no := func() bool { return false }
	for _, tc := range []struct {
		name      string
		maxBusy   float64
		maxLag    uint64
		behind    uint64
		contended func() bool
		want      time.Duration
	}{
		{"half, no probe", 0.5, 0, 1000, nil, 100 * time.Millisecond},
		{"half, appends arriving", 0.5, 0, 1000, yes, 100 * time.Millisecond},
		{"quarter, appends arriving", 0.25, 0, 1000, yes, 300 * time.Millisecond},
		{"half, no appends", 0.5, 0, 1000, no, 0},
		{"no cap", 1, 0, 1000, yes, 0},
		{"cap unset", 0, 0, 1000, yes, 0},
		{"within the lag bound", 0.5, 1000, 1000, yes, 100 * time.Millisecond},
		{"past the lag bound", 0.5, 1000, 1001, yes, 0},
		{"far behind, no lag bound", 0.5, 0, 1 << 40, yes, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := newIndex(nil, nil, Options{MaxBusy: tc.maxBusy, MaxLag: tc.maxLag, Contended: tc.contended})
			if got := ix.pause(100*time.Millisecond, tc.behind); got != tc.want {
				t.Errorf("pause after a 100ms pass, %d leaves behind = %v, want %v", tc.behind, got, tc.want)
			}
		})
	}
}

// TestRestEndsWithTheLoad: a pause decided while appends arrived ends
// soon after they stop, not when its full length (here an hour) is up;
// while they keep arriving it lasts; and it ends with its context.
func TestRestEndsWithTheLoad(t *testing.T) {
	var busy atomic.Bool
	busy.Store(true)
	ix := newIndex(nil, nil, Options{MaxBusy: 0.01, Contended: busy.Load})
	done := make(chan error, 1)
	go func() { done <- ix.rest(t.Context(), time.Hour) }()
	select {
	case err := <-done:
		t.Fatalf("rest returned (%v) while appends were still arriving", err)
	case <-time.After(3 * restCheck):
	}
	busy.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("rest = %v, want nil once appends stopped", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("rest still pausing 10s after appends stopped")
	}

	// A short pause under load runs its length.
	busy.Store(true)
	start := time.Now()
	if err := ix.rest(t.Context(), 250*time.Millisecond); err != nil || time.Since(start) < 250*time.Millisecond {
		t.Errorf("rest(250ms) under load = %v after %v, want nil after at least 250ms", err, time.Since(start))
	}

	// Cancelling the context ends it.
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- ix.rest(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("rest after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("rest still pausing 10s after its context ended")
	}
}

// TestRunKeepsWithinMaxLag: under appends that never stop (Contended
// always true) and a cap that would rest ten thousand times each pass,
// Run still indexes a log far behind it without resting, until it is
// within MaxLag of the log's end; and a pause it began close to the end
// ends once the log runs more than MaxLag ahead.
func TestRunKeepsWithinMaxLag(t *testing.T) {
	const maxLag = 300
	src := &synthSource{g: synth{tenants: 2}}
	always := func() bool { return true }
	ix := openIndex(t, src, Options{PassSize: 256, PollInterval: 10 * time.Millisecond, MaxBusy: 0.0001, MaxLag: maxLag, Contended: always})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	defer func() { cancel(); <-done }()
	reach := func(want uint64, why string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for ix.Watermark() < want {
			if time.Now().After(deadline) {
				t.Fatalf("index at %d, want %d after 30s: %s", ix.Watermark(), want, why)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The log grows after Open (which catches up unpaced): 2048 leaves,
	// far more than MaxLag behind.
	src.setSize(2048)
	reach(2048-maxLag, "it rested while more than MaxLag behind")
	// Within MaxLag of the end it rests, for ten thousand times a pass:
	// the watermark stops short of 2048. Then the log runs far ahead.
	for last := uint64(0); last != ix.Watermark(); time.Sleep(3 * restCheck) {
		last = ix.Watermark()
	}
	if wm := ix.Watermark(); wm == 2048 {
		t.Fatalf("index at the log's end (%d), want it resting within MaxLag of it", wm)
	}
	src.setSize(4096)
	reach(4096-maxLag, "a pause begun within MaxLag went on after the log ran further ahead")
}
