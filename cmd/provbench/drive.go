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
	sigs       sigRange   // signatures on the checkpoints of published appends
	// end is set by a call: one past the highest log index its events
	// were given (0: none acknowledged). drive keeps it in marks.
	end   uint64
	marks []callMark
}

// sequenced notes that one of the current call's events is at index.
func (st *workerStats) sequenced(index uint64) { st.end = max(st.end, index+1) }

// sigRange is the fewest and most signature lines seen on the checkpoints
// that published appends returned: 1 is the log's own, more are witness
// cosignatures (or a second log key during a key rotation).
type sigRange struct {
	seen     bool
	min, max int
}

func (r *sigRange) add(n int) {
	if !r.seen {
		r.seen, r.min, r.max = true, n, n
		return
	}
	r.min, r.max = min(r.min, n), max(r.max, n)
}

func (r *sigRange) merge(o sigRange) {
	if o.seen {
		r.add(o.min)
		r.add(o.max)
	}
}

// callFunc appends n events in one call (one RPC, or n tessera adds
// awaited together) for worker w and accounts for them in st. It returns an
// error only for what should end the run; pushback is retried inside, until
// stopAt.
type callFunc func(ctx context.Context, w, n int, st *workerStats, stopAt time.Time) error

// phaseStats is the merged outcome of a phase.
type phaseStats struct {
	workerStats
	elapsed time.Duration
	// warmupEvents were acknowledged during the warm-up, and are in no
	// other number.
	warmupEvents uint64
	// logEnd is one past the highest index any call of the phase was
	// given, warm-up included: the log size the lineage index must reach
	// to cover every event appended.
	logEnd uint64
}

// drive runs concurrency workers, each making calls of unit events back to
// back: first for warmup, whose calls are not counted, then until dur has
// passed or count events (if count > 0) have been started. Calls in flight
// when the time is up finish and count; elapsed runs from the end of the
// warm-up (the first call when there is none) to the last call's end. A
// call started during the warm-up counts for nothing, even if it ends
// after it.
func drive(ctx context.Context, concurrency, unit int, warmup, dur time.Duration, count uint64, call callFunc) (phaseStats, error) {
	stats := make([]workerStats, concurrency)
	warm := make([]workerStats, concurrency)
	var reserved atomic.Uint64
	start := time.Now()
	measureFrom := start.Add(warmup)
	stopAt := measureFrom.Add(dur)
	g, gctx := errgroup.WithContext(ctx)
	for w := range stats {
		st, ws := &stats[w], &warm[w]
		st.lat, ws.lat = newHistogram(), newHistogram()
		g.Go(func() error {
			for gctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(stopAt) {
					return nil
				}
				if t0.Before(measureFrom) {
					if err := call(gctx, w, unit, ws, measureFrom); err != nil {
						return err
					}
					continue
				}
				n := unit
				if count > 0 {
					end := reserved.Add(uint64(unit))
					begin := end - uint64(unit)
					if begin >= count {
						return nil
					}
					n = int(min(end, count) - begin)
				}
				st.end = 0
				if err := call(gctx, w, n, st, stopAt); err != nil {
					return err
				}
				st.lat.record(time.Since(t0))
				if st.end > 0 {
					st.marks = append(st.marks, callMark{start: t0, end: st.end})
				}
			}
			return nil
		})
	}
	err := g.Wait()
	out := phaseStats{elapsed: time.Since(measureFrom)}
	out.lat = newHistogram()
	for i := range stats {
		s := &stats[i]
		out.lat.merge(s.lat)
		out.events += s.events
		out.duplicates += s.duplicates
		out.retries += s.retries
		out.abandoned += s.abandoned
		out.sigs.merge(s.sigs)
		out.marks = append(out.marks, s.marks...)
		out.warmupEvents += warm[i].events
		out.logEnd = max(out.logEnd, warm[i].end) // warm-up calls do not reset end
	}
	for _, m := range out.marks {
		out.logEnd = max(out.logEnd, m.end)
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
