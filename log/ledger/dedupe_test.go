package ledger

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

func TestAppendIdempotent(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	a, b := testEvent("acme", "ev-a"), testEvent("acme", "ev-b")

	first := appendAll(t, l, a, b)
	if first[0].Index != 0 || first[1].Index != 1 || first[0].Duplicate || first[1].Duplicate {
		t.Fatalf("first append: %+v", first)
	}
	if first[0].Leaf == nil || first[0].LeafHash != event.LeafHash(first[0].Leaf) {
		t.Errorf("new result must carry its leaf and its hash: %+v", first[0])
	}

	again := appendAll(t, l, testEvent("acme", "ev-a"))[0]
	want := Result{Index: 0, LeafHash: first[0].LeafHash, Duplicate: true}
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("same event again (-want +got):\n%s", diff)
	}

	// The same event id in another tenant is another event.
	other := appendAll(t, l, testEvent("other", "ev-a"))[0]
	if other.Duplicate || other.Index != 2 {
		t.Errorf("same id, other tenant: %+v, want a new entry at 2", other)
	}

	res := l.Append(t.Context(), subsOf(variant(testEvent("acme", "ev-b"))))[0]
	var ce *ConflictError
	if !errors.As(res.Err, &ce) {
		t.Fatalf("different body: %+v, want a ConflictError", res)
	}
	if diff := cmp.Diff(&ConflictError{Tenant: "acme", EventID: "ev-b", Index: 1}, ce); diff != "" {
		t.Errorf("conflict (-want +got):\n%s", diff)
	}
	// A different submitter does not make a different event.
	res = l.Append(t.Context(), []Submission{{Event: testEvent("acme", "ev-b"), Submitter: "someone-else"}})[0]
	if res.Err != nil || !res.Duplicate || res.Index != 1 {
		t.Errorf("same event, other submitter: %+v, want duplicate of 1", res)
	}
	if got := integratedSize(t, l); got != 3 {
		t.Errorf("integrated size = %d, want 3", got)
	}

	// Once the follower has recorded them, the answers come from the store.
	if err := l.follow(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := recentLen(l); n != 0 {
		t.Errorf("%d records still in memory after a follow pass", n)
	}
	again = appendAll(t, l, testEvent("acme", "ev-a"))[0]
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("same event again, from the store (-want +got):\n%s", diff)
	}
	res = l.Append(t.Context(), subsOf(variant(testEvent("acme", "ev-a"))))[0]
	if !errors.As(res.Err, &ce) || ce.Index != 0 {
		t.Errorf("different body, from the store: %+v, want a ConflictError at 0", res)
	}
	if got := integratedSize(t, l); got != 3 {
		t.Errorf("integrated size = %d, want 3", got)
	}
}

func recentLen(l *Ledger) int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].recent) + len(l.shards[i].inflight)
		l.shards[i].mu.Unlock()
	}
	l.leafMu.Lock()
	n += len(l.recentLeaf)
	l.leafMu.Unlock()
	return n
}

func TestAppendBatchDuplicatesWithinRequest(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	res := l.Append(t.Context(), subsOf(
		testEvent("acme", "a"),
		testEvent("acme", "b"),
		testEvent("acme", "a"),
		variant(testEvent("acme", "a")),
		testEvent("acme", "b"),
		testEvent("acme", "c"),
	))
	type got struct {
		Index     uint64
		Duplicate bool
		Conflict  uint64 // ConflictError.Index + 1, 0 when none
	}
	var gots []got
	for i, r := range res {
		g := got{Index: r.Index, Duplicate: r.Duplicate}
		var ce *ConflictError
		switch {
		case errors.As(r.Err, &ce):
			g.Conflict = ce.Index + 1
		case r.Err != nil:
			t.Fatalf("result %d: %v", i, r.Err)
		}
		gots = append(gots, g)
	}
	want := []got{
		{Index: 0},
		{Index: 1},
		{Index: 0, Duplicate: true},
		{Conflict: 0 + 1},
		{Index: 1, Duplicate: true},
		{Index: 2},
	}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("batch results (-want +got):\n%s", diff)
	}
	if res[2].LeafHash != res[0].LeafHash {
		t.Errorf("duplicate within the batch has leaf hash %x, want %x", res[2].LeafHash, res[0].LeafHash)
	}
	if n := integratedSize(t, l); n != 3 {
		t.Errorf("integrated size = %d, want 3", n)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	closeLedger(t, l)
	for i, r := range l.Append(t.Context(), subsOf(testEvent("acme", "x"), testEvent("acme", "y"))) {
		if !errors.Is(r.Err, ErrClosed) {
			t.Errorf("result %d after Close: %+v, want ErrClosed", i, r)
		}
	}
}

// TestReserveRelease drives the in-memory reservation directly.
func TestReserveRelease(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	sh := &l.shards[0]
	const key = "acme\x00ev"
	d1, d2 := [32]byte{1}, [32]byte{2}

	found, p, wait, err := l.reserve(sh, key, d1)
	if err != nil || found != nil || wait != nil || p == nil {
		t.Fatalf("first reserve = %v, %v, %v, %v; want a reservation", found, p, wait, err)
	}
	found, p2, wait, err := l.reserve(sh, key, d2)
	if err != nil || found != nil || p2 != nil || wait != p {
		t.Fatalf("second reserve = %v, %v, %v, %v; want to wait for the first", found, p2, wait, err)
	}

	// A failed append frees the key for a retry and tells the waiter why.
	boom := errors.New("boom")
	l.release(sh, key, p, record{}, boom)
	select {
	case <-wait.done:
	default:
		t.Fatal("waiter not released")
	}
	if !errors.Is(wait.err, boom) {
		t.Errorf("waiter err = %v, want %v", wait.err, boom)
	}
	found, p3, wait, err := l.reserve(sh, key, d1)
	if err != nil || found != nil || wait != nil || p3 == nil {
		t.Fatalf("reserve after a failed append = %v, %v, %v, %v; want a new reservation", found, p3, wait, err)
	}

	// A successful append is found by the next reservation, before the
	// follower has recorded it.
	rec := record{Key: key, Index: 7, LeafHash: [32]byte{7}, Digest: d1}
	l.release(sh, key, p3, rec, nil)
	if p3.rec != rec || p3.err != nil {
		t.Errorf("pending after release = %+v, %v", p3.rec, p3.err)
	}
	found, p4, wait, err := l.reserve(sh, key, d2)
	if err != nil || p4 != nil || wait != nil || found == nil || *found != rec {
		t.Fatalf("reserve after a successful append = %v, %v, %v, %v; want %+v", found, p4, wait, err, rec)
	}
	if idx, err := l.IndexOfLeaf(rec.LeafHash); err != nil || idx != 7 {
		t.Errorf("IndexOfLeaf of a released leaf = %d, %v; want 7", idx, err)
	}
	// Eviction below the watermark forgets it (the store has it by then).
	l.evict(8)
	if n := recentLen(l); n != 0 {
		t.Errorf("%d records left after evict(8)", n)
	}
}

// TestConcurrentSameEvent: many goroutines append the same event; exactly
// one leaf results and everyone gets its index.
func TestConcurrentSameEvent(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	appendAll(t, l, testEvent("acme", "before"))
	const n = 50
	res := make([]Result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			res[i] = l.Append(t.Context(), subsOf(testEvent("acme", "same")))[0]
		})
	}
	close(start)
	wg.Wait()
	news := 0
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("goroutine %d: %v", i, r.Err)
		}
		if r.Index != 1 || r.LeafHash != res[0].LeafHash {
			t.Errorf("goroutine %d got index %d hash %x, want 1 %x", i, r.Index, r.LeafHash, res[0].LeafHash)
		}
		if !r.Duplicate {
			news++
		}
	}
	if news != 1 {
		t.Errorf("%d goroutines appended a new entry, want exactly 1", news)
	}
	if got := integratedSize(t, l); got != 2 {
		t.Errorf("integrated size = %d, want 2", got)
	}
}

// TestConcurrentMixed races many batches over overlapping keys, some with
// a conflicting body, while the follower evicts as fast as it can. Every
// key must end up in the log once, and every answer must agree with it.
func TestConcurrentMixed(t *testing.T) {
	l := openLedger(t, t.TempDir(), func(c *Config) { c.FollowInterval = time.Millisecond })
	const (
		keys       = 40
		goroutines = 12
		batch      = 7
	)
	type answer struct {
		key      int
		conflict bool // the variant body was sent
		res      Result
	}
	answers := make([][]answer, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			order := rng.Perm(keys)
			for len(order) > 0 {
				k := min(batch, len(order))
				var evs []*pb.ProvenanceEvent
				var as []answer
				for _, key := range order[:k] {
					ev := testEvent("acme", fmt.Sprintf("k-%02d", key))
					// Goroutine 0 and 1 send the other body for keys
					// divisible by 5; either body may win.
					v := g < 2 && key%5 == 0
					if v {
						ev = variant(ev)
					}
					evs = append(evs, ev)
					as = append(as, answer{key: key, conflict: v})
				}
				order = order[k:]
				for i, r := range l.Append(t.Context(), subsOf(evs...)) {
					as[i].res = r
				}
				answers[g] = append(answers[g], as...)
			}
		})
	}
	wg.Wait()

	// Who won each key: the one non-duplicate success.
	type winner struct {
		index   uint64
		variant bool
	}
	won := map[int]winner{}
	for _, as := range answers {
		for _, a := range as {
			if a.res.Err == nil && !a.res.Duplicate {
				if w, ok := won[a.key]; ok {
					t.Fatalf("key %d appended twice: at %d and %d", a.key, w.index, a.res.Index)
				}
				won[a.key] = winner{a.res.Index, a.conflict}
			}
		}
	}
	if len(won) != keys {
		t.Fatalf("%d keys appended, want %d", len(won), keys)
	}
	for g, as := range answers {
		for _, a := range as {
			w := won[a.key]
			var ce *ConflictError
			switch {
			case a.conflict == w.variant:
				if a.res.Err != nil || a.res.Index != w.index {
					t.Errorf("goroutine %d key %d: %+v, want index %d", g, a.key, a.res, w.index)
				}
			case errors.As(a.res.Err, &ce):
				if ce.Index != w.index {
					t.Errorf("goroutine %d key %d: conflict names index %d, want %d", g, a.key, ce.Index, w.index)
				}
			default:
				t.Errorf("goroutine %d key %d (other body): %+v, want a ConflictError", g, a.key, a.res)
			}
		}
	}
	if got := integratedSize(t, l); got != keys {
		t.Errorf("integrated size = %d, want %d", got, keys)
	}
	// And the store, once caught up, says the same.
	if err := l.follow(t.Context()); err != nil {
		t.Fatal(err)
	}
	for key, w := range won {
		r, ok, err := l.store.Lookup(dedupeKey("acme", fmt.Sprintf("k-%02d", key)))
		if err != nil || !ok || r.Index != w.index {
			t.Errorf("store record for key %d = %+v, %v, %v; want index %d", key, r, ok, err, w.index)
		}
	}
}

func TestIndexStore(t *testing.T) {
	path := indexPath(t.TempDir())
	indexStoreConformance(t, func() indexStore { return openIndexStore(t, path) })
}

// indexStoreConformance checks an indexStore implementation; open opens
// the same store each time it is called.
func indexStoreConformance(t *testing.T, open func() indexStore) {
	s := open()
	defer func() { s.Close() }()
	if wm, err := s.Watermark(); err != nil || wm != 0 {
		t.Errorf("new store Watermark = %d, %v; want 0", wm, err)
	}
	a5 := record{Key: dedupeKey("acme", "a"), Index: 5, LeafHash: [32]byte{5}, Digest: [32]byte{0xa}}
	b6 := record{Key: dedupeKey("acme", "b"), Index: 6, LeafHash: [32]byte{6}, Digest: [32]byte{0xb}}
	if err := s.Commit([]record{a5, b6}, 7); err != nil {
		t.Fatal(err)
	}
	// A later index for a key already recorded does not replace it; an
	// earlier one does: the first index is the one that counts.
	a9 := record{Key: a5.Key, Index: 9, LeafHash: [32]byte{9}, Digest: [32]byte{0xc}}
	b3 := record{Key: b6.Key, Index: 3, LeafHash: [32]byte{3}, Digest: [32]byte{0xb}}
	if err := s.Commit([]record{a9, b3}, 10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []record{a5, b3} {
		got, ok, err := s.Lookup(want.Key)
		if err != nil || !ok {
			t.Fatalf("Lookup(%q) = %v, %v", want.Key, ok, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", want.Key, diff)
		}
	}
	// Within one commit too, in either order, and whether or not the
	// record says it is new.
	c8 := record{Key: dedupeKey("acme", "c"), Index: 18, LeafHash: [32]byte{18}, Digest: [32]byte{0xc}}
	c4 := record{Key: c8.Key, Index: 14, LeafHash: [32]byte{14}, Digest: [32]byte{0xc}}
	d2 := record{Key: dedupeKey("acme", "d"), Index: 12, LeafHash: [32]byte{12}, Digest: [32]byte{0xd}, New: true}
	d7 := record{Key: d2.Key, Index: 17, LeafHash: [32]byte{17}, Digest: [32]byte{0xd}, New: true}
	if err := s.Commit([]record{c8, d2, c4, d7}, 10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []record{c4, d2} {
		got, ok, err := s.Lookup(want.Key)
		want.New = false
		if err != nil || !ok || got != want {
			t.Errorf("Lookup(%q) after one commit of both = %+v, %v, %v; want %+v", want.Key, got, ok, err, want)
		}
		if idx, ok, err := s.LookupLeaf(want.LeafHash); err != nil || !ok || idx != want.Index {
			t.Errorf("LookupLeaf of index %d = %d, %v, %v", want.Index, idx, ok, err)
		}
	}
	if _, ok, err := s.Lookup(dedupeKey("other", "a")); ok || err != nil {
		t.Errorf("Lookup of an unknown key = %v, %v", ok, err)
	}
	// LookupMany answers as Lookup does, in the order asked, for keys out
	// of order, absent, repeated, and prefixes or extensions of stored ones.
	many := []string{b6.Key, dedupeKey("acme", ""), dedupeKey("acme", "bb"), a5.Key, dedupeKey("zz", "a"), b6.Key}
	wantMany := []*record{&b3, nil, nil, &a5, nil, &b3}
	if got, err := s.LookupMany(many); err != nil {
		t.Errorf("LookupMany: %v", err)
	} else if diff := cmp.Diff(wantMany, got); diff != "" {
		t.Errorf("LookupMany (-want +got):\n%s", diff)
	}
	if got, err := s.LookupMany(nil); err != nil || len(got) != 0 {
		t.Errorf("LookupMany(nil) = %v, %v", got, err)
	}
	// The tenant/id separator keeps ("ab","c") and ("a","bc") apart.
	if dedupeKey("ab", "c") == dedupeKey("a", "bc") {
		t.Error("dedupe keys collide across the tenant/id boundary")
	}
	for h, want := range map[[32]byte]uint64{{5}: 5, {3}: 3} {
		if got, ok, err := s.LookupLeaf(h); err != nil || !ok || got != want {
			t.Errorf("LookupLeaf(%x) = %d, %v, %v; want %d", h[:1], got, ok, err, want)
		}
	}
	if _, ok, err := s.LookupLeaf([32]byte{0xee}); ok || err != nil {
		t.Errorf("LookupLeaf of an unknown hash = %v, %v", ok, err)
	}
	if wm, err := s.Watermark(); err != nil || wm != 10 {
		t.Errorf("Watermark = %d, %v; want 10", wm, err)
	}
	// Survives a reopen.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	if got, ok, err := s.Lookup(a5.Key); err != nil || !ok || got != a5 {
		t.Errorf("Lookup after reopen = %+v, %v, %v", got, ok, err)
	}
	if wm, err := s.Watermark(); err != nil || wm != 10 {
		t.Errorf("Watermark after reopen = %d, %v; want 10", wm, err)
	}
}
