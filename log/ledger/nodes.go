package ledger

import (
	"context"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
)

// Inclusion proofs are built from the log's tiles, as tessera's
// client.ProofBuilder builds them, with two differences that matter when
// many callers want receipts for the same checkpoint at once (every batch
// appended with WAIT_FOR_PUBLISHED wakes up when a checkpoint is published
// and proves its events to it):
//   - ProofBuilder hashes a node inside a tile from the tile's leaves every
//     time a proof needs it (up to 255 hashes a node, about 1,500 a proof);
//     a treeNodes hashes each tile's inner nodes once;
//   - ProofBuilder is for one request and not safe for concurrent use; a
//     treeNodes is shared by every caller proving to the same tree size.
// The proof's node list and the final rehash are transparency-dev/merkle's.

// treeNodes answers node hashes of the tree of one size.
type treeNodes struct {
	size uint64
	read func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)

	mu    sync.Mutex
	tiles map[[2]uint64]*tileNodes
}

// tileNodes is one tile with its inner nodes: levels[0] is the tile's
// nodes, levels[k][i] the root of the complete subtree of 2^k of them
// starting at i<<k. Reading and hashing happen once, whoever asks first.
type tileNodes struct {
	once   sync.Once
	levels [][][]byte
	err    error
}

// maxCachedTiles bounds a treeNodes: one full tile with its inner nodes is
// 511 hashes, 16 KiB. Proofs to one size near the log's end touch a few
// tiles per level; past the bound, tiles are still read, just not kept.
const maxCachedTiles = 512

func newTreeNodes(size uint64, read func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)) *treeNodes {
	return &treeNodes{size: size, read: read, tiles: make(map[[2]uint64]*tileNodes)}
}

// node returns the hash of node id.
func (t *treeNodes) node(ctx context.Context, id compact.NodeID) ([]byte, error) {
	tileLevel, tileIndex, nodeLevel, nodeIndex := layout.NodeCoordsToTileAddress(uint64(id.Level), id.Index)
	k := [2]uint64{tileLevel, tileIndex}
	t.mu.Lock()
	tn, ok := t.tiles[k]
	if !ok {
		tn = &tileNodes{}
		if len(t.tiles) < maxCachedTiles {
			t.tiles[k] = tn
		}
	}
	t.mu.Unlock()
	// The tile is shared: read it whatever becomes of this caller's
	// context, and let a failed read be tried again by the next caller.
	tn.once.Do(func() { tn.levels, tn.err = t.load(context.WithoutCancel(ctx), tileLevel, tileIndex) })
	if tn.err != nil {
		t.mu.Lock()
		if t.tiles[k] == tn {
			delete(t.tiles, k)
		}
		t.mu.Unlock()
		return nil, tn.err
	}
	if nodeLevel >= uint(len(tn.levels)) || nodeIndex >= uint64(len(tn.levels[nodeLevel])) {
		return nil, fmt.Errorf("tile %d/%d of tree size %d has no node %d at level %d", tileLevel, tileIndex, t.size, nodeIndex, nodeLevel)
	}
	return tn.levels[nodeLevel][nodeIndex], nil
}

// load reads a tile and hashes its complete inner subtrees.
func (t *treeNodes) load(ctx context.Context, tileLevel, tileIndex uint64) ([][][]byte, error) {
	raw, err := t.read(ctx, tileLevel, tileIndex, layout.PartialTileSize(tileLevel, tileIndex, t.size))
	if err != nil {
		return nil, fmt.Errorf("reading tile %d/%d: %w", tileLevel, tileIndex, err)
	}
	var tile api.HashTile
	if err := tile.UnmarshalText(raw); err != nil {
		return nil, fmt.Errorf("parsing tile %d/%d: %w", tileLevel, tileIndex, err)
	}
	levels := [][][]byte{tile.Nodes}
	for below := tile.Nodes; len(below) >= 2; below = levels[len(levels)-1] {
		up := make([][]byte, len(below)/2)
		for i := range up {
			up[i] = rfc6962.DefaultHasher.HashChildren(below[2*i], below[2*i+1])
		}
		levels = append(levels, up)
	}
	return levels, nil
}

// inclusion returns the inclusion proof of leaf index in the tree.
func (t *treeNodes) inclusion(ctx context.Context, index uint64) ([][]byte, error) {
	nodes, err := proof.Inclusion(index, t.size)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof for %d at size %d: %w", index, t.size, err)
	}
	p, err := t.fetch(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("inclusion proof for %d at size %d: %w", index, t.size, err)
	}
	return p, nil
}

// consistency returns the proof that the tree of size from is a prefix of
// this tree.
func (t *treeNodes) consistency(ctx context.Context, from uint64) ([][]byte, error) {
	nodes, err := proof.Consistency(from, t.size)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d -> %d: %w", from, t.size, err)
	}
	p, err := t.fetch(ctx, nodes)
	if err != nil {
		return nil, fmt.Errorf("consistency proof %d -> %d: %w", from, t.size, err)
	}
	return p, nil
}

// fetch returns the hashes of a proof's nodes, rehashed into the proof.
func (t *treeNodes) fetch(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		var err error
		if hashes[i], err = t.node(ctx, id); err != nil {
			return nil, err
		}
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// proofTrees keeps the treeNodes of the few tree sizes being proven to:
// the latest checkpoint's, and the one before while its last receipts go
// out.
type proofTrees struct {
	mu    sync.Mutex
	trees []*treeNodes // most recently used last
}

// keptTrees is how many tree sizes proofTrees keeps.
const keptTrees = 2

func (p *proofTrees) get(size uint64, read func(ctx context.Context, level, index uint64, p uint8) ([]byte, error)) *treeNodes {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, t := range p.trees {
		if t.size == size {
			p.trees = append(append(p.trees[:i:i], p.trees[i+1:]...), t)
			return t
		}
	}
	t := newTreeNodes(size, read)
	if len(p.trees) == keptTrees {
		p.trees = p.trees[1:]
	}
	p.trees = append(p.trees, t)
	return t
}
