package witness

import (
	"context"
	"errors"
	"time"
)

// Store errors.
var (
	// ErrNotFound: the witness never cosigned a checkpoint for the origin.
	ErrNotFound = errors.New("no cosigned checkpoint for this origin")
	// ErrStale: Replace was called with a prev that is no longer the
	// stored checkpoint.
	ErrStale = errors.New("stored checkpoint changed concurrently")
)

// Store keeps what a witness must never forget: per log, the latest
// checkpoint it cosigned, and the evidence of any fork it refused.
//
// Implementations must be safe for concurrent use. A write must be on
// stable storage when it returns nil: the witness hands out a cosignature
// only after Replace returned, so a crash after that must not roll the log's
// state back.
type Store interface {
	// Latest returns the latest cosigned checkpoint for origin, or an error
	// wrapping ErrNotFound if there is none.
	Latest(ctx context.Context, origin string) (Cosigned, error)
	// Replace records next as the latest cosigned checkpoint for
	// next.Origin, atomically checking that the stored one still has prev's
	// size and root hash (prev == nil: nothing is stored). If it does not,
	// Replace changes nothing and returns an error wrapping ErrStale.
	Replace(ctx context.Context, prev *Cosigned, next Cosigned) error
	// AddEvidence appends fork evidence.
	AddEvidence(ctx context.Context, e Evidence) error
	// Evidence returns the evidence recorded for origin, oldest first.
	Evidence(ctx context.Context, origin string) ([]Evidence, error)
}

// Cosigned is a checkpoint the witness cosigned.
type Cosigned struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Hash   []byte `json:"hash"`
	// Note is the checkpoint as served to monitors: the checkpoint text,
	// the log signatures the witness verified, and its cosignature.
	Note []byte `json:"note"`
}

// Fork evidence kinds.
const (
	// KindRootMismatch: two checkpoints signed by the log with the same
	// size and different root hashes. This is proof of a fork on its own.
	KindRootMismatch = "root-mismatch"
	// KindBadProof: the log signed a checkpoint larger than the cosigned
	// one, but the consistency proof it sent does not verify. Either the
	// log forked or its proof is wrong; both need a human.
	KindBadProof = "bad-consistency-proof"
)

// Evidence is a checkpoint validly signed by the log that contradicts the
// checkpoint the witness had cosigned.
type Evidence struct {
	Origin string    `json:"origin"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	// Cosigned is the note the witness held (and had cosigned).
	Cosigned []byte `json:"cosigned"`
	// Submitted is the refused checkpoint note exactly as received.
	Submitted []byte   `json:"submitted"`
	OldSize   uint64   `json:"old_size"`
	Proof     [][]byte `json:"proof,omitempty"`
	// Detail says what failed to verify.
	Detail string `json:"detail"`
}
