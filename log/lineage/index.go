package lineage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
)

// Source is where the index reads the log from; tessera.LogReader
// satisfies it. IntegratedSize bounds what the index reads; a Source that
// reports the size of the latest published checkpoint instead keeps the
// index to leaves that can already be proven.
type Source interface {
	IntegratedSize(ctx context.Context) (uint64, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// Options configures an Index. The zero value is usable.
type Options struct {
	// PollInterval is how often Run looks for new leaves; 500ms when zero.
	PollInterval time.Duration
	// PassSize is the most leaves indexed per Store batch; 4096 when zero.
	PassSize int
	// MaxBusy, in (0, 1], caps the share of wall time Run spends indexing
	// while it is behind the log: after a pass that took d, Run pauses
	// d*(1-MaxBusy)/MaxBusy, or less if appends stop meanwhile
	// (Contended), and not at all when it is more than MaxLag behind. It
	// keeps indexing from starving appends on a small machine, at the
	// price of lag under sustained load; the index catches up when appends
	// slow down. 0 or 1 means no cap. CatchUp and Rebuild are never paced.
	MaxBusy float64
	// MaxLag bounds how far behind the log pacing may leave the index: a
	// pass that ends more than MaxLag leaves behind the log's size is not
	// followed by a pause, whatever MaxBusy says, and a pause ends when
	// the log runs that far ahead. Under a load that never stops the index
	// then stays about MaxLag behind, as long as indexing at full speed
	// keeps up with the appends. 0 means no bound.
	MaxLag uint64
	// Contended, when set, reports whether appends are competing with the
	// indexer for the machine: Run then paces itself (MaxBusy) only while
	// it returns true, and catches up at full speed once appends stop.
	Contended func() bool
	// Logger receives operational messages, never event contents beyond
	// tenant and run ids; slog.Default() when nil.
	Logger *slog.Logger
	// Mask, when set, is applied to every node a query returns, after the
	// answer is built and before it leaves the package: the redaction hook.
	// It may blank fields; it must not change Node.ID, Kind or Leaf.
	Mask func(*Node)
	// OnGap, when set, is called once for every gap that an indexing pass
	// opened, after the pass is committed: a counter of gaps opened. Gaps
	// that later close were reported too, and a Rebuild reports the gaps
	// of the whole log again; GapCounts is the gauge of those open. It runs
	// on the indexing goroutine: keep it quick.
	OnGap func(Gap)
}

// Errors.
var (
	// ErrIndexAhead means the index holds more leaves than the log it is
	// given: it was built from another log, or the log lost entries.
	ErrIndexAhead = errors.New("lineage index is ahead of the log")
	// ErrDigestMismatch means the stored index does not match its running
	// digest (VerifyDigest).
	ErrDigestMismatch = errors.New("lineage index does not match its digest")
	// ErrQueryNotFound means the start of a query (an event id, a run, an
	// asset) is not in the tenant's index.
	ErrQueryNotFound = errors.New("not found in the lineage index")
	// ErrInvalidQuery is wrapped by every *QueryError.
	ErrInvalidQuery = errors.New("invalid lineage query")
)

// QueryError is a query the index refuses; Field names the offending field.
type QueryError struct {
	Field  string
	Reason string
}

func (e *QueryError) Error() string { return "invalid lineage query: " + e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidQuery) hold.
func (e *QueryError) Unwrap() error { return ErrInvalidQuery }

// Index is the lineage index over one log. It is safe for concurrent use:
// queries run alongside indexing; indexing passes (CatchUp, Run, Rebuild)
// are serialised. The caller owns the Store and closes it after the last
// call returns.
type Index struct {
	store Store
	src   Source
	opts  Options
	log   *slog.Logger

	passMu sync.Mutex  // serialises indexing passes
	locs   *boundedSet // committed location keys (under passMu)
	// passBytes ends a pass early when its writes reach it.
	passBytes int
	// keysPerLeaf is how many keys a leaf touched in the last pass.
	keysPerLeaf int

	mu     sync.RWMutex
	wm     uint64
	sum    sum
	counts [len(gapCodes)]int64

	// beforeCommit, when set (tests), runs before each pass commits; an
	// error abandons the pass as a crash would.
	beforeCommit func(end uint64) error
}

// Open opens the index kept in store over the log read from src, and
// catches it up with the log's integrated size before returning. An index
// written in another format is rebuilt.
func Open(ctx context.Context, store Store, src Source, opts Options) (*Index, error) {
	ix := newIndex(store, src, opts)
	format, ok, err := ix.metaU64(ctx, metaFormat)
	if err != nil {
		return nil, err
	}
	if ok && format != formatVersion {
		ix.log.Warn("lineage index has another format; rebuilding it from the log", "format", format, "want", formatVersion)
		if err := ix.Rebuild(ctx); err != nil {
			return nil, err
		}
		return ix, nil
	}
	if err := ix.load(ctx); err != nil {
		return nil, err
	}
	if err := ix.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("couldn't catch the lineage index up with the log: %w", err)
	}
	return ix, nil
}

// newIndex applies the defaults of opts; the index starts empty.
func newIndex(store Store, src Source, opts Options) *Index {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.PassSize <= 0 {
		opts.PassSize = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Index{store: store, src: src, opts: opts, log: opts.Logger, locs: newBoundedSet(1 << 16), passBytes: maxPassBytes}
}

func (ix *Index) metaU64(ctx context.Context, c byte) (uint64, bool, error) {
	v, err := ix.store.Get(ctx, metaKey(c))
	if errors.Is(err, ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading lineage index metadata: %w", err)
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("lineage index metadata %q: %w", c, errBadValue)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// load reads the watermark, the running digest and the gap counters.
func (ix *Index) load(ctx context.Context) error {
	wm, s, counts, err := ix.readMeta(ctx)
	if err != nil {
		return err
	}
	ix.mu.Lock()
	ix.wm, ix.sum, ix.counts = wm, s, counts
	ix.mu.Unlock()
	return nil
}

// readMeta reads the stored watermark, running digest and gap counters.
func (ix *Index) readMeta(ctx context.Context) (wm uint64, s sum, counts [len(gapCodes)]int64, err error) {
	if wm, _, err = ix.metaU64(ctx, metaWatermark); err != nil {
		return 0, s, counts, err
	}
	v, err := ix.store.Get(ctx, metaKey(metaSum))
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return 0, s, counts, fmt.Errorf("reading lineage index digest: %w", err)
	default:
		var ok bool
		if s, ok = sumFromBytes(v); !ok {
			return 0, s, counts, fmt.Errorf("lineage index digest: %w", errBadValue)
		}
	}
	for i, code := range gapCodes {
		v, err := ix.store.Get(ctx, newKey(keyGapCount).b(code))
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return 0, s, counts, fmt.Errorf("reading gap counters: %w", err)
		case len(v) != 8:
			return 0, s, counts, fmt.Errorf("gap counter %d: %w", code, errBadValue)
		default:
			counts[i] = int64(binary.BigEndian.Uint64(v))
		}
	}
	return wm, s, counts, nil
}

// Watermark is the tree size indexed: every leaf below it is in the index.
func (ix *Index) Watermark() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.wm
}

// Digest returns the index digest at the watermark (doc.go, "Digest").
func (ix *Index) Digest(ctx context.Context) (size uint64, digest [32]byte, err error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.wm, finalDigest(ix.wm, ix.sum), nil
}

// DigestAt returns the index digest recorded at tree size size: every
// multiple of 256 up to the watermark, and every size a pass ended at.
// Other sizes give ErrQueryNotFound.
func (ix *Index) DigestAt(ctx context.Context, size uint64) ([32]byte, error) {
	if size == 0 {
		return finalDigest(0, sum{}), nil
	}
	v, err := ix.store.Get(ctx, newKey(keyMeta).b(metaDigestAt).u64(size))
	if errors.Is(err, ErrNotFound) {
		return [32]byte{}, fmt.Errorf("no index digest recorded at size %d: %w", size, ErrQueryNotFound)
	}
	if err != nil {
		return [32]byte{}, fmt.Errorf("reading index digest at size %d: %w", size, err)
	}
	s, ok := sumFromBytes(v)
	if !ok {
		return [32]byte{}, fmt.Errorf("index digest at size %d: %w", size, errBadValue)
	}
	return finalDigest(size, s), nil
}

// VerifyDigest recomputes the digest from every stored pair, compares it
// with the running one, and returns it. It reads the whole index: an
// operator's check and a test's, not a request path. A difference is
// ErrDigestMismatch.
func (ix *Index) VerifyDigest(ctx context.Context) (size uint64, digest [32]byte, err error) {
	ix.passMu.Lock()
	defer ix.passMu.Unlock()
	var s sum
	err = ix.store.Scan(ctx, []byte{0}, nil, false, func(k, v []byte) error {
		if k[0] != keyMeta {
			s.add(elementHash(k, v))
		}
		return nil
	})
	if err != nil {
		return 0, [32]byte{}, fmt.Errorf("scanning the lineage index: %w", err)
	}
	ix.mu.RLock()
	wm, running := ix.wm, ix.sum
	ix.mu.RUnlock()
	if s != running {
		return wm, finalDigest(wm, s), fmt.Errorf("%w at size %d: stored pairs give %x, running digest is %x", ErrDigestMismatch, wm, finalDigest(wm, s), finalDigest(wm, running))
	}
	return wm, finalDigest(wm, s), nil
}

// Run follows the log until ctx ends, indexing new leaves every
// PollInterval. A failing pass is logged and retried. It returns nil when
// ctx ends.
func (ix *Index) Run(ctx context.Context) error {
	t := time.NewTicker(ix.opts.PollInterval)
	defer t.Stop()
	for {
		if err := ix.catchUp(ctx, true); err != nil && ctx.Err() == nil {
			ix.log.Error("lineage: indexing the log failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CatchUp indexes every leaf from the watermark to the log's current
// integrated size, in passes of at most PassSize leaves, each committed with
// its watermark in one Store batch.
func (ix *Index) CatchUp(ctx context.Context) error { return ix.catchUp(ctx, false) }

func (ix *Index) catchUp(ctx context.Context, paced bool) error {
	size, err := ix.src.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("reading the log's size: %w", err)
	}
	for {
		took, done, err := ix.onePass(ctx, size)
		if err != nil || done {
			return err
		}
		if !paced {
			continue
		}
		// The log has grown during the pass: how far behind it the index
		// is now decides whether it may rest (MaxLag).
		behind, err := ix.lag(ctx)
		if err != nil {
			return err
		}
		// Pause outside passMu, so CatchUp and Rebuild never wait on it.
		if d := ix.pause(took, behind); d > 0 {
			if err := ix.rest(ctx, d); err != nil {
				return err
			}
		}
	}
}

// restCheck is how often a pause looks again at whether appends still
// compete (Options.Contended) and how far behind the log the index is
// (Options.MaxLag).
const restCheck = 100 * time.Millisecond

// rest waits out a pause of d, or less: it ends once nothing competes any
// more, or once the log has run more than MaxLag ahead, so that a long
// pause decided under load (at a small MaxBusy, 99 times the pass) neither
// outlasts the load, leaving the index idle behind an idle log, nor lets
// a load that goes on leave the index further behind than MaxLag.
func (ix *Index) rest(ctx context.Context, d time.Duration) error {
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, restCheck)):
		}
		behind, err := ix.lag(ctx)
		if err != nil {
			return err
		}
		if !ix.mayRest(behind) {
			return nil
		}
	}
}

// lag is how many leaves the log is ahead of the index; only MaxLag needs
// it, so without one it is 0 and costs no read.
func (ix *Index) lag(ctx context.Context) (uint64, error) {
	if ix.opts.MaxLag == 0 {
		return 0, nil
	}
	size, err := ix.src.IntegratedSize(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading the log's size: %w", err)
	}
	return size - min(size, ix.Watermark()), nil
}

// mayRest reports whether the index, behind leaves behind the log, may
// rest at all: only while appends compete (Contended) and within MaxLag.
func (ix *Index) mayRest(behind uint64) bool {
	return (ix.opts.MaxLag == 0 || behind <= ix.opts.MaxLag) && (ix.opts.Contended == nil || ix.opts.Contended())
}

// pause is how long Run rests after a pass that took took and left the
// index behind leaves behind the log: enough to hold it to MaxBusy of the
// wall time, unless nothing competes (Contended) or it is more than MaxLag
// behind.
func (ix *Index) pause(took time.Duration, behind uint64) time.Duration {
	f := ix.opts.MaxBusy
	if f <= 0 || f >= 1 || !ix.mayRest(behind) {
		return 0
	}
	return time.Duration(float64(took) * (1 - f) / f)
}

// onePass indexes at most PassSize leaves towards size; done says the
// watermark has reached size.
func (ix *Index) onePass(ctx context.Context, size uint64) (took time.Duration, done bool, err error) {
	ix.passMu.Lock()
	defer ix.passMu.Unlock()
	ix.mu.RLock()
	wm, s, counts := ix.wm, ix.sum, ix.counts
	ix.mu.RUnlock()
	if wm > size {
		return 0, false, fmt.Errorf("%w: index at %d, log at %d", ErrIndexAhead, wm, size)
	}
	if wm == size {
		return 0, true, nil
	}
	end := min(size, wm+uint64(ix.opts.PassSize))
	start := time.Now()
	if err := ix.pass(ctx, wm, end, size, s, counts); err != nil {
		return 0, false, err
	}
	// A pass may stop short of end (maxPassBytes): done is what it reached.
	ix.mu.RLock()
	reached := ix.wm
	ix.mu.RUnlock()
	return time.Since(start), reached >= size, nil
}

// maxPassBytes bounds the writes a pass keeps in memory: a pass of large
// events ends early, whatever PassSize says.
const maxPassBytes = 64 << 20

// pass indexes leaves [from, end) of a log of size size and commits them;
// it may end the pass earlier (maxPassBytes).
func (ix *Index) pass(ctx context.Context, from, end, size uint64, s sum, counts [len(gapCodes)]int64) error {
	t := newTxn(ctx, ix.store, ix.log, s, counts, min(int(end-from)*ix.keysPerLeaf, 1<<20))
	t.knownLocs = ix.locs
	if vs, ok := ix.store.(viewer); ok {
		v, err := vs.view()
		if err != nil {
			return err
		}
		defer v.close()
		t.view = v
	} else if br, ok := ix.store.(batchReader); ok {
		t.br = br
	}
	// Bundles are read and their leaves decoded a few bundles ahead, on
	// another goroutine: on a machine with a core to spare (catching up
	// after a burst of appends) that takes decoding off the indexing path.
	dctx, stop := context.WithCancel(ctx)
	bundles := decodeBundles(dctx, ix.src, from, end, size)
	defer func() {
		stop()
		for range bundles { // let the decoder end before the pass does
		}
	}()
	next := from // the first leaf not yet indexed
	for db := range bundles {
		if db.err != nil {
			return db.err
		}
		if err := t.prefetch(db.leaves[:min(uint64(len(db.leaves)), end-db.first)]); err != nil {
			return fmt.Errorf("prefetching for leaves from %d: %w", db.first, err)
		}
		for i, d := range db.leaves {
			idx := db.first + uint64(i)
			if idx >= end {
				break
			}
			if idx != next {
				return fmt.Errorf("lineage: decoded leaf %d, expected %d", idx, next)
			}
			if err := t.applyDecoded(idx, d); err != nil {
				return fmt.Errorf("indexing leaf %d: %w", idx, err)
			}
			next = idx + 1
			if (idx+1)%layout.EntryBundleWidth == 0 {
				t.at = append(t.at, sizedSum{idx + 1, t.sum})
			}
			if t.bytes >= ix.passBytes && idx+1 < end {
				end = idx + 1 // the pass is big enough: commit it here
			}
		}
		if db.first+uint64(len(db.leaves)) >= end {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if next != end {
		return fmt.Errorf("lineage: pass [%d, %d) stopped at leaf %d", from, end, next)
	}
	if end%layout.EntryBundleWidth != 0 {
		t.at = append(t.at, sizedSum{end, t.sum})
	}
	b := t.batch(end)
	if ix.beforeCommit != nil {
		if err := ix.beforeCommit(end); err != nil {
			return err
		}
	}
	if err := ix.store.Commit(ctx, b); err != nil {
		return fmt.Errorf("committing lineage index pass [%d, %d): %w", from, end, err)
	}
	ix.mu.Lock()
	ix.wm, ix.sum, ix.counts = end, t.sum, t.counts
	ix.mu.Unlock()
	ix.keysPerLeaf = len(t.over)/int(end-from) + 1
	for _, l := range t.newLocs {
		ix.locs.add(l)
	}
	ix.report(t)
	return nil
}

// report logs the gaps a committed pass opened and hands them to OnGap.
func (ix *Index) report(t *txn) {
	const maxLogged = 20
	for i, g := range t.opened {
		if i == maxLogged {
			ix.log.Warn("lineage: more gaps opened in this pass", "more", len(t.opened)-maxLogged)
			break
		}
		ix.log.Warn("lineage: completeness gap", "kind", g.Kind, "tenant", g.Tenant, "run", g.RunID, "leaves", g.Leaves)
	}
	if ix.opts.OnGap != nil {
		for _, g := range t.opened {
			ix.opts.OnGap(g)
		}
	}
}

// Rebuild wipes the index and indexes the log again from leaf 0, from the
// log alone. Queries running meanwhile see a partial index.
func (ix *Index) Rebuild(ctx context.Context) error {
	if err := ix.wipe(ctx); err != nil {
		return err
	}
	if err := ix.CatchUp(ctx); err != nil {
		return fmt.Errorf("rebuilding the lineage index: %w", err)
	}
	return nil
}

func (ix *Index) wipe(ctx context.Context) error {
	ix.passMu.Lock()
	defer ix.passMu.Unlock()
	b := &Batch{}
	b.DeleteRange([]byte{0}, nil)
	b.Set(metaKey(metaFormat), binary.BigEndian.AppendUint64(nil, formatVersion))
	if err := ix.store.Commit(ctx, b); err != nil {
		return fmt.Errorf("wiping the lineage index: %w", err)
	}
	ix.mu.Lock()
	ix.wm, ix.sum, ix.counts = 0, sum{}, [len(gapCodes)]int64{}
	ix.mu.Unlock()
	ix.locs.clear()
	return nil
}

// boundedSet is a set of at most max strings: a cache that forgets
// everything when it fills up, so its memory never grows with the log.
type boundedSet struct {
	m   map[string]struct{}
	max int
}

func newBoundedSet(max int) *boundedSet { return &boundedSet{m: map[string]struct{}{}, max: max} }

// has reports whether k is in the set; a nil set holds nothing.
func (s *boundedSet) has(k string) bool {
	if s == nil {
		return false
	}
	_, ok := s.m[k]
	return ok
}

func (s *boundedSet) add(k string) {
	if len(s.m) >= s.max {
		clear(s.m)
	}
	s.m[k] = struct{}{}
}

func (s *boundedSet) clear() { clear(s.m) }

// decodedBundle is the leaves [first, first+len(leaves)) of the pass in
// one entry bundle, decoded, or the error that ended reading.
type decodedBundle struct {
	first  uint64
	leaves []decoded
	err    error
}

// decodeAhead is how many decoded bundles may wait for the indexer.
const decodeAhead = 4

// decodeBundles reads and decodes the leaves [from, end) of the log of
// size, bundle by bundle, on a goroutine of its own; the channel closes
// after the last bundle, after an error, or when ctx ends.
func decodeBundles(ctx context.Context, src Source, from, end, size uint64) <-chan decodedBundle {
	out := make(chan decodedBundle, decodeAhead)
	go func() {
		defer close(out)
		for bi := from / layout.EntryBundleWidth; bi*layout.EntryBundleWidth < end; bi++ {
			first := bi * layout.EntryBundleWidth
			db := decodedBundle{first: max(from, first)}
			entries, err := readBundle(ctx, src, bi, size)
			if err != nil {
				db.err = err
			} else {
				db.leaves = make([]decoded, 0, min(end, first+layout.EntryBundleWidth)-db.first)
				for idx := db.first; idx < min(end, first+layout.EntryBundleWidth); idx++ {
					db.leaves = append(db.leaves, decodeLeaf(idx, entries[idx-first]))
				}
			}
			select {
			case out <- db:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// readBundle returns the entries of entry bundle bi of a log of size size.
func readBundle(ctx context.Context, src Source, bi, size uint64) ([][]byte, error) {
	p := layout.PartialTileSize(0, bi, size)
	raw, err := src.ReadEntryBundle(ctx, bi, p)
	if err != nil {
		return nil, fmt.Errorf("reading entry bundle %d: %w", bi, err)
	}
	var b api.EntryBundle
	if err := b.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("parsing entry bundle %d: %w", bi, err)
	}
	want := int(p)
	if p == 0 {
		want = layout.EntryBundleWidth
	}
	if len(b.Entries) < want {
		return nil, fmt.Errorf("entry bundle %d holds %d entries, want %d", bi, len(b.Entries), want)
	}
	return b.Entries, nil
}
