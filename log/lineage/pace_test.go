package lineage

import (
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
