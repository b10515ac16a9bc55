package client

import (
	"errors"
	"fmt"
	"strings"

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
// the given event. For an event submitted with sensitive values in clear,
// use VerifySubmittedReceipt.
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

// VerifySubmittedReceipt is VerifyReceiptFor for the submitter of an event
// with sensitive values, which the leaf holds sealed: ev is the event as
// submitted (sensitive values in clear), openings are the Append response's
// (AppendResponse.openings, AppendResult.openings), one per sensitive value
// of the leaf.
//
// It checks that each sensitive value of the leaf is, in order, one of ev's
// (same name and classification) or a field of ev's environment or
// extensions that the tenant's policy moved out ("environment.KEY",
// "extensions.KEY"); that the opening's salt and that value recompute the
// leaf's commitment (event.Commitment); and that the rest of the leaf's
// event is exactly ev. For an event without sensitive values it is
// VerifyReceiptFor.
func VerifySubmittedReceipt(r *pb.Receipt, logKey note.Verifier, ev *pb.ProvenanceEvent, openings []*pb.SensitiveOpening) (*VerifiedReceipt, error) {
	v, err := VerifyReceipt(r, logKey)
	if err != nil {
		return nil, err
	}
	if err := v.HoldsSubmitted(ev, openings); err != nil {
		return nil, err
	}
	return v, nil
}

// HoldsSubmitted checks that the verified leaf holds ev as submitted,
// sealed with openings: the check of VerifySubmittedReceipt, for a receipt
// verified otherwise (VerifyReceiptWithPolicy).
func (v *VerifiedReceipt) HoldsSubmitted(ev *pb.ProvenanceEvent, openings []*pb.SensitiveOpening) error {
	leaf := v.Entry.GetEvent()
	sealed := leaf.GetSensitive()
	if len(openings) != len(sealed) {
		return fmt.Errorf("%w: %d openings for the leaf's %d sensitive values", ErrVerification, len(openings), len(sealed))
	}
	want := proto.Clone(ev).(*pb.ProvenanceEvent)
	submitted := want.GetSensitive()
	if len(submitted) > len(sealed) {
		return fmt.Errorf("%w: the leaf has %d sensitive values, the event %d", ErrVerification, len(sealed), len(submitted))
	}
	for i, s := range sealed {
		o := openings[i]
		if o.GetName() != s.GetName() {
			return fmt.Errorf("%w: opening %d is for %q, the leaf's sensitive value %d is %q", ErrVerification, i, o.GetName(), i, s.GetName())
		}
		var value string
		if i < len(submitted) {
			if submitted[i].GetName() != s.GetName() || submitted[i].GetClassification() != s.GetClassification() {
				return fmt.Errorf("%w: sensitive value %d is %q (%s) in the leaf, %q (%s) in the event", ErrVerification,
					i, s.GetName(), s.GetClassification(), submitted[i].GetName(), submitted[i].GetClassification())
			}
			value = submitted[i].GetValue()
		} else {
			// A field the tenant's policy moved out of the event.
			m, k, _ := strings.Cut(s.GetName(), ".")
			var fields map[string]string
			switch m {
			case "environment":
				fields = want.GetEnvironment()
			case "extensions":
				fields = want.GetExtensions()
			}
			v, ok := fields[k]
			if !ok {
				return fmt.Errorf("%w: the leaf's sensitive value %q is not in the event", ErrVerification, s.GetName())
			}
			value = v
			delete(fields, k)
		}
		if !event.VerifyCommitment(s.GetCommitment(), o.GetSalt(), []byte(value)) {
			return fmt.Errorf("%w: sensitive value %q: the submitted value and the opening do not recompute the leaf's commitment", ErrVerification, s.GetName())
		}
	}
	if len(want.GetEnvironment()) == 0 {
		want.Environment = nil
	}
	if len(want.GetExtensions()) == 0 {
		want.Extensions = nil
	}
	want.Sensitive = sealed
	if !proto.Equal(leaf, want) {
		return fmt.Errorf("%w: the leaf does not hold this event", ErrVerification)
	}
	return nil
}
