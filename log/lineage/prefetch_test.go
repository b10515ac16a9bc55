package lineage

import (
	stdcmp "cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/provlog/provlog/log/ledger/awstest"
)

// countingStore counts the reads that reach a Store, each a round trip to
// a MySQL store: Get, Scan (one or more queries), getMany and anyMany
// (one or more queries). It hides a pebble store's view; with loop set it
// serves the batched reads with Get and Scan (a batchReader for any Store,
// for testing prefetch without a database).
type countingStore struct {
	Store
	loop bool

	mu                          sync.Mutex
	gets, scans, manys, probes  int
	getsAt, scansAt, batchesAt  []int // per committed pass
	lastGets, lastScans, lastBs int
}

func (c *countingStore) add(n *int) {
	c.mu.Lock()
	*n++
	c.mu.Unlock()
}

func (c *countingStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	c.add(&c.gets)
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Scan(ctx context.Context, start, end []byte, reverse bool, fn func(key, value []byte) error) error {
	c.add(&c.scans)
	return c.Store.Scan(ctx, start, end, reverse, fn)
}

func (c *countingStore) getMany(ctx context.Context, keys [][]byte, found func(key, value []byte)) error {
	c.add(&c.manys)
	if !c.loop {
		return c.Store.(batchReader).getMany(ctx, keys, found)
	}
	for _, k := range keys {
		v, err := c.Store.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		found(k, v)
	}
	return nil
}

func (c *countingStore) anyMany(ctx context.Context, prefixes [][]byte) ([]bool, error) {
	c.add(&c.probes)
	if !c.loop {
		return c.Store.(batchReader).anyMany(ctx, prefixes)
	}
	out := make([]bool, len(prefixes))
	for i, p := range prefixes {
		err := c.Store.Scan(ctx, p, prefixEnd(p), false, func(_, _ []byte) error {
			out[i] = true
			return ErrStopScan
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Commit records the reads of the pass it ends.
func (c *countingStore) Commit(ctx context.Context, b *Batch) error {
	c.mu.Lock()
	c.getsAt = append(c.getsAt, c.gets-c.lastGets)
	c.scansAt = append(c.scansAt, c.scans-c.lastScans)
	c.batchesAt = append(c.batchesAt, c.manys+c.probes-c.lastBs)
	c.lastGets, c.lastScans, c.lastBs = c.gets, c.scans, c.manys+c.probes
	c.mu.Unlock()
	return c.Store.Commit(ctx, b)
}

// shuffled is the leaves of g [0, n) in another order, each window of 64
// permuted: runs, approvals and inputs come before the starts, subjects
// and producers they name, so gaps open and close (and waiting lists and
// candidates are deleted) all through the log, across passes and bundles.
func shuffled(t *testing.T, g leafGen, n uint64) *memSource {
	t.Helper()
	order := inOrder(n)
	for w := uint64(0); w < n; w += 64 {
		win := order[w:min(n, w+64)]
		slices.SortFunc(win, func(a, b uint64) int { return stdcmp.Compare(mix(a), mix(b)) })
	}
	return sourceOf(t, g, order)
}

func genSource(t *testing.T, g leafGen, n uint64) *memSource {
	t.Helper()
	return sourceOf(t, g, inOrder(n))
}

// inOrder is 0, 1, …, n-1.
func inOrder(n uint64) []uint64 {
	order := make([]uint64, n)
	for i := range order {
		order[i] = uint64(i)
	}
	return order
}

// sourceOf is a log of g's leaves numbered order, in that order.
func sourceOf(t *testing.T, g leafGen, order []uint64) *memSource {
	t.Helper()
	src := &memSource{}
	for _, i := range order {
		l, err := g.leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		src.add(l)
	}
	return src
}

// prefetchLogs are the logs the prefetch tests index: gap-heavy ones and
// the shapes the benchmarks use.
func prefetchLogs(t *testing.T) map[string]Source {
	t.Helper()
	logs := map[string]Source{
		"synth with garbage leaves": synthLog(),
		"synth shuffled":            shuffled(t, synth{tenants: 3, bad: map[uint64]bool{300: true}}, 1200),
		"provbench":                 genSource(t, benchLike{}, 1200),
		"provbench shuffled":        shuffled(t, benchLike{}, 700),
	}
	for name, f := range gapFeeds(t) {
		logs["samples, "+name] = f.source()
	}
	return logs
}

// indexWith indexes src into s in passes of passSize and returns the
// digest and stored pairs.
func indexWith(t *testing.T, s Store, src Source, passSize int) ([32]byte, map[string]string) {
	t.Helper()
	ix, err := Open(t.Context(), s, src, Options{Logger: testLogger, PassSize: passSize})
	if err != nil {
		t.Fatal(err)
	}
	_, d := checkedDigest(t, ix)
	return d, contents(t, s)
}

// TestPrefetchEqualsView indexes gap-heavy logs through prefetch (batched
// reads served by Get and Scan over pebble) and through pebble's view, in
// passes of several sizes: the indexes are the same, pair for pair.
func TestPrefetchEqualsView(t *testing.T) {
	for name, src := range prefetchLogs(t) {
		t.Run(name, func(t *testing.T) {
			want, wantPairs := indexWith(t, openStore(t, t.TempDir()), src, 0)
			for _, passSize := range []int{1, 3, 100, 4096} {
				cs := &countingStore{Store: openStore(t, t.TempDir()), loop: true}
				got, pairs := indexWith(t, cs, src, passSize)
				if got != want {
					t.Errorf("pass size %d: digest %x through prefetch, %x through the view", passSize, got, want)
				}
				if d := cmp.Diff(wantPairs, pairs); d != "" {
					t.Errorf("pass size %d: stored pairs differ (-view +prefetch):\n%.2000s", passSize, d)
				}
				if cs.manys == 0 {
					t.Errorf("pass size %d: nothing prefetched", passSize)
				}
			}
		})
	}
}

// TestMySQLIndexEqualsPebble indexes the same logs into MariaDB and into
// pebble: same digests, same pairs.
func TestMySQLIndexEqualsPebble(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	n := 0
	for name, src := range prefetchLogs(t) {
		t.Run(name, func(t *testing.T) {
			want, wantPairs := indexWith(t, openStore(t, t.TempDir()), src, 0)
			for _, passSize := range []int{3, 4096} {
				n++
				s, err := OpenMySQLStore(t.Context(), dsn, fmt.Sprintf("lineage_eq_%d", n))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				got, pairs := indexWith(t, s, src, passSize)
				if got != want {
					t.Errorf("pass size %d: digest %x on MySQL, %x on pebble", passSize, got, want)
				}
				if d := cmp.Diff(wantPairs, pairs); d != "" {
					t.Errorf("pass size %d: stored pairs differ (-pebble +mysql):\n%.2000s", passSize, d)
				}
			}
		})
	}
}

// TestMySQLPassRoundTrips counts the reads an indexing pass makes of the
// MySQL store: a few per entry bundle (the prefetches), not a few per
// leaf.
func TestMySQLPassRoundTrips(t *testing.T) {
	dsn := awstest.NewDatabase(t)
	for i, tc := range []struct {
		name string
		g    leafGen
	}{{"synth", synth{tenants: 4}}, {"provbench", benchLike{}}} {
		t.Run(tc.name, func(t *testing.T) {
			const size, passSize = 3072, 1024 // 4 bundles a pass
			ms, err := OpenMySQLStore(t.Context(), dsn, fmt.Sprintf("lineage_rt_%d", i))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ms.Close() })
			cs := &countingStore{Store: ms}
			src := genSource(t, tc.g, size)
			src.setSize(0)
			ix, err := Open(t.Context(), cs, src, Options{Logger: testLogger, PassSize: passSize})
			if err != nil {
				t.Fatal(err)
			}
			cs.lastGets, cs.lastScans = cs.gets, cs.scans // Open's own reads
			src.setSize(size)
			if err := ix.CatchUp(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Logf("per pass: gets %v, scans %v, batched reads %v", cs.getsAt, cs.scansAt, cs.batchesAt)
			if len(cs.batchesAt) != size/passSize {
				t.Fatalf("%d passes, want %d", len(cs.batchesAt), size/passSize)
			}
			for p := range cs.batchesAt {
				// Two batched reads a bundle; a few reads the records do
				// not tell (a location's first producer scans its
				// candidates).
				if b, other := cs.batchesAt[p], cs.getsAt[p]+cs.scansAt[p]; b > 2*passSize/256 || other > 8 {
					t.Errorf("pass %d: %d batched reads and %d others for %d leaves, want at most %d and 8", p, b, other, passSize, 2*passSize/256)
				}
			}
		})
	}
}
