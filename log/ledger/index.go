package ledger

// record is what the log holds for one (tenant, event id): where its leaf
// is, the leaf hash, and the digest of the event's canonical encoding, which
// decides whether a resubmission is the same event.
type record struct {
	Key      string // dedupeKey(tenant, eventID)
	Index    uint64
	LeafHash [32]byte
	Digest   [32]byte
	// New: this process found no record of Key in the store before it
	// appended the leaf (a leaf the follower takes from recentIdx), so
	// Commit need not read the store to keep the lowest index.
	New bool
}

func dedupeKey(tenant, eventID string) string { return tenant + "\x00" + eventID }

// indexStore persists the records the follower derives from the log, and the
// watermark: the tree size up to which every leaf has been recorded.
// It is a pure function of the log, so losing it costs a rescan, nothing else.
// Implementations must be safe for concurrent use.
type indexStore interface {
	// Lookup returns the record for key, if any.
	Lookup(key string) (record, bool, error)
	// LookupMany looks keys up at once: found[i] is keys[i]'s record, or
	// nil.
	LookupMany(keys []string) (found []*record, err error)
	// LookupLeaf returns the index of the leaf with this RFC 6962 hash, if any.
	LookupLeaf(hash [32]byte) (uint64, bool, error)
	// Watermark returns the tree size up to which all leaves are recorded.
	Watermark() (uint64, error)
	// Commit stores recs and the new watermark: never the watermark
	// without all of recs (pebble: one atomic batch; MySQL: the records,
	// then the watermark, as the records are idempotent upserts). It need
	// not be durable at once: losing the latest commits with their
	// watermark only makes the follower re-derive them from the log.
	// A key already present keeps its first (lowest) index.
	Commit(recs []record, watermark uint64) error
	Close() error
}
