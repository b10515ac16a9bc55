package ledger

import (
	"context"
	"fmt"
	"slices"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/tessera/client"
)

// MaxProvenLeaves bounds how many leaves one ProveLeaves call proves.
const MaxProvenLeaves = 10000

// ProveLeaves returns the given leaves with inclusion proofs to the latest
// published checkpoint; proof hashes shared between leaves are sent once.
// Indexes beyond the checkpoint are an error: an answer citing a leaf must
// be provable.
func (l *Ledger) ProveLeaves(ctx context.Context, indexes []uint64) (*pb.LeafProofs, error) {
	if len(indexes) > MaxProvenLeaves {
		return nil, fmt.Errorf("proving %d leaves: more than %d", len(indexes), MaxProvenLeaves)
	}
	raw, cp, err := l.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	idx := slices.Clone(indexes)
	slices.Sort(idx)
	idx = slices.Compact(idx)
	out := &pb.LeafProofs{Checkpoint: raw, TreeSize: cp.Size}
	if len(idx) == 0 {
		return out, nil
	}
	if last := idx[len(idx)-1]; last >= cp.Size {
		return nil, fmt.Errorf("%w: leaf %d is not covered by the published checkpoint of size %d", ErrNotFound, last, cp.Size)
	}
	proofs, err := l.InclusionProofs(ctx, cp.Size, idx)
	if err != nil {
		return nil, err
	}
	nodeRef := map[string]uint32{}
	var bundleIdx uint64 = ^uint64(0)
	var bundle [][]byte
	for k, i := range idx {
		if i/256 != bundleIdx {
			b, err := client.GetEntryBundle(ctx, l.reader.ReadEntryBundle, i/256, cp.Size)
			if err != nil {
				return nil, fmt.Errorf("reading entry bundle %d: %w", i/256, err)
			}
			bundleIdx, bundle = i/256, b.Entries
		}
		if i%256 >= uint64(len(bundle)) {
			return nil, fmt.Errorf("entry bundle %d holds %d entries, want index %d", bundleIdx, len(bundle), i)
		}
		refs := make([]uint32, len(proofs[k]))
		for j, h := range proofs[k] {
			r, ok := nodeRef[string(h)]
			if !ok {
				r = uint32(len(out.Nodes))
				nodeRef[string(h)] = r
				out.Nodes = append(out.Nodes, h)
			}
			refs[j] = r
		}
		out.Leaves = append(out.Leaves, &pb.ProvenLeaf{Index: i, Leaf: bundle[i%256], Proof: refs})
	}
	return out, nil
}
