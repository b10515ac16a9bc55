package client

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
)

// testLog is a provlog-shaped log built with x/mod's tlog, independent of
// the code under test: real leaves from testdata/events, RFC 6962 hashes,
// checkpoints signed by an Ed25519 note key named after the origin.
type testLog struct {
	t      *testing.T
	signer note.Signer
	vkey   string
	events []*pb.ProvenanceEvent
	leaves [][]byte
	hashes hashStore
}

type hashStore []tlog.Hash

func (s hashStore) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, j := range idx {
		if j < 0 || j >= int64(len(s)) {
			return nil, fmt.Errorf("hash %d not stored", j)
		}
		out[i] = s[j]
	}
	return out, nil
}

const testOrigin = "example.com/provlog-test"

// newTestLog builds a log holding every sample event, in file order.
func newTestLog(t *testing.T) *testLog {
	t.Helper()
	return newTestLogFrom(t, rand.Reader)
}

// newTestLogFrom is newTestLog with the log key drawn from random.
func newTestLogFrom(t *testing.T, random io.Reader) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(random, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &testLog{t: t, signer: signer, vkey: vkey}
	files, err := filepath.Glob("../testdata/events/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("want sample events in testdata/events, got %d (%v)", len(files), err)
	}
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ev := &pb.ProvenanceEvent{}
		if err := protojson.Unmarshal(b, ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		_, leaf, err := event.NewLeaf(ev, received.Add(time.Duration(i)*time.Second), "receipt-test")
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		hs, err := tlog.StoredHashes(int64(len(l.leaves)), leaf, l.hashes)
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.events = append(l.events, ev)
		l.leaves = append(l.leaves, leaf)
	}
	return l
}

func (l *testLog) verifier() note.Verifier {
	l.t.Helper()
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		l.t.Fatal(err)
	}
	return v
}

// checkpointText is the unsigned C2SP checkpoint body of the tree of size n.
func (l *testLog) checkpointText(n int64) string {
	l.t.Helper()
	root, err := tlog.TreeHash(n, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	return string(log.Checkpoint{Origin: testOrigin, Size: uint64(n), Hash: root[:]}.Marshal())
}

// checkpoint is the tree of size n signed by the log.
func (l *testLog) checkpoint(n int64) []byte {
	l.t.Helper()
	return signNote(l.t, l.checkpointText(n), l.signer)
}

// receipt proves leaf i in the tree of size n.
func (l *testLog) receipt(i, n int64) *pb.Receipt {
	l.t.Helper()
	p, err := tlog.ProveRecord(n, i, l.hashes)
	if err != nil {
		l.t.Fatal(err)
	}
	r := &pb.Receipt{Index: uint64(i), Leaf: l.leaves[i], Checkpoint: l.checkpoint(n)}
	for _, h := range p {
		r.InclusionProof = append(r.InclusionProof, bytes.Clone(h[:]))
	}
	return r
}

// signNote signs text with each signer, in order.
func signNote(t *testing.T, text string, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyReceipt(t *testing.T) {
	l := newTestLog(t)
	size := int64(len(l.leaves))
	otherSkey, _, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	otherSigner, err := note.NewSigner(otherSkey)
	if err != nil {
		t.Fatal(err)
	}

	// Valid receipts for every leaf, in trees of several sizes.
	for _, n := range []int64{1, 2, 7, size} {
		for i := int64(0); i < n; i++ {
			r := l.receipt(i, n)
			v, err := VerifyReceipt(r, l.verifier())
			if err != nil {
				t.Fatalf("leaf %d in tree %d: %v", i, n, err)
			}
			if v.Index != uint64(i) || v.Checkpoint.Size != uint64(n) || v.LeafHash != tlog.RecordHash(l.leaves[i]) {
				t.Fatalf("leaf %d in tree %d: got index %d size %d hash %x", i, n, v.Index, v.Checkpoint.Size, v.LeafHash)
			}
			if !proto.Equal(v.Entry.GetEvent(), l.events[i]) {
				t.Fatalf("leaf %d: decoded event differs:\n%s", i, cmp.Diff(l.events[i], v.Entry.GetEvent(), protocmp.Transform()))
			}
			if _, err := VerifyReceiptFor(r, l.verifier(), l.events[i]); err != nil {
				t.Fatalf("VerifyReceiptFor leaf %d: %v", i, err)
			}
		}
	}

	const idx = 5
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return b
	}
	for _, tc := range []struct {
		name   string
		mutate func(r *pb.Receipt)
	}{
		{"leaf of another event", func(r *pb.Receipt) { r.Leaf = l.leaves[idx+1] }},
		{"leaf byte flipped", func(r *pb.Receipt) { r.Leaf = flip(r.Leaf, len(r.Leaf)/2) }},
		{"leaf truncated", func(r *pb.Receipt) { r.Leaf = r.Leaf[:len(r.Leaf)-1] }},
		{"leaf empty", func(r *pb.Receipt) { r.Leaf = nil }},
		{"proof hash flipped", func(r *pb.Receipt) { r.InclusionProof[1] = flip(r.InclusionProof[1], 0) }},
		{"proof hash dropped", func(r *pb.Receipt) { r.InclusionProof = r.InclusionProof[:len(r.InclusionProof)-1] }},
		{"proof hash added", func(r *pb.Receipt) { r.InclusionProof = append(r.InclusionProof, make([]byte, 32)) }},
		{"proof hashes swapped", func(r *pb.Receipt) {
			r.InclusionProof[0], r.InclusionProof[1] = r.InclusionProof[1], r.InclusionProof[0]
		}},
		{"proof hash short", func(r *pb.Receipt) { r.InclusionProof[0] = r.InclusionProof[0][:31] }},
		{"proof empty", func(r *pb.Receipt) { r.InclusionProof = nil }},
		{"index off by one", func(r *pb.Receipt) { r.Index++ }},
		{"index of the sibling", func(r *pb.Receipt) { r.Index ^= 1 }},
		{"index at tree size", func(r *pb.Receipt) { r.Index = uint64(size) }},
		{"index huge", func(r *pb.Receipt) { r.Index = 1 << 62 }},
		{"checkpoint of a smaller tree", func(r *pb.Receipt) { r.Checkpoint = l.checkpoint(size - 1) }},
		{"checkpoint size edited", func(r *pb.Receipt) {
			r.Checkpoint = bytes.Replace(r.Checkpoint, fmt.Appendf(nil, "\n%d\n", size), fmt.Appendf(nil, "\n%d\n", size+1), 1)
		}},
		{"checkpoint root edited", func(r *pb.Receipt) {
			lines := strings.SplitN(string(r.Checkpoint), "\n", 4)
			h, _ := base64.StdEncoding.DecodeString(lines[2])
			lines[2] = base64.StdEncoding.EncodeToString(flip(h, 31))
			r.Checkpoint = []byte(strings.Join(lines, "\n"))
		}},
		{"checkpoint signature flipped", func(r *pb.Receipt) {
			i := bytes.LastIndexByte(r.Checkpoint[:len(r.Checkpoint)-1], ' ')
			sig, _ := base64.StdEncoding.DecodeString(string(r.Checkpoint[i+1 : len(r.Checkpoint)-1]))
			r.Checkpoint = append(r.Checkpoint[:i+1:i+1], base64.StdEncoding.EncodeToString(flip(sig, 10))+"\n"...)
		}},
		{"checkpoint signed by another key of the same name", func(r *pb.Receipt) {
			r.Checkpoint = signNote(t, l.checkpointText(size), otherSigner)
		}},
		{"checkpoint unsigned", func(r *pb.Receipt) { r.Checkpoint = []byte(l.checkpointText(size)) }},
		{"checkpoint of another origin", func(r *pb.Receipt) {
			r.Checkpoint = signNote(t, strings.Replace(l.checkpointText(size), testOrigin, "example.com/other", 1), l.signer)
		}},
		{"checkpoint empty", func(r *pb.Receipt) { r.Checkpoint = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := l.receipt(idx, size)
			if _, err := VerifyReceipt(r, l.verifier()); err != nil {
				t.Fatalf("untampered receipt: %v", err)
			}
			tc.mutate(r)
			v, err := VerifyReceipt(r, l.verifier())
			if !errors.Is(err, ErrVerification) {
				t.Fatalf("VerifyReceipt = %+v, %v; want an error wrapping ErrVerification", v, err)
			}
		})
	}

	t.Run("another event", func(t *testing.T) {
		_, err := VerifyReceiptFor(l.receipt(idx, size), l.verifier(), l.events[idx+1])
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("VerifyReceiptFor with another event: %v, want ErrVerification", err)
		}
	})
	t.Run("nil receipt", func(t *testing.T) {
		if _, err := VerifyReceipt(nil, l.verifier()); err == nil || errors.Is(err, ErrVerification) {
			t.Fatalf("VerifyReceipt(nil) = %v, want a non-verification error", err)
		}
	})
}
