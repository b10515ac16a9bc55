package lineage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/provlog/provlog/internal/pebblekit"
)

// pebbleStore is the embedded Store.
//
// Pebble (an LSM tree) rather than a B-tree store such as bbolt or SQLite:
// the index is write-heavy, a dozen or more keys per event, and its keys
// are random (URIs, run ids, actor ids, event ids interleave across
// tenants). An LSM tree turns those into sequential writes and compactions,
// where a B-tree rewrites pages all over its file on every commit; the
// ledger's dedupe index measured the same trade (log/ledger, "index store
// on pebble instead of bbolt"). Bloom filters keep the many point lookups of
// absent keys (presence checks, waiting gaps) off the disk.
//
// Memory is bounded, whatever the size of the log, by pebbleCacheSize:
// pebble charges its memtables (at most pebbleMemTables of
// pebbleMemTableSize) to the block cache, so the cache must be well above
// their total or it holds no blocks at all, and every read goes to the
// file system.
type pebbleStore struct {
	db    *pebble.DB
	cache interface{ Unref() }
	life  pebblekit.Life
}

const (
	pebbleCacheSize    = 160 << 20
	pebbleMemTableSize = 32 << 20
	pebbleMemTables    = 2
	// The index's keys are spread over the whole key space, so every
	// flushed memtable overlaps all of the base level, and each L0
	// compaction rewrites it. Compacting 16 L0 sublevels at a time rather
	// than pebble's 4 writes a third fewer bytes (BenchmarkIndex: 698
	// against 1,045 written-B/event) for 10-25% less CPU while indexing;
	// traces read more files (depth 10 over 1M events: p99 3.1 against
	// 2.5 ms), far inside their 10 ms goal (BENCHMARKS.md).
	pebbleL0CompactionThreshold = 16
	pebbleL0StopWritesThreshold = 3 * pebbleL0CompactionThreshold
)

// OpenPebbleStore opens, or creates, the embedded index store in dir.
// Pebble's own messages go to log at debug level (errors at error level).
func OpenPebbleStore(dir string, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.Default()
	}
	cache := pebble.NewCache(pebbleCacheSize)
	opts := &pebble.Options{
		Cache:                       cache,
		Logger:                      pebblekit.Logger{Log: log, Store: "lineage"},
		MemTableSize:                pebbleMemTableSize,
		MemTableStopWritesThreshold: pebbleMemTables,
		// No WAL (Store contract, Durability): the index is derived from
		// the log; a crash loses the latest batches whole, with their
		// watermark, and the index re-derives them.
		DisableWAL:            true,
		L0CompactionThreshold: pebbleL0CompactionThreshold,
		L0StopWritesThreshold: pebbleL0StopWritesThreshold,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("couldn't open lineage store %s: %w", dir, err)
	}
	return &pebbleStore{db: db, cache: cache}, nil
}

func (s *pebbleStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lineage store get: %w", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, nil
}

func (s *pebbleStore) view() (view, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("lineage store view: %w", err)
	}
	return pebbleView{it}, nil
}

type pebbleView struct{ it *pebble.Iterator }

func (v pebbleView) get(key []byte) ([]byte, error) {
	// SeekPrefixGE consults the bloom filters (the default comparer's
	// prefix is the whole key).
	if !v.it.SeekPrefixGE(key) || !bytes.Equal(v.it.Key(), key) {
		if err := v.it.Error(); err != nil {
			return nil, fmt.Errorf("lineage store get: %w", err)
		}
		return nil, ErrNotFound
	}
	val, err := v.it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("lineage store get: %w", err)
	}
	return append([]byte(nil), val...), nil
}

func (v pebbleView) any(prefix []byte) (bool, error) {
	if v.it.SeekGE(prefix) && bytes.HasPrefix(v.it.Key(), prefix) {
		return true, nil
	}
	if err := v.it.Error(); err != nil {
		return false, fmt.Errorf("lineage store scan: %w", err)
	}
	return false, nil
}

func (v pebbleView) close() error { return v.it.Close() }

func (s *pebbleStore) Scan(ctx context.Context, start, end []byte, reverse bool, fn func(key, value []byte) error) (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		return fmt.Errorf("lineage store scan: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("lineage store scan: %w", cerr)
		}
	}()
	var ok bool
	if reverse {
		ok = it.Last()
	} else {
		ok = it.First()
	}
	for n := 0; ok; n++ {
		if n%256 == 255 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("lineage store scan: %w", err)
		}
		if err := fn(it.Key(), v); err != nil {
			if errors.Is(err, ErrStopScan) {
				return nil
			}
			return err
		}
		if reverse {
			ok = it.Prev()
		} else {
			ok = it.Next()
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("lineage store scan: %w", err)
	}
	return nil
}

func (s *pebbleStore) Commit(ctx context.Context, b *Batch) error {
	// Sized up front: growing a batch of a pass's few MiB copies it over
	// and over (a tenth of the indexer's allocations).
	size := 0
	for _, op := range b.Ops {
		size += len(op.Key) + len(op.Value) + len(op.End) + 16
	}
	pb := s.db.NewBatchWithSize(size)
	defer pb.Close()
	for _, op := range b.Ops {
		var err error
		switch op.Kind {
		case OpSet:
			err = pb.Set(op.Key, op.Value, nil)
		case OpDelete:
			err = pb.Delete(op.Key, nil)
		case OpDeleteRange:
			end := op.End
			if end == nil {
				end = maxKey
			}
			err = pb.DeleteRange(op.Key, end, nil)
		default:
			err = fmt.Errorf("unknown batch operation %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("lineage store commit: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// No WAL and no sync (Store contract, Durability): the index is
	// derived from the log, and a fsync per pass competes with the log's
	// own. A crash, even of the process alone, may lose the latest
	// batches whole: pebble flushes memtables whole and in order.
	if err := pb.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("lineage store commit of %d operations: %w", b.Len(), err)
	}
	return nil
}

// maxKey is above every valid key (none starts with 0xFF), standing in for
// "no upper bound" in a pebble range deletion.
var maxKey = []byte{0xFF}

func (s *pebbleStore) Close() error {
	s.life.Close()
	// Without a WAL, unflushed batches would be re-derived at the next
	// start; flushing them now spares that.
	err := s.db.Flush()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	s.cache.Unref()
	if err != nil {
		return fmt.Errorf("closing lineage store: %w", err)
	}
	return nil
}

// PebbleMemory reports the bytes an embedded store (OpenPebbleStore) holds
// outside the Go heap, in its block cache and memtables; ok is false for
// other stores and once closed.
func PebbleMemory(s Store) (cache, memtables int64, ok bool) {
	if p, isPebble := s.(*pebbleStore); isPebble {
		return p.life.Memory(p.db)
	}
	return 0, 0, false
}
