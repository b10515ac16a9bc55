// Package ledger wires the provlog leaf format to a tessera log: appending
// with idempotency on (tenant, event id), publishing signed checkpoints,
// reading entries back and building proofs.
//
// Idempotency works in two layers. In memory, every (tenant, event id) being
// appended or appended recently sits in a sharded map, so concurrent and
// repeated submissions see each other. On disk, a follower reads every
// integrated leaf back from the log and records (tenant, event id) -> (index,
// leaf hash, event digest) with its watermark in one transaction. The disk
// record is a pure function of the log: after a crash the follower rescans
// from its watermark before any append is accepted, so an acknowledged event
// is never appended twice, even if the process died between sequencing it
// and answering.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/client"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// Errors returned by the ledger. The service edge maps them to gRPC codes.
var (
	// ErrPushback means the log has too many entries outstanding; retry later.
	ErrPushback = errors.New("log is busy, retry later")
	// ErrNotFound means the entry or leaf is not in the published log.
	ErrNotFound = errors.New("not found in the published log")
	// ErrTreeSize means a tree size beyond the published checkpoint was asked for.
	ErrTreeSize = errors.New("tree size is beyond the published checkpoint")
	// ErrNoCheckpoint means nothing has been published yet.
	ErrNoCheckpoint = errors.New("no checkpoint published yet")
	// ErrClosed means the ledger is shutting down.
	ErrClosed = errors.New("log is shutting down")
	// ErrUnavailable means the storage failed to sequence an entry (a
	// database or disk that is down or full); nothing was appended, and
	// retrying later is safe.
	ErrUnavailable = errors.New("log storage is unavailable, retry later")
)

// ConflictError says the (tenant, event id) is already in the log with
// different content.
type ConflictError struct {
	Tenant, EventID string
	Index           uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("event_id %q of tenant %q is already in the log at index %d with different content", e.EventID, e.Tenant, e.Index)
}

// Config configures a Ledger.
type Config struct {
	// Dir holds the tile log (Dir/log) and the index store (Dir/index).
	// It is unused when AWS is set.
	Dir string
	// AWS, when set, puts the log on tessera's AWS driver (MySQL + S3)
	// and the idempotency index in the same database instead of Dir.
	AWS *AWSConfig
	// Signer signs checkpoints; its name is the log's origin.
	Signer note.Signer
	// AdditionalSigners also sign every checkpoint, under the same origin:
	// the overlap of a checkpoint key rotation (cmd/provlogd README).
	AdditionalSigners []note.Signer
	// Verifier checks our own checkpoints when reading them back.
	Verifier note.Verifier
	// CheckpointInterval is how often a new checkpoint is published (>= 100ms).
	CheckpointInterval time.Duration
	// BatchMaxSize and BatchMaxAge bound tessera's sequencing batches.
	BatchMaxSize uint
	BatchMaxAge  time.Duration
	// Witnesses, when non-nil, must cosign a checkpoint before it is published.
	Witnesses *tessera.WitnessGroup
	// WitnessFailOpen publishes a checkpoint even when the quorum was not met.
	WitnessFailOpen bool
	// WitnessTimeout bounds how long publication waits for witnesses.
	WitnessTimeout time.Duration
	// HTTPClient is used for witness requests; http.DefaultClient when nil.
	HTTPClient *http.Client
	// MinFreeBytes is the free space kept in reserve on Dir's file system:
	// below it appends fail with ErrStorageFull (see space.go); 0: no check.
	MinFreeBytes uint64
	// FollowInterval is how often the follower indexes newly integrated leaves.
	FollowInterval time.Duration
	// Logger receives operational messages; never event contents.
	Logger *slog.Logger
	// Now is the clock for received times; time.Now when nil.
	Now func() time.Time
}

// Ledger is a provlog log on tessera. It is safe for concurrent use.
type Ledger struct {
	cfg      Config
	origin   string
	add      tessera.AddFn
	shutdown func(context.Context) error
	reader   tessera.LogReader
	awaiter  *tessera.PublicationAwaiter
	store    indexStore
	log      *slog.Logger
	space    *spaceGuard // nil: no free-space reserve
	proofs   proofTrees
	// lastAppend is when Append was last called, in cfg.Now's Unix
	// nanoseconds (AppendedWithin).
	lastAppend atomic.Int64

	seed   maphash.Seed
	shards [64]shard

	leafMu     sync.Mutex
	recentLeaf map[[32]byte]uint64 // leaf hash -> index, until the follower records it
	recentIdx  map[uint64]record   // index -> record, until the follower records it

	cpMu     sync.Mutex
	cpRaw    []byte
	cpParsed *log.Checkpoint

	followMu  sync.Mutex // serialises follow passes
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
}

type shard struct {
	mu       sync.Mutex
	inflight map[string]*pending
	recent   map[string]record // acknowledged, not yet recorded by the follower
}

type pending struct {
	digest  [32]byte
	claimed bool // holds a claim in a shared store (see claimer)
	done    chan struct{}
	rec     record
	err     error
}

// Default sequencing batch sizes. On posix each batch costs tessera a fixed
// round of file writes and directory syncs on one goroutine, so large
// batches are what lets it keep up with many callers: 4096 sequenced more
// than twice the events per second of tessera's 256, for provlog and bare
// tessera alike (BENCHMARKS.md). The aws driver stores each batch as one
// database row, so it keeps tessera's default.
const (
	DefaultPOSIXBatchMaxSize = 4096
	DefaultAWSBatchMaxSize   = tessera.DefaultBatchMaxSize
)

// DefaultBatchMaxSize is the sequencing batch size Open uses when
// Config.BatchMaxSize is 0.
func DefaultBatchMaxSize(aws bool) uint {
	if aws {
		return DefaultAWSBatchMaxSize
	}
	return DefaultPOSIXBatchMaxSize
}

// Open opens (or creates) the log in cfg.Dir and brings its index up to date
// with every leaf already in the log before returning.
func Open(ctx context.Context, cfg Config) (*Ledger, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BatchMaxSize == 0 {
		cfg.BatchMaxSize = DefaultBatchMaxSize(cfg.AWS != nil)
	}
	if cfg.BatchMaxAge <= 0 {
		cfg.BatchMaxAge = tessera.DefaultBatchMaxAge
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = tessera.DefaultCheckpointInterval
	}
	if cfg.FollowInterval <= 0 {
		cfg.FollowInterval = 500 * time.Millisecond
	}
	if cfg.Signer == nil || cfg.Verifier == nil {
		return nil, errors.New("ledger: Signer and Verifier are required")
	}
	for _, s := range cfg.AdditionalSigners {
		if s.Name() != cfg.Signer.Name() {
			return nil, fmt.Errorf("ledger: additional signer for origin %q, the log's origin is %q", s.Name(), cfg.Signer.Name())
		}
	}
	store, err := newIndexStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	bgctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &Ledger{
		cfg:        cfg,
		origin:     cfg.Signer.Name(),
		store:      store,
		log:        cfg.Logger,
		seed:       maphash.MakeSeed(),
		recentLeaf: make(map[[32]byte]uint64),
		recentIdx:  make(map[uint64]record),
		cancel:     cancel,
		done:       make(chan struct{}),
		closed:     make(chan struct{}),
		space:      newSpaceGuard(cfg.Dir, cfg.MinFreeBytes, cfg.Logger),
	}
	for i := range l.shards {
		l.shards[i].inflight = make(map[string]*pending)
		l.shards[i].recent = make(map[string]record)
	}
	fail := func(err error) (*Ledger, error) {
		cancel()
		store.Close()
		return nil, err
	}

	driver, err := newDriver(bgctx, cfg)
	if err != nil {
		return fail(err)
	}
	opts := tessera.NewAppendOptions().
		WithCheckpointSigner(cfg.Signer, cfg.AdditionalSigners...).
		WithCheckpointInterval(cfg.CheckpointInterval).
		WithBatching(cfg.BatchMaxSize, cfg.BatchMaxAge)
	if cfg.Witnesses != nil {
		opts = opts.WithWitnesses(*cfg.Witnesses, &tessera.WitnessOptions{
			Timeout:  cfg.WitnessTimeout,
			FailOpen: cfg.WitnessFailOpen,
		})
	}
	appender, shutdown, reader, err := tessera.NewAppender(bgctx, driver, opts)
	if err != nil {
		return fail(fmt.Errorf("couldn't start tessera appender: %w", err))
	}
	if cfg.AWS != nil {
		reader = s3Reader{reader}
	}
	l.add, l.shutdown, l.reader = appender.Add, shutdown, reader
	l.awaiter = tessera.NewPublicationAwaiter(bgctx, reader.ReadCheckpoint, 50*time.Millisecond)

	if cfg.AWS != nil {
		// The AWS driver publishes a new log's first checkpoint in the
		// background; serve only once there is one, as posix does.
		if err := awaitFirstCheckpoint(ctx, l.reader); err != nil {
			shutdown(ctx)
			return fail(err)
		}
	}
	// Catch the index up with the log before accepting any append.
	if err := l.follow(ctx); err != nil {
		shutdown(ctx)
		return fail(fmt.Errorf("couldn't index the existing log: %w", err))
	}
	go l.followLoop(bgctx)
	return l, nil
}

// newDriver is the tessera driver cfg asks for: posix on Dir/log, or aws.
func newDriver(ctx context.Context, cfg Config) (tessera.Driver, error) {
	if cfg.AWS != nil {
		return newAWSDriver(ctx, *cfg.AWS, cfg.HTTPClient)
	}
	logDir := filepath.Join(cfg.Dir, "log")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create log directory: %w", err)
	}
	d, err := posix.New(ctx, posix.Config{Path: logDir, HTTPClient: cfg.HTTPClient})
	if err != nil {
		return nil, fmt.Errorf("couldn't create posix storage: %w", err)
	}
	return d, nil
}

// newIndexStore opens the idempotency index: pebble in Dir/index, or
// tables in the aws storage's database.
func newIndexStore(ctx context.Context, cfg Config) (indexStore, error) {
	if cfg.AWS != nil {
		return openMySQLIndexStore(ctx, cfg.AWS.DSN, cfg.AWS.MaxOpenConns)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("couldn't create data directory: %w", err)
	}
	return openPebbleStore(filepath.Join(cfg.Dir, "index"), cfg.Logger)
}

// Origin is the log's checkpoint origin.
func (l *Ledger) Origin() string { return l.origin }

// Reader gives read access to the tiles, entry bundles and checkpoint, as
// served under /log/.
func (l *Ledger) Reader() tessera.LogReader { return l.reader }

// Close stops accepting appends, waits until every acknowledged entry is
// integrated and covered by a published checkpoint, indexes it, and closes
// the store.
func (l *Ledger) Close(ctx context.Context) error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		if e := l.shutdown(ctx); e != nil {
			err = fmt.Errorf("tessera shutdown: %w", e)
		}
		l.cancel()
		<-l.done
		if e := l.follow(ctx); e != nil && err == nil {
			err = fmt.Errorf("final index pass: %w", e)
		}
		if e := l.store.Close(); e != nil && err == nil {
			err = fmt.Errorf("closing index store: %w", e)
		}
	})
	return err
}

// Submission is one event to append, already validated and authorised.
type Submission struct {
	Event     *pb.ProvenanceEvent
	Submitter string
}

// Result is the outcome of appending one Submission.
type Result struct {
	Index     uint64
	LeafHash  [32]byte
	Duplicate bool
	// Leaf is the leaf bytes, set for new entries only.
	Leaf []byte
	Err  error
}

// AppendedWithin reports whether Append was called in the last d: whether
// appends are arriving, for background work that should yield to them.
func (l *Ledger) AppendedWithin(d time.Duration) bool {
	return l.cfg.Now().UnixNano()-l.lastAppend.Load() < d.Nanoseconds()
}

// Append appends the submissions and waits until each is durably sequenced.
// Each submission gets its own Result; the returned error is for failures
// of the whole call only.
func (l *Ledger) Append(ctx context.Context, subs []Submission) []Result {
	res := make([]Result, len(subs))
	type job struct {
		i      int
		key    string
		sh     *shard
		p      *pending
		wait   *pending // someone else is appending this key
		remote bool     // another frontend is appending this key
		future tessera.IndexFuture
		leaf   []byte
		entry  *tessera.Entry
		hash   [32]byte
		digest [32]byte
	}
	jobs := make([]job, 0, len(subs))
	l.lastAppend.Store(l.cfg.Now().UnixNano())
	select {
	case <-l.closed:
		for i := range res {
			res[i].Err = ErrClosed
		}
		return res
	default:
	}
	if err := l.space.check(); err != nil {
		for i := range res {
			res[i].Err = err
		}
		return res
	}
	// Phase 1: build each leaf, then reserve its key or find it already there.
	for i, s := range subs {
		entry, leaf, err := event.NewLeaf(s.Event, l.cfg.Now(), s.Submitter)
		if err != nil {
			res[i].Err = fmt.Errorf("building leaf: %w", err)
			continue
		}
		digest := [32]byte(entry.GetEventDigest())
		key := dedupeKey(s.Event.GetTenant(), s.Event.GetEventId())
		sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
		found, p, wait, err := l.reserve(sh, key, digest)
		switch {
		case err != nil:
			res[i].Err = err
		case found != nil:
			res[i] = l.duplicateResult(s.Event, *found, digest)
		case wait != nil:
			jobs = append(jobs, job{i: i, key: key, sh: sh, wait: wait, digest: digest})
		default:
			e := tessera.NewEntry(leaf) // hashes the leaf (RFC 6962) once for both of us
			jobs = append(jobs, job{i: i, key: key, sh: sh, p: p, leaf: leaf, entry: e, hash: [32]byte(e.LeafHash()), digest: digest})
		}
	}
	// Phase 1b: look the new keys up in the store, all in one pass (a
	// reservation held meanwhile keeps any other append of them waiting);
	// with a store shared by several frontends, claim them there instead,
	// all in one round trip.
	if _, ok := l.store.(claimer); !ok {
		var keys []string
		var at []int
		for j := range jobs {
			if jobs[j].p != nil {
				keys = append(keys, jobs[j].key)
				at = append(at, j)
			}
		}
		found, err := l.store.LookupMany(keys)
		drop := map[int]bool{}
		for n, j := range at {
			jb := &jobs[j]
			switch {
			case err != nil:
				l.release(jb.sh, jb.key, jb.p, record{}, err)
				res[jb.i].Err = err
				drop[j] = true
			case found[n] != nil:
				l.releaseStored(jb.sh, jb.key, jb.p, *found[n])
				res[jb.i] = l.duplicateResult(subs[jb.i].Event, *found[n], jb.digest)
				drop[j] = true
			}
		}
		jobs = dropJobs(jobs, drop)
	}
	if _, ok := l.store.(claimer); ok {
		var cjs []*claimJob
		var at []int
		for j := range jobs {
			if jobs[j].p != nil {
				cjs = append(cjs, &claimJob{key: jobs[j].key, sh: jobs[j].sh, p: jobs[j].p})
				at = append(at, j)
			}
		}
		l.claimAll(ctx, cjs)
		drop := map[int]bool{}
		for n, cj := range cjs {
			jb := &jobs[at[n]]
			switch {
			case cj.err != nil:
				res[jb.i].Err = cj.err
				drop[at[n]] = true
			case cj.found != nil:
				res[jb.i] = l.duplicateResult(subs[jb.i].Event, *cj.found, jb.digest)
				drop[at[n]] = true
			case cj.remote:
				jb.remote = true
			}
		}
		jobs = dropJobs(jobs, drop)
	}
	// Phase 2: hand every new leaf to tessera before waiting on any, so a
	// batch is sequenced together.
	for j := range jobs {
		if jobs[j].p != nil && !jobs[j].remote {
			jobs[j].future = l.add(ctx, jobs[j].entry)
		}
	}
	// Phase 3: resolve futures; with a shared store, settle the claims of
	// the sequenced ones in one round trip before releasing them.
	recs := make([]record, len(jobs))
	var settle []record
	for j, jb := range jobs {
		if jb.p == nil || jb.remote {
			continue
		}
		idx, err := jb.future()
		if err != nil {
			err = mapTesseraErr(err)
			l.release(jb.sh, jb.key, jb.p, record{}, err)
			res[jb.i].Err = err
			jobs[j].p = nil
			continue
		}
		recs[j] = record{Key: jb.key, Index: idx.Index, LeafHash: jb.hash, Digest: jb.p.digest}
		if jb.p.claimed {
			settle = append(settle, recs[j])
		}
	}
	// Note the sequenced leaves for the follower at once, under one lock
	// (the settles of a shared store, below, may take a while).
	noted := make([]record, 0, len(jobs))
	for j, jb := range jobs {
		if jb.p != nil && !jb.remote {
			noted = append(noted, recs[j])
		}
	}
	l.note(noted...)
	if c, ok := l.store.(claimer); ok && len(settle) > 0 {
		if err := c.SettleMany(ctx, settle); err != nil {
			// The followers record them from the log anyway.
			l.log.Warn("settling idempotency claims failed", "n", len(settle), "err", err)
		}
	}
	for j, jb := range jobs {
		if jb.p == nil || jb.remote {
			continue
		}
		jb.p.claimed = false // settled above
		l.releaseNoted(jb.sh, jb.key, jb.p, recs[j], nil)
		res[jb.i] = Result{Index: recs[j].Index, LeafHash: jb.hash, Leaf: jb.leaf}
	}
	// Phase 4: submissions that raced with another append of the same key.
	for _, jb := range jobs {
		if jb.remote {
			res[jb.i] = l.appendRemote(ctx, subs[jb.i].Event, jb.key, jb.sh, jb.p, jb.leaf, jb.hash)
			continue
		}
		if jb.wait == nil {
			continue
		}
		s := subs[jb.i]
		select {
		case <-jb.wait.done:
		case <-ctx.Done():
			res[jb.i].Err = ctx.Err()
			continue
		}
		if jb.wait.err != nil {
			// The other append failed; this one was never tried. Let the
			// caller retry rather than looping here.
			res[jb.i].Err = jb.wait.err
			continue
		}
		res[jb.i] = l.duplicateResult(s.Event, jb.wait.rec, jb.digest)
	}
	return res
}

func (l *Ledger) duplicateResult(ev *pb.ProvenanceEvent, r record, digest [32]byte) Result {
	if r.Digest != digest {
		return Result{Err: &ConflictError{Tenant: ev.GetTenant(), EventID: ev.GetEventId(), Index: r.Index}}
	}
	return Result{Index: r.Index, LeafHash: r.LeafHash, Duplicate: true}
}

// reserve looks key up in flight and in the recent map. It returns the
// existing record, or a pending append to wait for, or a new reservation p
// that the caller must release. The store lookup is Append's, for all of a
// call's new keys at once while it holds their reservations. (Nothing falls
// between the two: a key's record reaches the store before it leaves
// recent, and release fills recent before clearing inflight, so a key
// missed in recent and reserved here is either in the store or appended by
// no one else.)
func (l *Ledger) reserve(sh *shard, key string, digest [32]byte) (found *record, p, wait *pending, err error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if w, ok := sh.inflight[key]; ok {
		return nil, nil, w, nil
	}
	if r, ok := sh.recent[key]; ok {
		return &r, nil, nil, nil
	}
	p = &pending{digest: digest, done: make(chan struct{})}
	sh.inflight[key] = p
	return nil, p, nil, nil
}

// releaseStored releases reservation p of a key found in the store: anyone
// waiting on it gets the stored record.
func (l *Ledger) releaseStored(sh *shard, key string, p *pending, rec record) {
	sh.mu.Lock()
	delete(sh.inflight, key)
	sh.mu.Unlock()
	p.rec = rec
	close(p.done)
}

// dropJobs removes the jobs at the indexes in drop, keeping the order.
func dropJobs[T any](jobs []T, drop map[int]bool) []T {
	if len(drop) == 0 {
		return jobs
	}
	kept := jobs[:0]
	for j, jb := range jobs {
		if !drop[j] {
			kept = append(kept, jb)
		}
	}
	return kept
}

func (l *Ledger) release(sh *shard, key string, p *pending, rec record, err error) {
	if err == nil {
		l.note(rec)
	}
	l.releaseNoted(sh, key, p, rec, err)
}

// note makes appended records known by leaf hash and by index until the
// follower has recorded them in the store.
func (l *Ledger) note(recs ...record) {
	l.leafMu.Lock()
	defer l.leafMu.Unlock()
	for _, rec := range recs {
		l.recentLeaf[rec.LeafHash] = rec.Index
		l.recentIdx[rec.Index] = rec
	}
}

// releaseNoted is release for a record already noted (or an error).
func (l *Ledger) releaseNoted(sh *shard, key string, p *pending, rec record, err error) {
	if c, ok := l.store.(claimer); ok && p.claimed {
		var cerr error
		if err == nil {
			cerr = c.Settle(context.Background(), rec)
		} else {
			cerr = c.Unclaim(context.Background(), key)
		}
		if cerr != nil {
			// Settle: the follower records it from the log. Unclaim: the
			// claim goes stale and is checked and dropped after the lease.
			l.log.Warn("updating the shared idempotency claim failed", "err", cerr)
		}
	}
	sh.mu.Lock()
	if err == nil {
		sh.recent[key] = rec
	}
	delete(sh.inflight, key)
	sh.mu.Unlock()
	p.rec, p.err = rec, err
	close(p.done)
}

func mapTesseraErr(err error) error {
	switch {
	case errors.Is(err, tessera.ErrPushback):
		return fmt.Errorf("%w: %v", ErrPushback, err)
	default:
		return fmt.Errorf("%w: sequencing entry: %w", ErrUnavailable, err)
	}
}

// AwaitPublished blocks until a published checkpoint covers index, and returns
// that checkpoint.
func (l *Ledger) AwaitPublished(ctx context.Context, index uint64) ([]byte, error) {
	_, cp, err := l.awaiter.Await(ctx, func() (tessera.Index, error) { return tessera.Index{Index: index}, nil })
	if err != nil {
		return nil, fmt.Errorf("waiting for a checkpoint covering index %d: %w", index, err)
	}
	return cp, nil
}

// Checkpoint returns the latest published checkpoint, raw and parsed.
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, *log.Checkpoint, error) {
	raw, err := l.reader.ReadCheckpoint(ctx)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, ErrNoCheckpoint
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading checkpoint: %w", err)
	}
	return l.parseCheckpoint(raw)
}

func (l *Ledger) parseCheckpoint(raw []byte) ([]byte, *log.Checkpoint, error) {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if l.cpParsed != nil && string(l.cpRaw) == string(raw) {
		return l.cpRaw, l.cpParsed, nil
	}
	cp, _, _, err := log.ParseCheckpoint(raw, l.origin, l.cfg.Verifier)
	if err != nil {
		return nil, nil, fmt.Errorf("our own checkpoint does not verify: %w", err)
	}
	l.cpRaw, l.cpParsed = raw, cp
	return raw, cp, nil
}

// Entry returns the leaf at index, which must be in the published tree.
func (l *Ledger) Entry(ctx context.Context, index uint64) ([]byte, error) {
	_, cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if index >= cp.Size {
		return nil, ErrNotFound
	}
	return l.readLeaf(ctx, index, cp.Size)
}

func (l *Ledger) readLeaf(ctx context.Context, index, treeSize uint64) ([]byte, error) {
	b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, index/256, treeSize)
	if err != nil {
		return nil, fmt.Errorf("reading entry bundle %d: %w", index/256, err)
	}
	i := index % 256
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("entry bundle %d holds %d entries, want index %d", index/256, len(b.Entries), index)
	}
	return b.Entries[i], nil
}

// IndexOfLeaf finds a leaf by its RFC 6962 hash.
func (l *Ledger) IndexOfLeaf(hash [32]byte) (uint64, error) {
	l.leafMu.Lock()
	idx, ok := l.recentLeaf[hash]
	l.leafMu.Unlock()
	if ok {
		return idx, nil
	}
	idx, ok, err := l.store.LookupLeaf(hash)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, ErrNotFound
	}
	return idx, nil
}

// InclusionProof proves leaf index is in the tree of treeSize; treeSize 0
// means the latest checkpoint, which is returned too.
func (l *Ledger) InclusionProof(ctx context.Context, index, treeSize uint64) (proof [][]byte, size uint64, cpRaw []byte, err error) {
	raw, cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	if treeSize == 0 {
		treeSize = cp.Size
	} else {
		raw = nil
	}
	if treeSize > cp.Size {
		return nil, 0, nil, fmt.Errorf("%w: tree_size %d, published size %d", ErrTreeSize, treeSize, cp.Size)
	}
	if index >= treeSize {
		return nil, 0, nil, ErrNotFound
	}
	p, err := l.InclusionProofs(ctx, treeSize, []uint64{index})
	if err != nil {
		return nil, 0, nil, err
	}
	return p[0], treeSize, raw, nil
}

// ConsistencyProof proves the tree of size from is a prefix of the tree of
// size to; to 0 means the latest checkpoint, which is returned too.
func (l *Ledger) ConsistencyProof(ctx context.Context, from, to uint64) (proof [][]byte, size uint64, cpRaw []byte, err error) {
	raw, cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, 0, nil, err
	}
	if to == 0 {
		to = cp.Size
	} else {
		raw = nil
	}
	if to > cp.Size {
		return nil, 0, nil, fmt.Errorf("%w: to_size %d, published size %d", ErrTreeSize, to, cp.Size)
	}
	if from > to {
		return nil, 0, nil, fmt.Errorf("%w: from_size %d > to_size %d", ErrTreeSize, from, to)
	}
	p, err := l.proofs.get(to, l.reader.ReadTile).consistency(ctx, from)
	if err != nil {
		return nil, 0, nil, err
	}
	return p, to, raw, nil
}

// followLoop indexes newly integrated leaves until ctx ends.
func (l *Ledger) followLoop(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.cfg.FollowInterval)
	defer t.Stop()
	// Each pass goes up to the size integrated one tick before: the
	// appends of those leaves have had a tick to note them in memory
	// (ownRecord), so the pass need not read their bundles back. The
	// in-memory maps answer for the leaves in between meanwhile.
	var prev uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		size, err := l.reader.IntegratedSize(ctx)
		if err == nil {
			err = l.followTo(ctx, prev)
			prev = size
		}
		if err != nil && ctx.Err() == nil {
			l.log.Error("indexing the log failed; will retry", "err", err)
		}
	}
}

// follow records every integrated leaf past the watermark, then evicts what
// it recorded from the in-memory maps.
func (l *Ledger) follow(ctx context.Context) error { return l.followTo(ctx, math.MaxUint64) }

// followTo is follow up to tree size limit at most.
func (l *Ledger) followTo(ctx context.Context, limit uint64) error {
	l.followMu.Lock()
	defer l.followMu.Unlock()
	wm, err := l.store.Watermark()
	if err != nil {
		return err
	}
	size, err := l.reader.IntegratedSize(ctx)
	if err != nil {
		return fmt.Errorf("reading integrated size: %w", err)
	}
	size = min(size, limit)
	const maxPass = 64 * 256 // leaves per transaction
	for wm < size {
		end := min(size, wm+maxPass)
		recs := make([]record, 0, end-wm)
		// Leaves this process appended are taken from memory: tessera
		// assigned their indexes (the answer their appends were
		// acknowledged with), so their bundle need not be read back and
		// decoded. Other leaves (appended by another frontend, or before
		// a restart) come from their entry bundle, read once per bundle.
		var bundle api.EntryBundle
		bundleIdx := uint64(math.MaxUint64)
		for idx := wm; idx < end; idx++ {
			if r, ok := l.ownRecord(idx); ok {
				recs = append(recs, r)
				continue
			}
			if bi := idx / 256; bi != bundleIdx {
				b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, bi, size)
				if err != nil {
					return fmt.Errorf("reading entry bundle %d: %w", bi, err)
				}
				bundle, bundleIdx = b, bi
			}
			j := idx % 256
			if j >= uint64(len(bundle.Entries)) {
				return fmt.Errorf("entry bundle %d holds %d entries, want index %d", bundleIdx, len(bundle.Entries), idx)
			}
			recs = append(recs, l.recordOf(idx, bundle.Entries[j]))
		}
		if err := l.store.Commit(recs, end); err != nil {
			return err
		}
		l.evict(end)
		wm = end
	}
	return nil
}

// ownRecord is the record of leaf idx if this process appended it.
func (l *Ledger) ownRecord(idx uint64) (record, bool) {
	l.leafMu.Lock()
	r, ok := l.recentIdx[idx]
	l.leafMu.Unlock()
	r.New = true // reserve looked the key up before appending
	return r, ok
}

func (l *Ledger) recordOf(idx uint64, leaf []byte) record {
	hash := event.LeafHash(leaf)
	entry, err := event.DecodeLeaf(leaf)
	if err != nil {
		// Only the ledger writes leaves; one that does not decode is a bug
		// or tampering. Keep its hash so proofs by hash still work.
		l.log.Error("leaf does not decode", "index", idx, "err", err)
		return record{Key: fmt.Sprintf("\x00undecodable\x00%d", idx), Index: idx, LeafHash: hash}
	}
	return record{Key: dedupeKey(entry.GetEvent().GetTenant(), entry.GetEvent().GetEventId()), Index: idx, LeafHash: hash, Digest: [32]byte(entry.GetEventDigest())}
}

func (l *Ledger) evict(watermark uint64) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, r := range sh.recent {
			if r.Index < watermark {
				delete(sh.recent, k)
			}
		}
		sh.mu.Unlock()
	}
	l.leafMu.Lock()
	for h, idx := range l.recentLeaf {
		if idx < watermark {
			delete(l.recentLeaf, h)
		}
	}
	for idx := range l.recentIdx {
		if idx < watermark {
			delete(l.recentIdx, idx)
		}
	}
	l.leafMu.Unlock()
}

// Receipt waits until a published checkpoint covers index and returns that
// checkpoint with an inclusion proof of the leaf to it.
func (l *Ledger) Receipt(ctx context.Context, index uint64) (cpRaw []byte, proof [][]byte, err error) {
	raw, err := l.AwaitPublished(ctx, index)
	if err != nil {
		return nil, nil, err
	}
	_, cp, err := l.parseCheckpoint(raw)
	if err != nil {
		return nil, nil, err
	}
	p, err := l.InclusionProofs(ctx, cp.Size, []uint64{index})
	if err != nil {
		return nil, nil, err
	}
	return raw, p[0], nil
}

// InclusionProofs returns inclusion proofs of indexes in the tree of size,
// in order. Tiles and their inner nodes are read and hashed once for every
// caller proving to the same size (proofTrees). The caller checks size
// against a checkpoint it holds.
func (l *Ledger) InclusionProofs(ctx context.Context, size uint64, indexes []uint64) ([][][]byte, error) {
	tree := l.proofs.get(size, l.reader.ReadTile)
	out := make([][][]byte, len(indexes))
	for i, idx := range indexes {
		var err error
		if out[i], err = tree.inclusion(ctx, idx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ParseCheckpoint verifies one of this log's checkpoints and parses it.
func (l *Ledger) ParseCheckpoint(raw []byte) (*log.Checkpoint, error) {
	_, cp, err := l.parseCheckpoint(raw)
	return cp, err
}
