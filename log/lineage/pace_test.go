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
		contended func() bool
		want      time.Duration
	}{
		{"half, no probe", 0.5, nil, 100 * time.Millisecond},
		{"half, appends arriving", 0.5, yes, 100 * time.Millisecond},
		{"quarter, appends arriving", 0.25, yes, 300 * time.Millisecond},
		{"half, no appends", 0.5, no, 0},
		{"no cap", 1, yes, 0},
		{"cap unset", 0, yes, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ix := newIndex(nil, nil, Options{MaxBusy: tc.maxBusy, Contended: tc.contended})
			if got := ix.pause(100 * time.Millisecond); got != tc.want {
				t.Errorf("pause after a 100ms pass = %v, want %v", got, tc.want)
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
