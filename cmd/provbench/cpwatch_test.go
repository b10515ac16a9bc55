package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckpointLatencies(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	seen := []cpSeen{{at(0), 5}, {at(1000), 300}, {at(2100), 700}}
	for _, tc := range []struct {
		name      string
		marks     []callMark
		want      []time.Duration // sorted latencies
		uncovered int
	}{
		{name: "first covering checkpoint", marks: []callMark{{at(100), 300}}, want: []time.Duration{900 * time.Millisecond}},
		{name: "one past the end is covered by that size", marks: []callMark{{at(100), 301}}, want: []time.Duration{2 * time.Second}},
		{name: "calls with nothing acknowledged are left out", marks: []callMark{{at(100), 0}, {at(200), 6}}, want: []time.Duration{800 * time.Millisecond}},
		{name: "covered before the call started (duplicates)", marks: []callMark{{at(1500), 4}}, want: []time.Duration{0}},
		{name: "beyond every checkpoint", marks: []callMark{{at(100), 701}, {at(100), 700}}, want: []time.Duration{2 * time.Second}, uncovered: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &checkpointWatch{seen: seen}
			h, uncovered := w.latencies(tc.marks)
			if uncovered != tc.uncovered {
				t.Errorf("uncovered = %d, want %d", uncovered, tc.uncovered)
			}
			if h.count() != uint64(len(tc.want)) {
				t.Fatalf("%d latencies, want %d", h.count(), len(tc.want))
			}
			// The histogram's buckets are within 1% of the value.
			for i, p := range []float64{0, 100} {
				want := tc.want[0]
				if i == 1 {
					want = tc.want[len(tc.want)-1]
				}
				got := h.percentile(max(p, 1))
				if d := got - want; d > want/100+time.Millisecond || -d > want/100+time.Millisecond {
					t.Errorf("p%v = %v, want %v", p, got, want)
				}
			}
		})
	}
}

func TestCheckpointWatch(t *testing.T) {
	var size atomic.Uint64
	var fail atomic.Bool
	read := func(context.Context) (uint64, error) {
		if fail.Load() {
			return 0, errors.New("checkpoint unreadable")
		}
		return size.Load(), nil
	}
	w := watchCheckpoints(t.Context(), read, time.Millisecond)
	defer w.stop()
	size.Store(10)
	if err := w.waitFor(t.Context(), 10, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		time.Sleep(50 * time.Millisecond)
		size.Store(20)
	}()
	if err := w.waitFor(t.Context(), 15, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	h, _ := w.latencies([]callMark{{start, 15}})
	if got := h.maximum(); got < 50*time.Millisecond {
		t.Errorf("latency %v, but the checkpoint covering it came 50ms after the call", got)
	}
	fail.Store(true)
	err := w.waitFor(t.Context(), 30, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "latest seen has 20") || !strings.Contains(err.Error(), "checkpoint unreadable") {
		t.Errorf("waitFor past the log's size: %v, want the latest size and the read error", err)
	}
	w.stop()
	w.stop() // twice is fine
	var none *checkpointWatch
	none.stop()
	if l, err := toCheckpoint(t.Context(), nil, []callMark{{start, 1}}); l != nil || err != nil {
		t.Errorf("toCheckpoint without a watch = %v, %v; want nothing", l, err)
	}
}
