package client

import (
	"errors"
	"fmt"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
)

// ErrVerification is wrapped by every error that means "this does not
// verify", as opposed to bad input or I/O.
var ErrVerification = errors.New("verification failed")

// VerifiedReceipt is what a receipt proves once verified.
type VerifiedReceipt struct {
	// Checkpoint is the signed checkpoint the leaf is proven into.
	Checkpoint log.Checkpoint
	Index      uint64
	LeafHash   [32]byte
	// Entry is the decoded leaf: the event and what the log asserted.
	Entry *pb.LeafEntry
}

// VerifyReceipt checks a receipt offline: the checkpoint is signed by the
// log's key, the leaf is canonical and decodes, and the inclusion proof
// places the leaf at the receipt's index under the checkpoint's root.
func VerifyReceipt(r *pb.Receipt, logKey note.Verifier) (*VerifiedReceipt, error) {
	if r == nil {
		return nil, errors.New("no receipt")
	}
	cp, _, _, err := log.ParseCheckpoint(r.GetCheckpoint(), logKey.Name(), logKey)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrVerification, err)
	}
	if r.GetIndex() >= cp.Size {
		return nil, fmt.Errorf("%w: index %d is outside the checkpoint's tree of size %d", ErrVerification, r.GetIndex(), cp.Size)
	}
	entry, err := event.DecodeLeaf(r.GetLeaf())
	if err != nil {
		return nil, fmt.Errorf("%w: leaf: %w", ErrVerification, err)
	}
	h := event.LeafHash(r.GetLeaf())
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, r.GetIndex(), cp.Size, h[:], r.GetInclusionProof(), cp.Hash); err != nil {
		return nil, fmt.Errorf("%w: inclusion proof: %w", ErrVerification, err)
	}
	return &VerifiedReceipt{Checkpoint: *cp, Index: r.GetIndex(), LeafHash: h, Entry: entry}, nil
}

// VerifyReceiptFor is VerifyReceipt plus a check that the leaf holds exactly
// the given event.
func VerifyReceiptFor(r *pb.Receipt, logKey note.Verifier, ev *pb.ProvenanceEvent) (*VerifiedReceipt, error) {
	v, err := VerifyReceipt(r, logKey)
	if err != nil {
		return nil, err
	}
	if !proto.Equal(v.Entry.GetEvent(), ev) {
		return nil, fmt.Errorf("%w: the leaf does not hold this event", ErrVerification)
	}
	return v, nil
}
