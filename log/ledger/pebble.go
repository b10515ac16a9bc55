package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/provlog/provlog/internal/pebblekit"
)

// pebbleStore is the embedded indexStore. Pebble (an LSM tree) is chosen
// over a B-tree store such as bbolt because the index takes a stream of
// random keys (tenant/event ids, leaf hashes): an LSM turns them into
// sequential writes, where a B-tree rewrites pages all over the file on every
// commit. Measured on this machine, the bbolt version halved append
// throughput; see BENCHMARKS.md.
//
// Keys: "e" + tenant + 0x00 + event id -> index(8) | leaf hash(32) | digest(32);
// "l" + leaf hash -> index(8); "m/watermark" -> tree size(8). All big-endian.
type pebbleStore struct {
	db    *pebble.DB
	cache *pebble.Cache
	life  pebblekit.Life
}

// Memory bound of the index store. Pebble charges memtables to the block
// cache, so the cache must be well above them or reads always go to disk.
const (
	indexCacheSize    = 64 << 20
	indexMemTableSize = 16 << 20
)

var pebbleWatermarkKey = []byte("m/watermark")

func openPebbleStore(dir string, log *slog.Logger) (*pebbleStore, error) {
	cache := pebble.NewCache(indexCacheSize)
	opts := &pebble.Options{
		Cache:                       cache,
		Logger:                      pebblekit.Logger{Log: log, Store: "idempotency"},
		MemTableSize:                indexMemTableSize,
		MemTableStopWritesThreshold: 2,
		// No WAL: the index is derived from the log and Open re-derives
		// whatever a crash loses before accepting appends (see Commit).
		DisableWAL: true,
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		cache.Unref()
		return nil, fmt.Errorf("couldn't open index store %s: %w", dir, err)
	}
	return &pebbleStore{db: db, cache: cache}, nil
}

func eventKey(key string) []byte { return append([]byte{'e'}, key...) }
func leafKey(h [32]byte) []byte  { return append([]byte{'l'}, h[:]...) }

func (s *pebbleStore) get(key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

func (s *pebbleStore) Lookup(key string) (record, bool, error) {
	v, ok, err := s.get(eventKey(key))
	if err != nil || !ok {
		return record{}, false, wrapLookup(err)
	}
	r, err := decodeRecord(key, v)
	return r, err == nil, err
}

// decodeRecord is the record stored under key's "e" key: index(8) | leaf
// hash(32) | digest(32).
func decodeRecord(key string, v []byte) (record, error) {
	if len(v) != 72 {
		return record{}, fmt.Errorf("corrupt index record for %q: %d bytes", key, len(v))
	}
	r := record{Key: key, Index: binary.BigEndian.Uint64(v)}
	copy(r.LeafHash[:], v[8:40])
	copy(r.Digest[:], v[40:72])
	return r, nil
}

// LookupMany seeks one iterator through the keys in key order: cheaper
// than a Get each (no iterator stack built per key, and each seek goes on
// from the last), and SeekPrefixGE consults the bloom filters.
func (s *pebbleStore) LookupMany(keys []string) ([]*record, error) {
	found := make([]*record, len(keys))
	if len(keys) == 0 {
		return found, nil
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'e'}, UpperBound: []byte{'e' + 1}})
	if err != nil {
		return nil, wrapLookup(err)
	}
	defer it.Close()
	for _, i := range order {
		ek := eventKey(keys[i])
		if !it.SeekPrefixGE(ek) || !bytes.Equal(it.Key(), ek) {
			continue
		}
		r, err := decodeRecord(keys[i], it.Value())
		if err != nil {
			return nil, err
		}
		found[i] = &r
	}
	if err := it.Error(); err != nil {
		return nil, wrapLookup(err)
	}
	return found, nil
}

func wrapLookup(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("index lookup: %w", err)
}

func (s *pebbleStore) LookupLeaf(hash [32]byte) (uint64, bool, error) {
	v, ok, err := s.get(leafKey(hash))
	if err != nil || !ok {
		return 0, false, wrapLookup(err)
	}
	if len(v) != 8 {
		return 0, false, errors.New("corrupt leaf record")
	}
	return binary.BigEndian.Uint64(v), true, nil
}

func (s *pebbleStore) Watermark() (uint64, error) {
	v, ok, err := s.get(pebbleWatermarkKey)
	if err != nil {
		return 0, fmt.Errorf("reading watermark: %w", err)
	}
	if !ok {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, errors.New("corrupt watermark")
	}
	return binary.BigEndian.Uint64(v), nil
}

func (s *pebbleStore) Commit(recs []record, watermark uint64) error {
	b := s.db.NewBatch()
	defer b.Close()
	// A key keeps its lowest index, whether stored before or earlier in
	// this batch. Lookups of absent keys are cheap: bloom filters.
	seen := make(map[string]uint64, len(recs))
	type kv struct{ k, v []byte }
	ops := make([]kv, 0, 2*len(recs))
	for _, r := range recs {
		prev, inBatch := seen[r.Key]
		if inBatch && prev <= r.Index {
			continue
		}
		ek := eventKey(r.Key)
		if !inBatch && !r.New {
			if v, ok, err := s.get(ek); err != nil {
				return fmt.Errorf("committing index records: %w", err)
			} else if ok && len(v) == 72 && binary.BigEndian.Uint64(v) <= r.Index {
				continue
			}
		}
		seen[r.Key] = r.Index
		val := make([]byte, 72)
		binary.BigEndian.PutUint64(val, r.Index)
		copy(val[8:40], r.LeafHash[:])
		copy(val[40:], r.Digest[:])
		ops = append(ops, kv{ek, val}, kv{leafKey(r.LeafHash), binary.BigEndian.AppendUint64(nil, r.Index)})
	}
	// In key order: pebble's memtable insert then walks on from the last
	// key instead of searching the skiplist from the top for each one. A
	// key written twice (a record with a lower index after one with a
	// higher, same key) keeps its last write: the sort is stable.
	slices.SortStableFunc(ops, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
	for i, o := range ops {
		if i+1 < len(ops) && bytes.Equal(o.k, ops[i+1].k) {
			continue
		}
		if err := b.Set(o.k, o.v, nil); err != nil {
			return fmt.Errorf("committing index records: %w", err)
		}
	}
	if err := b.Set(pebbleWatermarkKey, binary.BigEndian.AppendUint64(nil, watermark), nil); err != nil {
		return fmt.Errorf("committing watermark: %w", err)
	}
	// No WAL and no sync: the index is derived from the log. A batch
	// (records and watermark together) lands in one memtable, and pebble
	// flushes memtables whole and in order, so a crash (of the process or
	// the machine) can only lose a suffix of commits, with their
	// watermark; Open re-derives them from the log before accepting
	// appends. The WAL would cost a write of every batch for nothing.
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("committing %d index records at watermark %d: %w", len(recs), watermark, err)
	}
	return nil
}

func (s *pebbleStore) Close() error {
	s.life.Close()
	// Without a WAL, unflushed commits would be re-derived at the next
	// start; flushing them now spares that.
	err := s.db.Flush()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	s.cache.Unref()
	if err != nil {
		return fmt.Errorf("closing index store: %w", err)
	}
	return nil
}

// IndexMemory reports the bytes the embedded idempotency index (pebble)
// holds outside the Go heap, in its block cache and memtables; ok is false
// under aws, where the index is in the database, and once closed.
func (l *Ledger) IndexMemory() (cache, memtables int64, ok bool) {
	if s, isPebble := l.store.(*pebbleStore); isPebble {
		return s.life.Memory(s.db)
	}
	return 0, 0, false
}
