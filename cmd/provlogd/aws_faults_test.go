package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provlog/provlog/log/ledger/awstest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestAWSCrashDuringAppends is TestCrashDuringAppends on the aws storage:
// SIGKILL of a frontend under sustained appends, then every acknowledged
// event is in the log (read back from the bucket) byte for byte at its
// index, re-sending it is a duplicate, and checkpoints are consistent
// across the crash.
func TestAWSCrashDuringAppends(t *testing.T) {
	t.Parallel()
	d := newAWS(t).start(t, t.TempDir())
	crashDuringAppends(t, d)
}

// TestAWSDatabaseRestart restarts the database under sustained appends (a
// private MariaDB, so other tests keep theirs): while it is down appends
// fail with Unavailable, never another code, and they resume once it is
// back; every acknowledged event is then in the log at its index.
func TestAWSDatabaseRestart(t *testing.T) {
	t.Parallel()
	m := awstest.StartMariaDB(t)
	a := newAWS(t)
	a.dsn = m.NewDatabase(t)
	d := a.start(t, t.TempDir())
	appendsAcrossOutage(t, d, true, func() {
		m.Stop()
		time.Sleep(2 * time.Second)
		m.Start()
	})
}

// TestAWSObjectStoreRestart restarts the S3-compatible store (a private
// versitygw) under sustained appends. Sequencing needs only the database,
// so appends may go on being acknowledged while it is down, until
// integration falls 4096 entries behind (then Unavailable); any failure is
// Unavailable, appends resume, and nothing acknowledged is lost.
func TestAWSObjectStoreRestart(t *testing.T) {
	t.Parallel()
	g := awstest.StartVersityGW(t)
	a := awsSetup{dsn: awstest.NewDatabase(t), endpoint: g.Endpoint, bucket: g.NewBucket(t), env: g.Env()}
	d := a.start(t, t.TempDir())
	appendsAcrossOutage(t, d, false, func() {
		g.Stop()
		time.Sleep(2 * time.Second)
		g.Start()
	})
}

// appendsAcrossOutage runs two callers appending batches while outage
// runs, then checks the codes of the failures (only Unavailable; at least
// one if mustFail), that appends resumed, and that every acknowledged
// event is in the log at its index.
func appendsAcrossOutage(t *testing.T, d *daemon, mustFail bool, outage func()) {
	t.Helper()
	_, _, samples := loadSamples(t)
	var (
		mu      sync.Mutex
		acked   = map[uint64][]byte{}
		failed  = map[codes.Code]int{}
		phase   atomic.Int32 // 0 before, 1 during, 2 after the outage
		afterUp atomic.Int64
		seq     atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	c := d.client()
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				batch := make([]*pb.ProvenanceEvent, 8)
				for i := range batch {
					n := seq.Add(1)
					ev := proto.Clone(samples[int(n)%len(samples)]).(*pb.ProvenanceEvent)
					ev.EventId = fmt.Sprintf("outage:%d", n)
					batch[i] = ev
				}
				ctx, cancel := context.WithTimeout(d.ctx(), 10*time.Second)
				p := phase.Load()
				resp, err := c.AppendBatch(ctx, &pb.AppendBatchRequest{Events: batch})
				cancel()
				mu.Lock()
				if err != nil {
					failed[status.Code(err)]++
				} else {
					for _, r := range resp.GetResults() {
						if r.GetError() != nil {
							failed[codes.Code(r.GetError().GetCode())]++
							continue
						}
						acked[r.GetIndex()] = r.GetLeafHash()
						if p == 2 {
							afterUp.Add(1)
						}
					}
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(1500 * time.Millisecond)
	phase.Store(1)
	outage()
	phase.Store(2)
	deadline := time.Now().Add(30 * time.Second)
	for afterUp.Load() < 50 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("acknowledged %d events (%d after the outage); failed events by code: %v", len(acked), afterUp.Load(), failed)
	if mustFail && failed[codes.Unavailable] == 0 {
		t.Errorf("no append failed with Unavailable during the outage")
	}
	for code, n := range failed {
		if code != codes.Unavailable {
			t.Errorf("%d appends failed with %v; want only Unavailable", n, code)
		}
	}
	if afterUp.Load() < 50 {
		t.Fatalf("appends did not resume after the outage: %d acknowledged since", afterUp.Load())
	}
	var maxIdx uint64
	for idx := range acked {
		maxIdx = max(maxIdx, idx)
	}
	cp := d.waitForSize(int64(maxIdx) + 1)
	entries := readWholeLog(t, d, cp)
	for idx, h := range acked {
		if got := tlog.RecordHash(entries[idx]); !bytes.Equal(got[:], h) {
			t.Fatalf("acknowledged leaf %d lost or changed", idx)
		}
	}
	// The lineage index resumes too (under --storage aws its writer lock
	// went with the database session: it is taken again).
	waitIndexed(t, d, uint64(cp.size))
	d.stop()
}
