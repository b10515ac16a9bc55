package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/provlog/provlog/internal/pebblekit"
)

// Store is where a Vault keeps its keyring and its sealed values: the
// embedded store under Config.Dir (OpenPebbleStore, the default), or
// tables of a MySQL-compatible database that several processes share
// (OpenMySQLStore). The vault encrypts before it stores: a Store only ever
// sees ciphertexts and wrapped keys.
//
// Contract, checked by vaulttest.StoreConformance:
//   - Every method is safe for concurrent use, also by several processes
//     on one shared store.
//   - Durability: Write and WriteKeyring return only once their change
//     survives a crash of the process and of the machine.
//   - Write applies all of its operations or none of them.
//   - The keyring is replaced whole, by compare-and-swap on its version:
//     two processes changing it at once cannot lose either change (one
//     gets ErrKeyringChanged, reloads and tries again).
type Store interface {
	// ReadKeyring returns the keyring document and its version; ok is
	// false when none has been written.
	ReadKeyring(ctx context.Context) (doc []byte, version uint64, ok bool, err error)
	// KeyringVersion is the keyring's current version (0: none), cheaply:
	// a vault compares it with the version it holds before each read and
	// each seal, to see the keys another process made or erased.
	KeyringVersion(ctx context.Context) (uint64, error)
	// WriteKeyring replaces the keyring if its version is still prev (0:
	// none written yet) and returns the new version; otherwise it changes
	// nothing and returns ErrKeyringChanged.
	WriteKeyring(ctx context.Context, doc []byte, prev uint64) (uint64, error)

	// Get returns the value under key; ok is false when there is none.
	// The caller owns the returned slice.
	Get(ctx context.Context, key []byte) (value []byte, ok bool, err error)
	// Scan calls fn for every key with the prefix, in ascending byte
	// order. fn may call Get; it must not keep key or value.
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
	// Write applies ops in order, atomically and durably.
	Write(ctx context.Context, ops []Op) error
	// Reclaim removes what remains of deleted values with keys in
	// [lo, hi) from the store's files, where the store can (the embedded
	// store compacts the range).
	Reclaim(ctx context.Context, lo, hi []byte) error

	Close() error
}

// ErrKeyringChanged is returned by Store.WriteKeyring when another writer
// replaced the keyring since the version given.
var ErrKeyringChanged = errors.New("vault: the keyring changed since it was read")

// OpKind says what one Op does.
type OpKind uint8

const (
	// OpSet stores Value under Key.
	OpSet OpKind = iota + 1
	// OpDelete removes Key.
	OpDelete
	// OpDeleteRange removes every key k with Key <= k < End.
	OpDeleteRange
	// OpInsert stores Value under Key if Key is absent; if it is present
	// the whole Write fails with ErrExists and changes nothing. Two
	// processes inserting one key at once: one of them gets ErrExists.
	// (The embedded store, owned by one process, checks it without a
	// lock: the vault serialises its own inserts of one key.)
	OpInsert
)

// ErrExists is returned by Store.Write when an OpInsert's key is present.
var ErrExists = errors.New("vault: key already stored")

// Op is one operation of a Store.Write.
type Op struct {
	Kind       OpKind
	Key, Value []byte
	End        []byte // OpDeleteRange
}

// pebbleStore is the embedded Store: the values in a pebble database in
// Dir/db, the keyring in Dir/keyring.json, replaced atomically. One
// process owns the directory, so the keyring version is counted in memory.
type pebbleStore struct {
	dir  string
	db   *pebble.DB
	life pebblekit.Life

	mu  sync.Mutex
	ver uint64
}

// OpenPebbleStore opens, or creates, the embedded vault store in dir.
func OpenPebbleStore(dir string, log *slog.Logger) (Store, error) {
	if log == nil {
		log = slog.Default()
	}
	s := &pebbleStore{dir: dir}
	if _, ok, err := readKeyringFile(dir); err != nil {
		return nil, err
	} else if ok {
		s.ver = 1
	}
	cache := pebble.NewCache(vaultCacheSize)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{Logger: pebblekit.Logger{Log: log, Store: "vault"}, Cache: cache}
	for i := range opts.Levels {
		// Seal looks up every new event's marker: absent, almost always.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(filepath.Join(dir, "db"), opts)
	if err != nil {
		return nil, fmt.Errorf("couldn't open vault store: %w", err)
	}
	s.db = db
	return s, nil
}

func (s *pebbleStore) ReadKeyring(ctx context.Context) ([]byte, uint64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok, err := readKeyringFile(s.dir)
	if err != nil || !ok {
		return nil, 0, false, err
	}
	return b, s.ver, true, nil
}

func (s *pebbleStore) KeyringVersion(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ver, nil
}

func (s *pebbleStore) WriteKeyring(ctx context.Context, doc []byte, prev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev != s.ver {
		return 0, ErrKeyringChanged
	}
	if err := writeKeyringFile(s.dir, doc); err != nil {
		return 0, err
	}
	s.ver++
	return s.ver, nil
}

func (s *pebbleStore) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("couldn't read vault: %w", err)
	}
	out := append([]byte{}, v...)
	closer.Close()
	return out, true, nil
}

func (s *pebbleStore) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

func (s *pebbleStore) Write(ctx context.Context, ops []Op) error {
	var b *pebble.Batch
	if slices.ContainsFunc(ops, func(op Op) bool { return op.Kind == OpInsert }) {
		b = s.db.NewIndexedBatch() // inserts read what the batch wrote
	} else {
		b = s.db.NewBatch()
	}
	defer b.Close()
	for _, op := range ops {
		var err error
		switch op.Kind {
		case OpInsert:
			// Against the store and what this batch wrote before it.
			if _, closer, gerr := b.Get(op.Key); gerr == nil {
				closer.Close()
				return ErrExists
			} else if !errors.Is(gerr, pebble.ErrNotFound) {
				return fmt.Errorf("vault: %w", gerr)
			}
			err = b.Set(op.Key, op.Value, nil)
		case OpSet:
			err = b.Set(op.Key, op.Value, nil)
		case OpDelete:
			err = b.Delete(op.Key, nil)
		case OpDeleteRange:
			err = b.DeleteRange(op.Key, op.End, nil)
		default:
			err = fmt.Errorf("unknown operation %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("vault: %w", err)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("vault: %w", err)
	}
	return nil
}

func (s *pebbleStore) Reclaim(ctx context.Context, lo, hi []byte) error {
	if err := s.db.Compact(ctx, lo, hi, false); err != nil {
		return fmt.Errorf("couldn't compact erased values: %w", err)
	}
	return nil
}

func (s *pebbleStore) Close() error {
	s.life.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("couldn't close vault store: %w", err)
	}
	return nil
}

// StoreMemory reports the bytes the embedded store (OpenPebbleStore)
// holds outside the Go heap, in its block cache and memtables; ok is false
// for other stores and once closed.
func (v *Vault) StoreMemory() (cache, memtables int64, ok bool) {
	if s, isPebble := v.st.(*pebbleStore); isPebble {
		return s.life.Memory(s.db)
	}
	return 0, 0, false
}

// encodeKeyring is the keyring document: indented JSON.
func encodeKeyring(kr *keyring) ([]byte, error) {
	b, err := json.MarshalIndent(kr, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("couldn't encode vault keyring: %w", err)
	}
	return b, nil
}

func decodeKeyring(b []byte) (*keyring, error) {
	var kr keyring
	if err := json.Unmarshal(b, &kr); err != nil {
		return nil, fmt.Errorf("vault keyring is corrupt: %w", err)
	}
	if kr.Version != 1 {
		return nil, fmt.Errorf("vault keyring version %d, want 1", kr.Version)
	}
	return &kr, nil
}
