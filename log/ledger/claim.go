package ledger

import (
	"context"
	"fmt"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/tessera"
)

// claimer is an indexStore shared by several frontends (the MySQL one). The
// in-memory maps of one Ledger only see its own appends; a claimer's unique
// key on (tenant, event id) makes a second frontend wait for the first
// one's index instead of appending the event again.
//
// Protocol: reserve Claims a key it found nowhere. claimed: append, then
// Settle (success) or Unclaim (failure). claimDone: a duplicate. claimBusy:
// appendRemote polls until the owner settles or unclaims; a claim left by a
// frontend that died is dropped once it is older than claimLease and the
// log, indexed past everything sequenced by then, does not hold the key.
// A frontend stalled for longer than the lease between claiming and
// sequencing could still append a second copy; the index then keeps the
// lower index, as it does for any duplicate leaf.
type claimer interface {
	Claim(ctx context.Context, key string, digest [32]byte) (claimState, record, claimInfo, error)
	ClaimMany(ctx context.Context, keys []string, digests [][32]byte) ([]claimOutcome, error)
	Settle(ctx context.Context, rec record) error
	SettleMany(ctx context.Context, recs []record) error
	Unclaim(ctx context.Context, key string) error
	DropStale(ctx context.Context, key string, c claimInfo) (bool, error)
}

// claimPoll is how often a frontend checks another one's claim.
const claimPoll = 20 * time.Millisecond

// claimJob is a key reserved locally (p) that claimAll claims in a shared
// store.
type claimJob struct {
	key string
	sh  *shard
	p   *pending
	// Out: found (a duplicate; p released), remote (another frontend's
	// claim; appendRemote releases p), or err (p released).
	found  *record
	remote bool
	err    error
}

// claimAll claims every job's key in a shared store, in one round trip.
// Without a claimer it does nothing: the keys are then the caller's.
func (l *Ledger) claimAll(ctx context.Context, jobs []*claimJob) {
	c, ok := l.store.(claimer)
	if !ok || len(jobs) == 0 {
		return
	}
	keys := make([]string, len(jobs))
	digests := make([][32]byte, len(jobs))
	for i, j := range jobs {
		keys[i], digests[i] = j.key, j.p.digest
	}
	out, err := c.ClaimMany(ctx, keys, digests)
	for i, j := range jobs {
		switch {
		case err != nil:
			j.err = err
			l.release(j.sh, j.key, j.p, record{}, err)
		case out[i].state == claimDone:
			r := out[i].rec
			j.found = &r
			l.release(j.sh, j.key, j.p, r, nil)
		case out[i].state == claimBusy:
			j.remote = true
		default:
			j.p.claimed = true
		}
	}
}

// appendRemote waits for another frontend's append of key, or takes it
// over when that one gave up or died. It releases p, the local reservation
// of key, with the outcome.
func (l *Ledger) appendRemote(ctx context.Context, ev *pb.ProvenanceEvent, key string, sh *shard, p *pending, leaf []byte, hash [32]byte) Result {
	c := l.store.(claimer)
	t := time.NewTicker(claimPoll)
	defer t.Stop()
	fail := func(err error) Result {
		l.release(sh, key, p, record{}, err)
		return Result{Err: err}
	}
	for {
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("waiting for another frontend's append of the same event id: %w", ctx.Err()))
		case <-l.closed:
			return fail(ErrClosed)
		case <-t.C:
		}
		st, r, info, err := c.Claim(ctx, key, p.digest)
		switch {
		case err != nil:
			return fail(err)
		case st == claimDone:
			l.release(sh, key, p, r, nil)
			return l.duplicateResult(ev, r, p.digest)
		case st == claimed:
			p.claimed = true
			idx, err := l.add(ctx, tessera.NewEntry(leaf))()
			if err != nil {
				return fail(mapTesseraErr(err))
			}
			rec := record{Key: key, Index: idx.Index, LeafHash: hash, Digest: p.digest}
			l.release(sh, key, p, rec, nil)
			return Result{Index: idx.Index, LeafHash: hash, Leaf: leaf}
		case info.stale:
			if err := l.dropIfStale(ctx, c, key, info); err != nil {
				return fail(err)
			}
		}
	}
}

// dropIfStale drops a claim older than the lease once the index has
// recorded every entry sequenced so far: had the claim's owner sequenced
// the event, the follower would have settled the key by then.
func (l *Ledger) dropIfStale(ctx context.Context, c claimer, key string, info claimInfo) error {
	next, err := l.reader.NextIndex(ctx)
	if err != nil {
		return fmt.Errorf("%w: reading next index: %w", ErrUnavailable, err)
	}
	t := time.NewTicker(claimPoll * 5)
	defer t.Stop()
	for {
		wm, err := l.store.Watermark()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if wm >= next {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the index to pass a stale claim: %w", ctx.Err())
		case <-t.C:
		}
	}
	// Still unsettled (DropStale checks idx IS NULL): the owner never
	// sequenced it.
	dropped, err := c.DropStale(ctx, key, info)
	if dropped {
		l.log.Warn("dropped a stale idempotency claim of a frontend that stopped", "owner", info.owner, "age", info.age)
	}
	return err
}
