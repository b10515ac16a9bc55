package client

import (
	"fmt"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// VerifySensitive checks what a log revealed of a leaf's sensitive values
// (GetEntryResponse.sensitive, LineageNode.sensitive) against the leaf
// itself, which the caller has verified (VerifyReceipt, VerifyLeafProofs):
// there is one reveal per sensitive value of the event, with its name,
// classification, key id and commitment, and every revealed value opens
// the leaf's commitment with the salt given. It returns the revealed
// values by name; redacted and erased values are left out, and are not
// errors. Errors wrap ErrVerification.
func VerifySensitive(entry *pb.LeafEntry, reveals []*pb.SensitiveReveal) (map[string]string, error) {
	inLeaf := make(map[string]*pb.SensitiveValue)
	for _, s := range entry.GetEvent().GetSensitive() {
		inLeaf[s.GetName()] = s
	}
	if len(reveals) != len(inLeaf) {
		return nil, fmt.Errorf("%w: %d sensitive values revealed, the leaf has %d", ErrVerification, len(reveals), len(inLeaf))
	}
	out := make(map[string]string)
	seen := make(map[string]bool)
	for _, r := range reveals {
		s, ok := inLeaf[r.GetName()]
		switch {
		case !ok || seen[r.GetName()]:
			return nil, fmt.Errorf("%w: sensitive value %q is not in the leaf, or revealed twice", ErrVerification, r.GetName())
		case r.GetClassification() != s.GetClassification() || r.GetKeyId() != s.GetKeyId() || string(r.GetCommitment()) != string(s.GetCommitment()):
			return nil, fmt.Errorf("%w: sensitive value %q: classification, key id or commitment differ from the leaf's", ErrVerification, r.GetName())
		}
		seen[r.GetName()] = true
		if r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED {
			continue
		}
		if !event.VerifyCommitment(s.GetCommitment(), r.GetSalt(), []byte(r.GetValue())) {
			return nil, fmt.Errorf("%w: sensitive value %q does not open the leaf's commitment", ErrVerification, r.GetName())
		}
		out[r.GetName()] = r.GetValue()
	}
	return out, nil
}
