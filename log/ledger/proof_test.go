package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/provlog/provlog/log/event"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
)

// refTree computes RFC 6962 tree hashes with x/mod's tlog, independently
// of the code under test.
type refTree struct {
	n      int64 // leaves
	stored []tlog.Hash
}

func (r *refTree) add(t *testing.T, leaf []byte) {
	t.Helper()
	hs, err := tlog.StoredHashes(r.n, leaf, r)
	if err != nil {
		t.Fatal(err)
	}
	r.stored = append(r.stored, hs...)
	r.n++
}

func (r *refTree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(r.stored)) {
			return nil, fmt.Errorf("stored hash %d not computed", x)
		}
		out[i] = r.stored[x]
	}
	return out, nil
}

func (r *refTree) root(t *testing.T, size uint64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(int64(size), r)
	if err != nil {
		t.Fatalf("TreeHash(%d): %v", size, err)
	}
	return h
}

func toHashes(t *testing.T, proof [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(proof))
	for i, p := range proof {
		if len(p) != tlog.HashSize {
			t.Fatalf("proof element %d is %d bytes", i, len(p))
		}
		copy(out[i][:], p)
	}
	return out
}

func TestProofs(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	const total = 1000
	evs := eventsFor("acme", ids("p", total))
	ref := &refTree{}
	var leaves [][]byte
	for i := 0; i < total; i += 250 {
		for j, r := range appendAll(t, l, evs[i:i+250]...) {
			if r.Index != uint64(i+j) {
				t.Fatalf("event %d got index %d", i+j, r.Index)
			}
			if h := tlog.RecordHash(r.Leaf); h != tlog.Hash(r.LeafHash) {
				t.Fatalf("Result.LeafHash %x, want tlog.RecordHash %x", r.LeafHash, h)
			}
			leaves = append(leaves, r.Leaf)
			ref.add(t, r.Leaf)
		}
	}
	awaitSize(t, l, total)

	// The latest checkpoint verifies with x/mod's note and commits to the
	// reference root.
	raw, cp, err := l.Checkpoint(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(raw, note.VerifierList(l.cfg.Verifier)); err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, raw)
	}
	if cp.Size != total || tlog.Hash(cp.Hash) != ref.root(t, total) {
		t.Fatalf("checkpoint size %d root %x, want %d %x", cp.Size, cp.Hash, total, ref.root(t, total))
	}

	sizes := []uint64{1, 2, 255, 256, 257, 1000}
	for _, size := range sizes {
		root := ref.root(t, size)
		for _, index := range []uint64{0, size / 2, size - 1, 255, 256} {
			if index >= size {
				continue
			}
			t.Run(fmt.Sprintf("inclusion %d in %d", index, size), func(t *testing.T) {
				proof, gotSize, cpRaw, err := l.InclusionProof(t.Context(), index, size)
				if err != nil {
					t.Fatal(err)
				}
				if gotSize != size || cpRaw != nil {
					t.Errorf("size %d checkpoint %q, want %d and none (explicit size)", gotSize, cpRaw, size)
				}
				leafHash := tlog.RecordHash(leaves[index])
				if err := tlog.CheckRecord(toHashes(t, proof), int64(size), root, int64(index), leafHash); err != nil {
					t.Errorf("CheckRecord: %v", err)
				}
				// The same proof must not verify another leaf.
				other := tlog.RecordHash(leaves[(index+1)%total])
				if size > 1 && tlog.CheckRecord(toHashes(t, proof), int64(size), root, int64(index), other) == nil {
					t.Error("proof verifies the wrong leaf")
				}
			})
		}
		for _, from := range sizes {
			if from > size {
				continue
			}
			t.Run(fmt.Sprintf("consistency %d to %d", from, size), func(t *testing.T) {
				proof, gotSize, cpRaw, err := l.ConsistencyProof(t.Context(), from, size)
				if err != nil {
					t.Fatal(err)
				}
				if gotSize != size || cpRaw != nil {
					t.Errorf("size %d checkpoint %q, want %d and none (explicit size)", gotSize, cpRaw, size)
				}
				if err := tlog.CheckTree(toHashes(t, proof), int64(size), root, int64(from), ref.root(t, from)); err != nil {
					t.Errorf("CheckTree: %v", err)
				}
			})
		}
	}

	t.Run("latest", func(t *testing.T) {
		proof, size, cpRaw, err := l.InclusionProof(t.Context(), 700, 0)
		if err != nil {
			t.Fatal(err)
		}
		if size != total || string(cpRaw) != string(raw) {
			t.Errorf("size %d checkpoint %q, want %d and the latest checkpoint", size, cpRaw, total)
		}
		if err := tlog.CheckRecord(toHashes(t, proof), total, ref.root(t, total), 700, tlog.RecordHash(leaves[700])); err != nil {
			t.Errorf("CheckRecord: %v", err)
		}
		cproof, size, cpRaw, err := l.ConsistencyProof(t.Context(), 300, 0)
		if err != nil {
			t.Fatal(err)
		}
		if size != total || string(cpRaw) != string(raw) {
			t.Errorf("size %d checkpoint %q, want %d and the latest checkpoint", size, cpRaw, total)
		}
		if err := tlog.CheckTree(toHashes(t, cproof), total, ref.root(t, total), 300, ref.root(t, 300)); err != nil {
			t.Errorf("CheckTree: %v", err)
		}
	})

	t.Run("entries and leaf hashes", func(t *testing.T) {
		for _, index := range []uint64{0, 255, 256, 999} {
			leaf, err := l.Entry(t.Context(), index)
			if err != nil {
				t.Fatal(err)
			}
			if string(leaf) != string(leaves[index]) {
				t.Errorf("Entry(%d) differs from the appended leaf", index)
			}
			got, err := l.IndexOfLeaf(event.LeafHash(leaf))
			if err != nil || got != index {
				t.Errorf("IndexOfLeaf(Entry(%d)) = %d, %v", index, got, err)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			call func() error
			want error
		}{
			{name: "inclusion beyond the checkpoint", want: ErrTreeSize, call: func() error {
				_, _, _, err := l.InclusionProof(t.Context(), 0, total+1)
				return err
			}},
			{name: "inclusion of a leaf outside the tree", want: ErrNotFound, call: func() error {
				_, _, _, err := l.InclusionProof(t.Context(), 256, 256)
				return err
			}},
			{name: "consistency beyond the checkpoint", want: ErrTreeSize, call: func() error {
				_, _, _, err := l.ConsistencyProof(t.Context(), 1, total+1)
				return err
			}},
			{name: "consistency from > to", want: ErrTreeSize, call: func() error {
				_, _, _, err := l.ConsistencyProof(t.Context(), 257, 256)
				return err
			}},
			{name: "consistency from > latest", want: ErrTreeSize, call: func() error {
				_, _, _, err := l.ConsistencyProof(t.Context(), total+1, 0)
				return err
			}},
			{name: "entry beyond the checkpoint", want: ErrNotFound, call: func() error {
				_, err := l.Entry(t.Context(), total)
				return err
			}},
			{name: "unknown leaf hash", want: ErrNotFound, call: func() error {
				_, err := l.IndexOfLeaf([32]byte{1, 2, 3})
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.call(); !errors.Is(err, tc.want) {
					t.Errorf("err = %v, want %v", err, tc.want)
				}
			})
		}
	})
}

func TestCheckpointEmptyLog(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	// Before the first checkpoint there is nothing; after it, size 0.
	_, cp, err := l.Checkpoint(t.Context())
	switch {
	case errors.Is(err, ErrNoCheckpoint):
	case err != nil:
		t.Fatal(err)
	case cp.Size != 0:
		t.Errorf("empty log checkpoint size %d", cp.Size)
	}
	if _, err := l.Entry(t.Context(), 0); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrNoCheckpoint) {
		t.Errorf("Entry(0) on an empty log: %v, want ErrNotFound or ErrNoCheckpoint", err)
	}
}

// TestInclusionProofsShared: proofs built from the tree-node cache, by
// several callers at once for the same sizes, are tessera's client's proofs
// exactly and verify with x/mod's tlog against a reference tree.
func TestInclusionProofsShared(t *testing.T) {
	l := openLedger(t, t.TempDir(), nil)
	const total = 1000
	ref := &refTree{}
	var leafHashes []tlog.Hash
	for _, r := range appendAll(t, l, eventsFor("acme", ids("s", total))...) {
		ref.add(t, r.Leaf)
		leafHashes = append(leafHashes, tlog.RecordHash(r.Leaf))
	}
	awaitSize(t, l, total)
	all := make([]uint64, total)
	for i := range all {
		all[i] = uint64(i)
	}
	// Sizes the log passed through (batches of 256), so that their partial
	// tiles exist; 1000 ends in one.
	for _, size := range []uint64{total, 768, 512, 256} {
		builder, err := client.NewProofBuilder(t.Context(), size, l.reader.ReadTile)
		if err != nil {
			t.Fatal(err)
		}
		root := ref.root(t, size)
		// Four callers at once, sharing one tree of this size.
		got := make([][][][]byte, 4)
		var g errgroup.Group
		for k := range got {
			g.Go(func() (err error) {
				got[k], err = l.InclusionProofs(t.Context(), size, all[:size])
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		for k := range got {
			for i, p := range got[k] {
				want, err := builder.InclusionProof(t.Context(), uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.EqualFunc(p, want, bytes.Equal) {
					t.Fatalf("caller %d, size %d, leaf %d: proof differs from tessera client's", k, size, i)
				}
				if err := tlog.CheckRecord(toHashes(t, p), int64(size), root, int64(i), leafHashes[i]); err != nil {
					t.Fatalf("caller %d, size %d, leaf %d: %v", k, size, i, err)
				}
			}
		}
	}
	// Consistency proofs between those sizes (and from 0 and 1), against
	// tessera's client and x/mod's tlog.
	sizes := []uint64{0, 1, 2, 255, 256, 257, 511, 512, 700, 768, 999, total}
	for _, to := range []uint64{256, 512, 768, total} {
		builder, err := client.NewProofBuilder(t.Context(), to, l.reader.ReadTile)
		if err != nil {
			t.Fatal(err)
		}
		for _, from := range sizes {
			if from > to {
				continue
			}
			got, gotSize, _, err := l.ConsistencyProof(t.Context(), from, to)
			if err != nil {
				t.Fatalf("ConsistencyProof(%d, %d): %v", from, to, err)
			}
			want, err := builder.ConsistencyProof(t.Context(), from, to)
			if err != nil {
				t.Fatal(err)
			}
			if gotSize != to || !slices.EqualFunc(got, want, bytes.Equal) {
				t.Fatalf("ConsistencyProof(%d, %d) differs from tessera client's", from, to)
			}
			if from == 0 {
				continue // tlog has no proof from the empty tree
			}
			if err := tlog.CheckTree(toHashes(t, got), int64(to), ref.root(t, to), int64(from), ref.root(t, from)); err != nil {
				t.Errorf("ConsistencyProof(%d, %d): %v", from, to, err)
			}
		}
	}
	if _, err := l.InclusionProofs(t.Context(), 10, []uint64{10}); err == nil {
		t.Error("InclusionProofs of leaf 10 in a tree of 10: no error")
	}
}
