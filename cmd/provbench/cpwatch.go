package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// callMark is one measured call: when it started, and one past the highest
// log index any of its events was given (0: none was acknowledged).
type callMark struct {
	start time.Time
	end   uint64
}

// cpSeen is a published tree size and when the watch first saw it.
type cpSeen struct {
	at   time.Time
	size uint64
}

// checkpointWatch polls a log's published checkpoint (the witnessed one,
// when provlogd has a witness policy) and records when each new size was
// first seen. With the calls' marks that gives, for appends that waited
// only to be sequenced, the time from each call to the first checkpoint
// covering all of its events: the time to a (witnessed) checkpoint under
// whatever load the phase put on the log, without the appends themselves
// waiting for publication (-wait published makes a closed loop in which
// every caller is idle until a checkpoint comes, so the log is never
// saturated). Latencies are late by at most one poll interval.
type checkpointWatch struct {
	read  func(ctx context.Context) (uint64, error)
	every time.Duration

	mu      sync.Mutex
	seen    []cpSeen // sizes strictly increasing
	lastErr error    // of the latest read; errCheckpointUnavailable ends the polling

	cancel context.CancelFunc
	done   chan struct{}
}

// watchCheckpoints starts polling read every interval; stop ends it.
func watchCheckpoints(ctx context.Context, read func(ctx context.Context) (uint64, error), every time.Duration) *checkpointWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &checkpointWatch{read: read, every: every, cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w
}

func (w *checkpointWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, callTimeout)
		size, err := w.read(rctx)
		cancel()
		now := time.Now()
		w.mu.Lock()
		if ctx.Err() == nil {
			w.lastErr = err
		}
		if err == nil && (len(w.seen) == 0 || size > w.seen[len(w.seen)-1].size) {
			w.seen = append(w.seen, cpSeen{at: now, size: size})
		}
		w.mu.Unlock()
		if errors.Is(err, errCheckpointUnavailable) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop ends the polling; it may be called more than once, and on nil.
func (w *checkpointWatch) stop() {
	if w == nil {
		return
	}
	w.cancel()
	<-w.done
}

// latest is the largest size seen and the latest read's error.
func (w *checkpointWatch) latest() (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.seen); n > 0 {
		return w.seen[n-1].size, w.lastErr
	}
	return 0, w.lastErr
}

// waitFor waits until a checkpoint of at least size has been seen, for at
// most limit.
func (w *checkpointWatch) waitFor(ctx context.Context, size uint64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		got, lastErr := w.latest()
		switch {
		case got >= size:
			return nil
		case errors.Is(lastErr, errCheckpointUnavailable):
			return lastErr
		case !time.Now().Before(deadline) && lastErr != nil:
			return fmt.Errorf("no checkpoint of size %d within %v (the latest seen has %d; last read error: %w)", size, limit, got, lastErr)
		case !time.Now().Before(deadline):
			return fmt.Errorf("no checkpoint of size %d within %v (the latest seen has %d)", size, limit, got)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// latencies returns, per call that had events acknowledged, the time from
// its start to the first checkpoint seen covering them, and how many calls
// no checkpoint seen covers.
func (w *checkpointWatch) latencies(marks []callMark) (h *histogram, uncovered int) {
	w.mu.Lock()
	seen := w.seen
	w.mu.Unlock()
	h = newHistogram()
	for _, m := range marks {
		if m.end == 0 {
			continue
		}
		i := sort.Search(len(seen), func(i int) bool { return seen[i].size >= m.end })
		if i == len(seen) {
			uncovered++
			continue
		}
		// A checkpoint first seen before the call started covers its
		// events only if they were all duplicates of older ones; the
		// call then waited for nothing.
		h.record(max(seen[i].at.Sub(m.start), 0))
	}
	return h, uncovered
}

// errCheckpointUnavailable means the target will not say what its
// checkpoint is (no GetCheckpoint, or a token that may not ask).
var errCheckpointUnavailable = errors.New("the published checkpoint is not available")

// checkpointWaitLimit bounds the wait, after a phase, for a checkpoint
// covering its last events.
const checkpointWaitLimit = time.Minute

// watch starts watching a target's checkpoint, or returns nil with
// -checkpoint-poll 0.
func (c *Config) watch(ctx context.Context, read func(ctx context.Context) (uint64, error)) *checkpointWatch {
	if c.CheckpointPoll <= 0 {
		return nil
	}
	return watchCheckpoints(ctx, read, c.CheckpointPoll)
}

// toCheckpoint waits until w has seen a checkpoint covering every call in
// marks, stops w, and returns the calls' latencies to their first covering
// checkpoint. A nil w gives nil.
func toCheckpoint(ctx context.Context, w *checkpointWatch, marks []callMark) (*latency, error) {
	if w == nil {
		return nil, nil
	}
	defer w.stop()
	var end uint64
	for _, m := range marks {
		end = max(end, m.end)
	}
	if end == 0 { // no call had an event acknowledged
		return nil, nil
	}
	if err := w.waitFor(ctx, end, checkpointWaitLimit); errors.Is(err, errCheckpointUnavailable) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("waiting for a checkpoint covering the phase's events (-checkpoint-poll): %w", err)
	}
	h, uncovered := w.latencies(marks)
	if uncovered > 0 { // waitFor saw end: cannot happen
		return nil, fmt.Errorf("%d calls not covered by a checkpoint of size %d", uncovered, end)
	}
	l := latencyOf(h)
	return &l, nil
}

// checkpointSize reads the size of provlogd's published checkpoint, from
// the first frontend (all frontends of one log publish the same).
func (p *provlogTarget) checkpointSize(ctx context.Context) (uint64, error) {
	resp, err := p.client(0).GetCheckpoint(ctx, &provlogv1.GetCheckpointRequest{})
	switch c := status.Code(err); {
	case c == codes.Unimplemented || c == codes.PermissionDenied || c == codes.Unauthenticated:
		return 0, fmt.Errorf("%w: %w", errCheckpointUnavailable, err)
	case err != nil:
		return 0, fmt.Errorf("GetCheckpoint: %w", err)
	}
	return resp.GetSize(), nil
}

// checkpointSize reads the size of the baseline's published checkpoint.
// The signature is not checked: the baseline signed it in this process.
func (l *tesseraLog) checkpointSize(ctx context.Context) (uint64, error) {
	raw, err := l.readCheckpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the baseline checkpoint: %w", err)
	}
	var cp log.Checkpoint
	if _, err := cp.Unmarshal(raw); err != nil {
		return 0, fmt.Errorf("parsing the baseline checkpoint: %w", err)
	}
	return cp.Size, nil
}
