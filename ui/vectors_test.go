package ui_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

const vectorsFile = "testdata/vectors.json"

// vectors are what the browser verifier (src/verify.ts) is tested against
// by test/verify.test.ts: made with Go libraries (x/mod's note and tlog,
// tessera's formats), checked here with other Go code (transparency-dev
// merkle, the client package).
type vectors struct {
	Inclusion   []inclusionVector  `json:"inclusion"`
	Checkpoints []checkpointVector `json:"checkpoints"`
	Keys        []keyVector        `json:"keys"`
	LeafProofs  []leafProofsVector `json:"leafProofs"`
}

// leafProofsVector is a LeafProofs in the REST API's JSON mapping, and per
// leaf index whether its proof verifies.
type leafProofsVector struct {
	Name       string          `json:"name"`
	LogKey     string          `json:"logKey"`
	LeafProofs json.RawMessage `json:"leafProofs"`
	Valid      map[string]bool `json:"valid"`
}

type inclusionVector struct {
	Index    uint64   `json:"index"`
	Size     uint64   `json:"size"`
	LeafHash []byte   `json:"leafHash"`
	Proof    [][]byte `json:"proof"`
	Root     []byte   `json:"root"`
	Valid    bool     `json:"valid"`
}

type checkpointVector struct {
	Name          string `json:"name"`
	LogKey        string `json:"logKey"`
	WitnessPolicy string `json:"witnessPolicy"`
	Checkpoint    string `json:"checkpoint"`
	Valid         bool   `json:"valid"`
	Size          uint64 `json:"size,omitempty"`
	Root          []byte `json:"root,omitempty"`
}

type keyVector struct {
	Key   string `json:"key"`
	Valid bool   `json:"valid"`
}

func TestVerifierVectors(t *testing.T) {
	if *update {
		b, err := json.MarshalIndent(makeVectors(t), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorsFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -run Vectors -update)", err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Inclusion) < 50 || len(v.Checkpoints) < 8 || len(v.Keys) < 3 {
		t.Fatalf("too few vectors: %d inclusion, %d checkpoints, %d keys", len(v.Inclusion), len(v.Checkpoints), len(v.Keys))
	}
	// The vectors say what a correct verifier concludes: check that with
	// code other than what made them.
	for i, c := range v.Inclusion {
		err := proof.VerifyInclusion(rfc6962.DefaultHasher, c.Index, c.Size, c.LeafHash, c.Proof, c.Root)
		if (err == nil) != c.Valid {
			t.Errorf("inclusion vector %d (index %d, size %d): valid=%v, merkle says %v", i, c.Index, c.Size, c.Valid, err)
		}
	}
	for _, c := range v.Checkpoints {
		p, err := client.ParsePolicy(c.LogKey, []byte(c.WitnessPolicy))
		if err != nil {
			t.Errorf("checkpoint vector %q: policy: %v", c.Name, err)
			continue
		}
		cp, err := p.VerifyCheckpoint([]byte(c.Checkpoint))
		if (err == nil) != c.Valid {
			t.Errorf("checkpoint vector %q: valid=%v, client says %v", c.Name, c.Valid, err)
		}
		if err == nil && (cp.Size != c.Size || !bytes.Equal(cp.Hash, c.Root)) {
			t.Errorf("checkpoint vector %q: size/root differ", c.Name)
		}
	}
	for _, c := range v.LeafProofs {
		var lp pb.LeafProofs
		if err := protojson.Unmarshal(c.LeafProofs, &lp); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		p, err := client.ParsePolicy(c.LogKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		cp, cpErr := p.VerifyCheckpoint(lp.Checkpoint)
		for _, l := range lp.Leaves {
			ok := cpErr == nil
			if ok {
				path := make([][]byte, len(l.Proof))
				for i, r := range l.Proof {
					path[i] = lp.Nodes[r]
				}
				lh := rfc6962.DefaultHasher.HashLeaf(l.Leaf)
				ok = proof.VerifyInclusion(rfc6962.DefaultHasher, l.Index, cp.Size, lh, path, cp.Hash) == nil
			}
			if want := c.Valid[fmt.Sprint(l.Index)]; ok != want {
				t.Errorf("%s: leaf %d: valid=%v, merkle says %v", c.Name, l.Index, want, ok)
			}
		}
	}
	for _, k := range v.Keys {
		_, err := note.NewVerifier(k.Key)
		if (err == nil) != k.Valid {
			t.Errorf("key vector %q: valid=%v, note says %v", k.Key, k.Valid, err)
		}
	}
}

func makeVectors(t *testing.T) vectors {
	t.Helper()
	var v vectors
	// A tree of 37 leaves: every index in trees of several sizes.
	var hashes []tlog.Hash
	var leaves [][]byte
	for i := range 37 {
		leaf := []byte(fmt.Sprintf("leaf %d", i))
		leaves = append(leaves, leaf)
		st, err := tlog.StoredHashes(int64(i), leaf, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = hashes[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, st...)
	}
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = hashes[x]
		}
		return out, nil
	})
	for _, size := range []int64{1, 2, 3, 5, 8, 13, 16, 37} {
		root, err := tlog.TreeHash(size, hr)
		if err != nil {
			t.Fatal(err)
		}
		for i := range size {
			p, err := tlog.ProveRecord(size, i, hr)
			if err != nil {
				t.Fatal(err)
			}
			lh := tlog.RecordHash(leaves[i])
			pr := make([][]byte, len(p))
			for j := range p {
				pr[j] = p[j][:]
			}
			v.Inclusion = append(v.Inclusion, inclusionVector{Index: uint64(i), Size: uint64(size), LeafHash: lh[:], Proof: pr, Root: root[:], Valid: true})
			if len(pr) > 0 && i%3 == 0 {
				bad := clone(pr)
				bad[len(bad)-1][0] ^= 1
				v.Inclusion = append(v.Inclusion, inclusionVector{Index: uint64(i), Size: uint64(size), LeafHash: lh[:], Proof: bad, Root: root[:]})
				v.Inclusion = append(v.Inclusion, inclusionVector{Index: uint64(i), Size: uint64(size), LeafHash: lh[:], Proof: pr[:len(pr)-1], Root: root[:]})
			}
			if size > 1 && i == size-1 {
				// Right proof, wrong index.
				v.Inclusion = append(v.Inclusion, inclusionVector{Index: uint64(i - 1), Size: uint64(size), LeafHash: lh[:], Proof: pr, Root: root[:]})
			}
		}
	}
	v.Inclusion = append(v.Inclusion, inclusionVector{Index: 5, Size: 5, LeafHash: make([]byte, 32), Root: make([]byte, 32)})

	// Checkpoints: a log key, three witnesses, one stranger.
	logSkey, logVkey := genKey(t, "example.com/provlog")
	otherSkey, otherVkey := genKey(t, "example.com/provlog")
	var wSigners []note.Signer
	var wVkeys []string
	for i := range 4 {
		sk, vk1 := genKey(t, fmt.Sprintf("witness-%d.example", i))
		s, err := fnote.NewSignerForCosignatureV1(sk)
		if err != nil {
			t.Fatal(err)
		}
		vk, err := fnote.VKeyToCosignatureV1(vk1)
		if err != nil {
			t.Fatal(err)
		}
		wSigners, wVkeys = append(wSigners, s), append(wVkeys, vk)
	}
	logSigner, err := note.NewSigner(logSkey)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := note.NewSigner(otherSkey)
	if err != nil {
		t.Fatal(err)
	}
	root, err := tlog.TreeHash(37, hr)
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("example.com/provlog\n37\n%s\n", base64.StdEncoding.EncodeToString(root[:]))
	sign := func(text string, signers ...note.Signer) string {
		b, err := note.Sign(&note.Note{Text: text}, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	policy2of3 := fmt.Sprintf("witness a %s\nwitness b %s https://b.example/\nwitness c %s\ngroup g 2 a b c\nquorum g\n", wVkeys[0], wVkeys[1], wVkeys[2])
	policyAll := fmt.Sprintf("witness a %s\nwitness b %s\ngroup g all a b\nquorum g\n", wVkeys[0], wVkeys[1])
	good := sign(body, logSigner)
	cosigned2 := sign(body, logSigner, wSigners[0], wSigners[2])
	cosigned1 := sign(body, logSigner, wSigners[0], wSigners[3])
	add := func(name, key, policy, cp string, valid bool) {
		c := checkpointVector{Name: name, LogKey: key, WitnessPolicy: policy, Checkpoint: cp, Valid: valid}
		if valid {
			c.Size, c.Root = 37, root[:]
		}
		v.Checkpoints = append(v.Checkpoints, c)
	}
	add("log signature", logVkey, "", good, true)
	add("log signature, extension line", logVkey, "", sign(body+"extra line\n", logSigner), true)
	add("signed by another key of the same name", logVkey, "", sign(body, otherSigner), false)
	add("no signature by the log key", otherVkey, "", good, false)
	add("tampered size", logVkey, "", strings.Replace(good, "\n37\n", "\n38\n", 1), false)
	add("tampered signature", logVkey, "", flipSig(t, good, 0), false)
	strangerSkey, strangerVkey := genKey(t, "example.com/other")
	add("origin is not the key's name", strangerVkey, "", sign(body, mustSigner(t, strangerSkey)), false)
	add("2 of 3 witnesses cosigned", logVkey, policy2of3, cosigned2, true)
	add("1 of 3 witnesses and a stranger cosigned", logVkey, policy2of3, cosigned1, false)
	add("quorum all, one missing", logVkey, policyAll, cosigned2, false)
	add("quorum all, both present", logVkey, policyAll, sign(body, logSigner, wSigners[0], wSigners[1]), true)
	add("2 of 3, one cosignature tampered", logVkey, policy2of3, flipSig(t, cosigned2, 1), false)
	add("witness policy, quorum none", logVkey, fmt.Sprintf("witness a %s\nquorum none\n", wVkeys[0]), good, true)

	// LeafProofs over the 37-leaf tree: shared proof nodes sent once.
	lp := &pb.LeafProofs{Checkpoint: []byte(good), TreeSize: 37}
	nodeIdx := map[tlog.Hash]uint32{}
	for _, i := range []int64{0, 5, 6, 36} {
		p, err := tlog.ProveRecord(37, i, hr)
		if err != nil {
			t.Fatal(err)
		}
		pl := &pb.ProvenLeaf{Index: uint64(i), Leaf: leaves[i]}
		for _, h := range p {
			r, ok := nodeIdx[h]
			if !ok {
				r = uint32(len(lp.Nodes))
				nodeIdx[h] = r
				lp.Nodes = append(lp.Nodes, bytes.Clone(h[:]))
			}
			pl.Proof = append(pl.Proof, r)
		}
		lp.Leaves = append(lp.Leaves, pl)
	}
	addLP := func(name string, lp *pb.LeafProofs, valid map[string]bool) {
		b, err := protojson.Marshal(lp)
		if err != nil {
			t.Fatal(err)
		}
		v.LeafProofs = append(v.LeafProofs, leafProofsVector{Name: name, LogKey: logVkey, LeafProofs: b, Valid: valid})
	}
	addLP("four leaves", lp, map[string]bool{"0": true, "5": true, "6": true, "36": true})
	// Leaf 5's sibling is its own; the hash of leaves 0..3 is shared by the
	// proofs of 5 and 6.
	tampered := proto.Clone(lp).(*pb.LeafProofs)
	tampered.Nodes[tampered.Leaves[1].Proof[0]][0] ^= 1
	addLP("leaf 5's sibling tampered", tampered, map[string]bool{"0": true, "5": false, "6": true, "36": true})
	shared := proto.Clone(lp).(*pb.LeafProofs)
	shared.Nodes[shared.Leaves[1].Proof[2]][0] ^= 1
	addLP("node shared by leaves 5 and 6 tampered", shared, map[string]bool{"0": true, "5": false, "6": false, "36": true})
	swapped := proto.Clone(lp).(*pb.LeafProofs)
	swapped.Leaves[0].Leaf = []byte("leaf 1")
	addLP("leaf 0 replaced", swapped, map[string]bool{"0": false, "5": true, "6": true, "36": true})
	badCp := proto.Clone(lp).(*pb.LeafProofs)
	badCp.Checkpoint = []byte(flipSig(t, good, 0))
	addLP("checkpoint signature tampered", badCp, map[string]bool{"0": false, "5": false, "6": false, "36": false})

	v.Keys = append(v.Keys,
		keyVector{Key: logVkey, Valid: true},
		keyVector{Key: strings.Replace(logVkey, "+", "+0", 1)[:len(logVkey)], Valid: false},
		keyVector{Key: "example.com/provlog+00000000+" + strings.SplitN(logVkey, "+", 3)[2], Valid: false},
		keyVector{Key: "no-plus-signs", Valid: false},
	)
	return v
}

func mustSigner(t *testing.T, skey string) note.Signer {
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func genKey(t *testing.T, name string) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// flipSig flips a bit in the n-th signature line of a note.
func flipSig(t *testing.T, n string, which int) string {
	t.Helper()
	i := strings.Index(n, "\n\n")
	lines := strings.Split(n[i+2:], "\n")
	f := strings.Fields(lines[which])
	b, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-10] ^= 1
	lines[which] = f[0] + " " + f[1] + " " + base64.StdEncoding.EncodeToString(b)
	return n[:i+2] + strings.Join(lines, "\n")
}

func clone(p [][]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = bytes.Clone(p[i])
	}
	return out
}
