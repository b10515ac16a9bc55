package witness

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketMeta     = []byte("meta")
	bucketLatest   = []byte("latest")
	bucketEvidence = []byte("evidence")
	keyVersion     = []byte("version")
)

const boltSchemaVersion = "1"

// BoltStore is a Store in one bbolt file. Every write is a bbolt
// transaction committed with fsync before it returns.
type BoltStore struct {
	db *bolt.DB
}

var _ Store = (*BoltStore)(nil)

// OpenBoltStore opens or creates the store at path. The file is locked: a
// second process opening it fails after a second.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("couldn't open witness store %s (is another witness using it?): %w", path, err)
	}
	// The default, set explicitly: the witness's promise rests on fsync.
	db.NoSync = false
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyVersion); {
		case v == nil:
			if err := meta.Put(keyVersion, []byte(boltSchemaVersion)); err != nil {
				return err
			}
		case string(v) != boltSchemaVersion:
			return fmt.Errorf("unsupported schema version %q, want %q", v, boltSchemaVersion)
		}
		for _, b := range [][]byte{bucketLatest, bucketEvidence} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't initialise witness store %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Close closes the store.
func (s *BoltStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("couldn't close witness store: %w", err)
	}
	return nil
}

// Latest implements Store.
func (s *BoltStore) Latest(_ context.Context, origin string) (Cosigned, error) {
	var c Cosigned
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLatest).Get([]byte(origin))
		if v == nil {
			return fmt.Errorf("%w: %q", ErrNotFound, origin)
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("couldn't decode cosigned checkpoint for %q: %w", origin, err)
		}
		return nil
	})
	return c, err
}

// Replace implements Store.
func (s *BoltStore) Replace(_ context.Context, prev *Cosigned, next Cosigned) error {
	val, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("couldn't encode cosigned checkpoint: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLatest)
		key := []byte(next.Origin)
		cur := b.Get(key)
		switch {
		case cur == nil && prev == nil:
		case cur == nil || prev == nil:
			return fmt.Errorf("%w: %q", ErrStale, next.Origin)
		default:
			var c Cosigned
			if err := json.Unmarshal(cur, &c); err != nil {
				return fmt.Errorf("couldn't decode cosigned checkpoint for %q: %w", next.Origin, err)
			}
			if c.Size != prev.Size || !bytes.Equal(c.Hash, prev.Hash) {
				return fmt.Errorf("%w: %q is at size %d, not %d", ErrStale, next.Origin, c.Size, prev.Size)
			}
		}
		if err := b.Put(key, val); err != nil {
			return fmt.Errorf("couldn't store cosigned checkpoint for %q: %w", next.Origin, err)
		}
		return nil
	})
}

// AddEvidence implements Store.
func (s *BoltStore) AddEvidence(_ context.Context, e Evidence) error {
	val, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("couldn't encode fork evidence: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketEvidence).CreateBucketIfNotExists([]byte(e.Origin))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, seq), val)
	})
	if err != nil {
		return fmt.Errorf("couldn't store fork evidence for %q: %w", e.Origin, err)
	}
	return nil
}

// Evidence implements Store.
func (s *BoltStore) Evidence(_ context.Context, origin string) ([]Evidence, error) {
	var out []Evidence
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvidence).Bucket([]byte(origin))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var e Evidence
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("couldn't decode fork evidence for %q: %w", origin, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}
