package lineage

import (
	"context"
	"errors"
)

// Store is the ordered key-value store under the index. The index is its
// only writer; it keeps its data, its watermark and its digest in the Store
// and commits them together, one Batch per indexing pass.
//
// Keys are compared as unsigned byte strings (bytes.Compare). They are
// non-empty, never start with 0xFF and are at most a few kilobytes; values
// are at most MaxValueSize. The embedded
// implementation is OpenPebbleStore; a MySQL implementation keeps them in
// one table with a VARBINARY primary key.
//
// Contract, checked by lineagetest.StoreConformance:
//   - Concurrency: every method is safe for concurrent use; the index runs
//     one Commit at a time, and reads alongside it. A read concurrent with
//     a Commit sees each key as before or after it; a Scan need not be a
//     snapshot (the index never reads past the watermark it started with,
//     so a half-visible batch is harmless to it).
//   - Atomicity: Commit applies all of a Batch or none of it, also across a
//     crash.
//   - Durability is not required: a crash may lose a suffix of the latest
//     commits, never part of one. The index is derived from the log, so
//     losing commits with their watermark only means indexing those leaves
//     again (pebble: no WAL, and memtables are flushed whole and in
//     order; MySQL: a committed InnoDB transaction).
type Store interface {
	// Get returns the value stored under key, or ErrNotFound. The caller
	// owns the returned slice.
	Get(ctx context.Context, key []byte) ([]byte, error)

	// Scan calls fn for every key k with start <= k < end, in ascending
	// key order, or descending when reverse is set. A nil end means no
	// upper bound. fn must not retain key or value after it returns. If fn
	// returns an error Scan stops and returns it; return ErrStopScan to
	// stop early without an error.
	Scan(ctx context.Context, start, end []byte, reverse bool, fn func(key, value []byte) error) error

	// Commit applies b atomically (see Durability above). It must not
	// modify b: its keys may share memory with immutable strings.
	Commit(ctx context.Context, b *Batch) error

	// Close releases the store. No other method may be called afterwards.
	Close() error
}

// viewer is a Store that can give an indexing pass a read view taken once
// for all its point reads and prefix probes (pebble: one iterator reused,
// instead of one built and torn down per read). A pass is the only writer
// while it runs, and commits at its end, so the view stays current.
type viewer interface {
	view() (view, error)
}

type view interface {
	// get is Store.Get.
	get(key []byte) ([]byte, error)
	// any reports whether some key starts with prefix.
	any(prefix []byte) (bool, error)
	close() error
}

// batchReader is a Store that pays a round trip per read (MySQL), and can
// read many keys, or probe many prefixes, in one. An indexing pass with
// no view fetches with it, before each entry bundle, what the bundle's
// leaves will read (txn.prefetch). Both read the store as it is, like Get
// and Scan.
type batchReader interface {
	// getMany calls found with every key of keys that is stored, and its
	// value, in no particular order; absent keys are not reported. found
	// may keep key and value.
	getMany(ctx context.Context, keys [][]byte, found func(key, value []byte)) error
	// anyMany reports, for each prefix, whether some key starts with it.
	anyMany(ctx context.Context, prefixes [][]byte) ([]bool, error)
}

// MaxValueSize bounds a value the index stores: an event record is at most
// about twice the size of its event, which is at most 64 KiB.
const MaxValueSize = 1 << 20

var (
	// ErrNotFound is returned by Store.Get for a key that is not stored.
	ErrNotFound = errors.New("lineage: key not found")
	// ErrStopScan, returned by a Scan callback, stops the scan; Scan then
	// returns nil.
	ErrStopScan = errors.New("lineage: stop scan")
)

// OpKind says what one Batch operation does.
type OpKind uint8

const (
	// OpSet stores Value under Key.
	OpSet OpKind = iota + 1
	// OpDelete removes Key.
	OpDelete
	// OpDeleteRange removes every key k with Key <= k < End (End nil: no
	// upper bound).
	OpDeleteRange
)

// Op is one operation of a Batch.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte // OpSet
	End   []byte // OpDeleteRange
}

// Batch is a list of operations that Commit applies in order, atomically.
// A later operation on a key overrides an earlier one.
type Batch struct {
	Ops []Op
}

// Set adds an OpSet. The batch keeps key and value; do not modify them.
func (b *Batch) Set(key, value []byte) {
	b.Ops = append(b.Ops, Op{Kind: OpSet, Key: key, Value: value})
}

// Delete adds an OpDelete.
func (b *Batch) Delete(key []byte) { b.Ops = append(b.Ops, Op{Kind: OpDelete, Key: key}) }

// DeleteRange adds an OpDeleteRange over [start, end).
func (b *Batch) DeleteRange(start, end []byte) {
	b.Ops = append(b.Ops, Op{Kind: OpDeleteRange, Key: start, End: end})
}

// Len is the number of operations.
func (b *Batch) Len() int { return len(b.Ops) }
