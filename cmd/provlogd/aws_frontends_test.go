package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// sharedKeys copies the log's key and admin token from one frontend's data
// dir to another's: frontends of one log sign with the same key.
func sharedKeys(t *testing.T, from, to string) {
	t.Helper()
	for _, f := range []string{"log.key", "log.pub", "admin.token"} {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o600)
		if f == "log.pub" {
			mode = 0o644
		}
		if err := os.WriteFile(filepath.Join(to, f), b, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// manyEvents is n variants of the sample events, with distinct event ids.
func manyEvents(t *testing.T, prefix string, n int) []*pb.ProvenanceEvent {
	t.Helper()
	_, _, samples := loadSamples(t)
	out := make([]*pb.ProvenanceEvent, n)
	for i := range out {
		ev := proto.Clone(samples[i%len(samples)]).(*pb.ProvenanceEvent)
		ev.EventId = fmt.Sprintf("%s-%04d:%s", prefix, i, ev.GetEventId())
		out[i] = ev
	}
	return out
}

// TestAWSTwoFrontends runs two provlogd processes on one database and
// bucket. Both are sent the same events concurrently, in batches: each
// (tenant, event id) becomes one leaf, both answer it at the same index,
// either serves proofs (checked with x/mod) and the whole log through
// /log/, and their lineage indexes agree.
func TestAWSTwoFrontends(t *testing.T) {
	t.Parallel()
	a := newAWS(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	d1 := a.start(t, dir1)
	sharedKeys(t, dir1, dir2)
	d2 := a.start(t, dir2)

	events := manyEvents(t, "two", 240)
	type answer struct {
		i   int
		idx uint64
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	for _, d := range []*daemon{d1, d2} {
		for g := range 2 {
			wg.Go(func() {
				// Each sender walks the events in its own order.
				for start := 0; start < len(events); start += 20 {
					lo := start
					if g == 1 {
						lo = len(events) - 20 - start
					}
					resp, err := d.client().AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: events[lo : lo+20]})
					if err != nil {
						t.Errorf("AppendBatch: %v", err)
						return
					}
					mu.Lock()
					for j, r := range resp.GetResults() {
						if r.GetError() != nil {
							t.Errorf("event %d: %v", lo+j, r.GetError())
						}
						answers = append(answers, answer{lo + j, r.GetIndex()})
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	index := map[int]uint64{}
	owner := map[uint64]int{}
	for _, a := range answers {
		if prev, ok := index[a.i]; ok && prev != a.idx {
			t.Fatalf("event %d answered at %d and at %d", a.i, prev, a.idx)
		}
		if prev, ok := owner[a.idx]; ok && prev != a.i {
			t.Fatalf("index %d answered for events %d and %d", a.idx, prev, a.i)
		}
		index[a.i], owner[a.idx] = a.idx, a.i
	}
	n := int64(len(events))
	cp := d1.waitForSize(n)
	if cp2 := d2.waitForSize(n); cp2.size != n || cp.size != n {
		t.Fatalf("checkpoints of size %d and %d, want %d: an event was appended twice", cp.size, cp2.size, n)
	}
	// Proofs of every sixth event, from each frontend in turn, by hash.
	for i, idx := range index {
		if i%6 != 0 {
			continue
		}
		d := []*daemon{d1, d2}[i/6%2]
		leaf, err := d.client().GetEntry(d.ctx(), &pb.GetEntryRequest{Index: idx})
		if err != nil {
			t.Fatalf("GetEntry(%d): %v", idx, err)
		}
		h := tlog.RecordHash(leaf.GetLeaf())
		// By hash: the leaf-hash index is filled by the followers from the
		// log, so it may trail the checkpoint by a follow interval.
		var p *pb.GetInclusionProofResponse
		deadline := time.Now().Add(10 * time.Second)
		for {
			p, err = d.client().GetInclusionProof(d.ctx(), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: h[:]}, TreeSize: uint64(cp.size)})
			if status.Code(err) != codes.NotFound || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("inclusion proof of %d: %v", idx, err)
		}
		if err := tlog.CheckRecord(hashes(t, p.GetProof()), cp.size, cp.root, int64(idx), h); err != nil {
			t.Fatalf("inclusion of %d: %v", idx, err)
		}
	}
	e1, e2 := readWholeLog(t, d1, cp), readWholeLog(t, d2, cp)
	for i := range e1 {
		if !bytes.Equal(e1[i], e2[i]) {
			t.Fatalf("entry %d differs between the frontends", i)
		}
	}
	if g1, g2 := waitIndexed(t, d1, uint64(n)), waitIndexed(t, d2, uint64(n)); !bytes.Equal(g1, g2) {
		t.Fatalf("lineage digests differ at %d: %x and %x", n, g1, g2)
	}
	d1.stop()
	d2.stop()
}
