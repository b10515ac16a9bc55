package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// mountTmpfs mounts a tmpfs of size bytes under a fresh temporary
// directory and unmounts it after the test (after everything cleaned up
// later than this call, such as a daemon started afterwards). It skips
// when mounting is impossible (not root, no CAP_SYS_ADMIN), except under
// CI, where that is a failure.
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but a tmpfs cannot be mounted for the disk-full test: %v", err)
		}
		t.Skipf("cannot mount a tmpfs for the disk-full test (needs root or CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// freeBytes is the free space of the file system holding path.
func freeBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillDisk writes path until the file system holding it has at most left
// bytes free (0: until ENOSPC) and returns how many bytes it wrote.
func fillDisk(t *testing.T, path string, left int64) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for freeBytes(t, path) > left {
		m, err := f.Write(buf)
		n += int64(m)
		if errors.Is(err, syscall.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatalf("filling the disk: %v", err)
		}
	}
	return n
}

// TestDiskFull runs provlogd's embedded backend on a small tmpfs (160 MiB,
// --min-free-mib 48), mostly taken by a ballast file; sustained appends (and
// what they make tessera and the pebble indexes write) fill the rest; then
// another process takes the reserve too, to the last byte; then the
// ballasts are deleted. While the disk is full, appends fail with
// ResourceExhausted or Unavailable and a message (an event is acknowledged
// only once durable) and provlogd stays up; once space returns appends
// resume. Afterwards every acknowledged event is in the log byte for byte
// at its index, the checkpoints from before and after the episode are both
// roots of the leaves read back (computed with x/mod's tlog, not our code)
// and consistent, a restart succeeds and provctl audit passes.
func TestDiskFull(t *testing.T) {
	// The reserve must exceed what pebble preallocates for a new WAL (1.1 x
	// the memtable: 35 MiB for the lineage index); with less, a WAL
	// rotation briefly takes the whole disk and tessera's writes fail
	// (cleanly, Unavailable) before the reserve is reached.
	const reserve = 48 << 20
	mnt := mountTmpfs(t, 160<<20)
	provctlBin := provctlBinary(t)
	d := startDaemon(t, filepath.Join(mnt, "data"), "--min-free-mib", fmt.Sprint(reserve>>20))
	// The ballast leaves the appends 6 MiB above the reserve to fill.
	ballast := filepath.Join(mnt, "ballast")
	t.Logf("ballast of %d MiB", fillDisk(t, ballast, reserve+6<<20)>>20)
	_, _, samples := loadSamples(t)

	var (
		mu      sync.Mutex
		acked   = map[uint64][]byte{} // index -> leaf hash
		failed  = map[codes.Code]int{}
		msgs    = map[string]bool{}
		phase   atomic.Int32 // 0 before, 1 full, 2 space back
		during  atomic.Int64 // failures while full
		afterUp atomic.Int64 // acknowledged once space is back
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
					ev.EventId = fmt.Sprintf("diskfull:%d", n)
					batch[i] = ev
				}
				ctx, cancel := context.WithTimeout(d.ctx(), 10*time.Second)
				p := phase.Load()
				resp, err := c.AppendBatch(ctx, &pb.AppendBatchRequest{Events: batch})
				cancel()
				mu.Lock()
				record := func(code codes.Code, msg string) {
					failed[code]++
					msgs[code.String()+": "+msg] = true
					if p == 1 {
						during.Add(1)
					}
				}
				if err != nil {
					record(status.Code(err), status.Convert(err).Message())
				} else {
					for _, r := range resp.GetResults() {
						if e := r.GetError(); e != nil {
							record(codes.Code(e.GetCode()), e.GetMessage())
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
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	before := d.latestCheckpoint()

	// The appends fill the disk: wait for the first failures, keep it full
	// a while under load.
	phase.Store(1)
	fillStart := time.Now()
	for deadline := time.Now().Add(30 * time.Second); during.Load() < 20 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if ended, err := d.proc.Exited(); ended {
			t.Fatalf("provlogd exited while the disk filled: %v\n%s", err, d.logs)
		}
	}
	t.Logf("appends filled the disk in %v (%d MiB free)", time.Since(fillStart).Round(time.Millisecond), freeBytes(t, mnt)>>20)
	time.Sleep(500 * time.Millisecond)
	// Then another process takes the reserve too, to the last byte.
	ballast2 := filepath.Join(mnt, "ballast2")
	t.Logf("second ballast of %d MiB fills the disk to %d bytes free", fillDisk(t, ballast2, 0)>>20, freeBytes(t, mnt))
	time.Sleep(time.Second)
	if ended, err := d.proc.Exited(); ended {
		t.Fatalf("provlogd exited while the disk was full: %v\n%s", err, d.logs)
	}
	if code, _ := d.get("/healthz"); code != http.StatusOK {
		t.Logf("/healthz while the disk is full: %d", code)
	}

	for _, f := range []string{ballast2, ballast} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	phase.Store(2)
	for deadline := time.Now().Add(30 * time.Second); afterUp.Load() < 100 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	t.Logf("acknowledged %d events (%d after space returned); %d failed while full; failures by code: %v; messages: %v",
		len(acked), afterUp.Load(), during.Load(), failed, msgs)
	if during.Load() == 0 {
		t.Errorf("no append failed while the disk was full")
	}
	for code, n := range failed {
		if code != codes.Unavailable && code != codes.ResourceExhausted {
			t.Errorf("%d appends failed with %v; want Unavailable or ResourceExhausted", n, code)
		}
	}
	for m := range msgs {
		if len(m) < len("Unavailable: ")+10 {
			t.Errorf("failure without a useful message: %q", m)
		}
	}
	if afterUp.Load() < 100 {
		t.Fatalf("appends did not resume once space returned: %d acknowledged since\n%s", afterUp.Load(), d.logs)
	}

	var maxIdx uint64
	for idx := range acked {
		maxIdx = max(maxIdx, idx)
	}
	after := d.waitForSize(int64(maxIdx) + 1)
	entries := readWholeLog(t, d, after)
	for idx, h := range acked {
		if got := tlog.RecordHash(entries[idx]); string(got[:]) != string(h) {
			t.Fatalf("acknowledged leaf %d lost or changed", idx)
		}
	}
	// Both checkpoints are roots of the leaves read back, computed by
	// x/mod's tlog from the leaves alone, so the one after extends the one
	// before; the server's consistency proof agrees.
	var stored []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, e := range entries {
		hs, err := tlog.StoredHashes(int64(i), e, hr)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	for _, cp := range []checkpoint{before, after} {
		root, err := tlog.TreeHash(cp.size, hr)
		if err != nil {
			t.Fatal(err)
		}
		if root != cp.root {
			t.Fatalf("checkpoint of size %d has root %v; the leaves give %v", cp.size, cp.root, root)
		}
	}
	p, err := d.client().GetConsistencyProof(d.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(before.size), ToSize: uint64(after.size)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(hashes(t, p.GetProof()), after.size, after.root, before.size, before.root); err != nil {
		t.Fatalf("checkpoint after the episode (%d) inconsistent with the one before (%d): %v", after.size, before.size, err)
	}

	// A clean stop and a restart on the same data, then a full audit.
	d.stop()
	logFirst(t, d.logs.String(), "level=ERROR", 3) // read once provlogd has exited
	d.start()
	cmd := exec.CommandContext(t.Context(), provctlBin, "audit", "--index-wait", "60s")
	cmd.Env = append(os.Environ(), "PROVLOG_ADDR="+d.grpcAddr, "PROVLOG_HTTP=http://"+d.httpAddr,
		"PROVLOG_TOKEN="+d.token, "PROVLOG_LOG_KEY="+filepath.Join(d.dataDir, "log.pub"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("provctl audit after the disk-full episode: %v\n%s\nprovlogd:\n%s", err, out, d.logs)
	}
	t.Logf("provctl audit: %s", lastLine(out))
	d.stop()
}

func lastLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}

// logFirst logs the first n lines of logs that contain substr.
func logFirst(t *testing.T, logs, substr string, n int) {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if n > 0 && strings.Contains(l, substr) {
			t.Logf("provlogd: %s", l)
			n--
		}
	}
}
