package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// callTimeout bounds one append call, retries included, so that a hung
// server cannot keep a phase running past its limits by much.
const callTimeout = time.Minute

// workerStats is what one worker saw. Each worker owns its own.
type workerStats struct {
	lat        *histogram // latency of each call
	events     uint64     // acknowledged events
	duplicates uint64     // acknowledged as already in the log
	retries    uint64     // calls (or adds) sent again after pushback
	abandoned  uint64     // events given up on because the phase ended while retrying
}

// callFunc appends n events in one call (one RPC, or n tessera adds
// awaited together) and accounts for them in st. It returns an error only
// for what should end the run; pushback is retried inside, until stopAt.
type callFunc func(ctx context.Context, n int, st *workerStats, stopAt time.Time) error

// phaseStats is the merged outcome of a phase.
type phaseStats struct {
	workerStats
	elapsed time.Duration
}

// drive runs concurrency workers, each making calls of unit events back to
// back, until dur has passed or count events (if count > 0) have been
// started. Calls in flight when the time is up finish and count; elapsed
// runs from the first call to the last one's end.
func drive(ctx context.Context, concurrency, unit int, dur time.Duration, count uint64, call callFunc) (phaseStats, error) {
	stats := make([]workerStats, concurrency)
	var reserved atomic.Uint64
	start := time.Now()
	stopAt := start.Add(dur)
	g, gctx := errgroup.WithContext(ctx)
	for w := range stats {
		st := &stats[w]
		st.lat = newHistogram()
		g.Go(func() error {
			for gctx.Err() == nil && time.Now().Before(stopAt) {
				n := unit
				if count > 0 {
					end := reserved.Add(uint64(unit))
					begin := end - uint64(unit)
					if begin >= count {
						return nil
					}
					n = int(min(end, count) - begin)
				}
				t0 := time.Now()
				if err := call(gctx, n, st, stopAt); err != nil {
					return err
				}
				st.lat.record(time.Since(t0))
			}
			return nil
		})
	}
	err := g.Wait()
	out := phaseStats{elapsed: time.Since(start)}
	out.lat = newHistogram()
	for i := range stats {
		s := &stats[i]
		out.lat.merge(s.lat)
		out.events += s.events
		out.duplicates += s.duplicates
		out.retries += s.retries
		out.abandoned += s.abandoned
	}
	if err == nil {
		err = ctx.Err()
	}
	return out, err
}

// backoff is capped exponential backoff with full jitter, for retrying
// pushback. The zero value is ready to use.
type backoff struct{ next time.Duration }

const (
	backoffMin = 10 * time.Millisecond
	backoffMax = time.Second
)

// wait sleeps for the next backoff interval or until ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	b.next = min(max(2*b.next, backoffMin), backoffMax)
	t := time.NewTimer(rand.N(b.next) + 1)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
