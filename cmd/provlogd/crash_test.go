package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"
)

// TestCrashDuringAppends SIGKILLs provlogd in the middle of a sustained
// stream of appends. After restart, every acknowledged event is in the log
// byte for byte at the index it was acknowledged with, re-sending it is a
// duplicate, and the new checkpoint is consistent with the last one
// published before the kill.
func TestCrashDuringAppends(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir)
	crashDuringAppends(t, d)
}

// crashDuringAppends is TestCrashDuringAppends on a started daemon,
// whatever its storage.
func crashDuringAppends(t *testing.T, d *daemon) {
	_, _, samples := loadSamples(t)

	type ack struct {
		event    *pb.ProvenanceEvent
		leafHash []byte
	}
	var (
		mu    sync.Mutex
		acked = map[uint64]ack{}
		seq   atomic.Int64
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	c := d.client()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				batch := make([]*pb.ProvenanceEvent, 16)
				for i := range batch {
					n := seq.Add(1)
					ev := proto.Clone(samples[int(n)%len(samples)]).(*pb.ProvenanceEvent)
					ev.EventId = fmt.Sprintf("crash:%d", n)
					batch[i] = ev
				}
				resp, err := c.AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: batch})
				if err != nil {
					continue // the kill: unacknowledged, may or may not be in the log
				}
				mu.Lock()
				for i, r := range resp.GetResults() {
					if r.GetError() == nil {
						acked[r.GetIndex()] = ack{batch[i], r.GetLeafHash()}
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Let the stream run, remembering the last published checkpoint.
	var last checkpoint
	for start := time.Now(); time.Since(start) < 2*time.Second; time.Sleep(100 * time.Millisecond) {
		last = d.latestCheckpoint()
	}
	d.kill()
	stop.Store(true)
	wg.Wait()
	if len(acked) == 0 || last.size == 0 {
		t.Fatalf("nothing acknowledged (%d) or published (%d) before the kill", len(acked), last.size)
	}
	t.Logf("killed with %d acknowledged events, last checkpoint size %d", len(acked), last.size)

	d.start()
	var maxIdx uint64
	for idx := range acked {
		maxIdx = max(maxIdx, idx)
	}
	now := d.waitForSize(int64(maxIdx) + 1)

	p, err := d.client().GetConsistencyProof(d.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(last.size), ToSize: uint64(now.size)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(hashes(t, p.GetProof()), now.size, now.root, last.size, last.root); err != nil {
		t.Fatalf("checkpoint after crash (%d) inconsistent with the last before it (%d): %v", now.size, last.size, err)
	}
	entries := readWholeLog(t, d, now)
	for idx, a := range acked {
		if h := tlog.RecordHash(entries[idx]); string(h[:]) != string(a.leafHash) {
			t.Fatalf("acknowledged leaf %d lost or changed: hash %x, acknowledged %x", idx, h, a.leafHash)
		}
	}
	// Re-sending acknowledged events after the crash must not append them
	// again: the index is rebuilt from the log.
	n := 0
	for idx, a := range acked {
		if n++; n > 200 {
			break
		}
		r, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: a.event})
		if err != nil {
			t.Fatal(err)
		}
		if !r.GetDuplicate() || r.GetIndex() != idx {
			t.Fatalf("re-sent event acknowledged at %d: got index %d duplicate=%v", idx, r.GetIndex(), r.GetDuplicate())
		}
	}
	d.stop()
}
