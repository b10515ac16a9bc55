package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// record is what the log holds for one (tenant, event id): where its leaf
// is, the leaf hash, and the digest of the event's canonical encoding, which
// decides whether a resubmission is the same event.
type record struct {
	Key      string // dedupeKey(tenant, eventID)
	Index    uint64
	LeafHash [32]byte
	Digest   [32]byte
}

func dedupeKey(tenant, eventID string) string { return tenant + "\x00" + eventID }

// indexStore persists the records the follower derives from the log, and the
// watermark: the tree size up to which every leaf has been recorded.
// It is a pure function of the log, so losing it costs a rescan, nothing else.
// Implementations must be safe for concurrent use.
type indexStore interface {
	// Lookup returns the record for key, if any.
	Lookup(key string) (record, bool, error)
	// LookupLeaf returns the index of the leaf with this RFC 6962 hash, if any.
	LookupLeaf(hash [32]byte) (uint64, bool, error)
	// Watermark returns the tree size up to which all leaves are recorded.
	Watermark() (uint64, error)
	// Commit durably stores recs and the new watermark in one atomic step.
	// A key already present keeps its first (lowest) index.
	Commit(recs []record, watermark uint64) error
	Close() error
}

var (
	bucketEvents = []byte("events")
	bucketLeaves = []byte("leaves")
	bucketMeta   = []byte("meta")
	keyWatermark = []byte("watermark")
)

// boltStore is the embedded indexStore, one bbolt file with fsync on commit.
type boltStore struct{ db *bolt.DB }

func openBoltStore(path string) (*boltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("couldn't open index store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketLeaves, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't initialise index store %s: %w", path, err)
	}
	return &boltStore{db: db}, nil
}

func (s *boltStore) Lookup(key string) (record, bool, error) {
	var r record
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketEvents).Get([]byte(key))
		if v == nil {
			return nil
		}
		if len(v) != 8+32+32 {
			return fmt.Errorf("corrupt index record for %q: %d bytes", key, len(v))
		}
		r.Key = key
		r.Index = binary.BigEndian.Uint64(v)
		copy(r.LeafHash[:], v[8:40])
		copy(r.Digest[:], v[40:72])
		found = true
		return nil
	})
	if err != nil {
		return record{}, false, fmt.Errorf("index lookup: %w", err)
	}
	return r, found, nil
}

func (s *boltStore) LookupLeaf(hash [32]byte) (uint64, bool, error) {
	var idx uint64
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLeaves).Get(hash[:])
		if v == nil {
			return nil
		}
		if len(v) != 8 {
			return errors.New("corrupt leaf record")
		}
		idx, found = binary.BigEndian.Uint64(v), true
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("leaf lookup: %w", err)
	}
	return idx, found, nil
}

func (s *boltStore) Watermark() (uint64, error) {
	var wm uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyWatermark); len(v) == 8 {
			wm = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reading watermark: %w", err)
	}
	return wm, nil
}

func (s *boltStore) Commit(recs []record, watermark uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ev, lv := tx.Bucket(bucketEvents), tx.Bucket(bucketLeaves)
		// bbolt keeps references to keys and values until the transaction
		// ends: every Put needs its own buffer.
		for _, r := range recs {
			val := make([]byte, 72)
			ib := make([]byte, 8)
			if old := ev.Get([]byte(r.Key)); old != nil && binary.BigEndian.Uint64(old) <= r.Index {
				continue
			}
			binary.BigEndian.PutUint64(val[:8], r.Index)
			copy(val[8:40], r.LeafHash[:])
			copy(val[40:], r.Digest[:])
			if err := ev.Put([]byte(r.Key), val); err != nil {
				return err
			}
			binary.BigEndian.PutUint64(ib[:], r.Index)
			if err := lv.Put(append([]byte(nil), r.LeafHash[:]...), ib); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyWatermark, binary.BigEndian.AppendUint64(nil, watermark))
	})
	if err != nil {
		return fmt.Errorf("committing %d index records at watermark %d: %w", len(recs), watermark, err)
	}
	return nil
}

func (s *boltStore) Close() error { return s.db.Close() }
