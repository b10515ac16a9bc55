package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// checkIndexed checks that the store holds want (event id -> index) for
// tenant acme, by key and by leaf hash, and that appending each event again
// is a duplicate of it while a different body conflicts with it.
func checkIndexed(t *testing.T, l *Ledger, want map[string]uint64) {
	t.Helper()
	for id, idx := range want {
		r, ok, err := l.store.Lookup(dedupeKey("acme", id))
		if err != nil || !ok || r.Index != idx {
			t.Errorf("store.Lookup(%s) = %+v, %v, %v; want index %d", id, r, ok, err, idx)
			continue
		}
		if got, ok, err := l.store.LookupLeaf(r.LeafHash); err != nil || !ok || got != idx {
			t.Errorf("store.LookupLeaf(%s) = %d, %v, %v; want %d", id, got, ok, err, idx)
		}
		d, err := event.Digest(testEvent("acme", id))
		if err != nil {
			t.Fatal(err)
		}
		if r.Digest != d {
			t.Errorf("record digest for %s is %x, want %x", id, r.Digest, d)
		}
		res := l.Append(t.Context(), subsOf(testEvent("acme", id), variant(testEvent("acme", id))))
		if res[0].Err != nil || !res[0].Duplicate || res[0].Index != idx || res[0].LeafHash != r.LeafHash {
			t.Errorf("re-append %s: %+v, want duplicate of %d", id, res[0], idx)
		}
		var ce *ConflictError
		if !errors.As(res[1].Err, &ce) || ce.Index != idx {
			t.Errorf("re-append %s with another body: %+v, want a conflict with %d", id, res[1], idx)
		}
	}
}

func TestFollowerCatchUpAfterReopen(t *testing.T) {
	dir := t.TempDir()
	// Cross an entry bundle boundary (256).
	const n = 300
	l := openLedger(t, dir, nil)
	want := map[string]uint64{}
	evs := eventsFor("acme", ids("ev", n))
	for i := 0; i < n; i += 100 {
		for j, r := range appendAll(t, l, evs[i:i+100]...) {
			want[evs[i+j].GetEventId()] = r.Index
		}
	}
	// The last event, just before Close.
	last := testEvent("acme", "last")
	want["last"] = appendAll(t, l, last)[0].Index
	closeLedger(t, l)

	l = openLedger(t, dir, nil)
	wm, err := l.store.Watermark()
	if err != nil || wm != n+1 {
		t.Fatalf("Watermark after reopen = %d, %v; want %d", wm, err, n+1)
	}
	checkIndexed(t, l, want)
	if got := integratedSize(t, l); got != n+1 {
		t.Errorf("integrated size = %d, want %d: a re-append was appended", got, n+1)
	}
	// Entries are readable after the restart.
	awaitSize(t, l, n+1)
	leaf, err := l.Entry(t.Context(), want["last"])
	if err != nil {
		t.Fatal(err)
	}
	if e, err := event.DecodeLeaf(leaf); err != nil || e.GetEvent().GetEventId() != "last" {
		t.Errorf("Entry(%d) decodes to %v, %v; want event last", want["last"], e, err)
	}
}

const crashEnv = "PROVLOG_LEDGER_CRASH_DIR"

// crashReport is what the crash helper writes before it dies.
type crashReport struct {
	Acked     map[string]uint64 // event id -> acknowledged index
	Watermark uint64            // the index store's watermark at death
}

const crashReportFile = "crash.json"

// TestCrashHelper is run as a child process by
// TestCrashBetweenSequencingAndIndexing. It appends, lets the follower index
// the first part only, and dies by SIGKILL: no Close, no final follow pass,
// no deferred anything.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestCrashBetweenSequencingAndIndexing")
	}
	cfg := testConfig(t, dir)
	cfg.FollowInterval = time.Hour // only the passes this function asks for
	l, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := crashReport{Acked: map[string]uint64{}}
	add := func(prefix string, n int) {
		evs := eventsFor("acme", ids(prefix, n))
		for i, r := range appendAll(t, l, evs...) {
			rep.Acked[evs[i].GetEventId()] = r.Index
		}
	}
	add("indexed", 20)
	if err := l.follow(t.Context()); err != nil {
		t.Fatal(err)
	}
	add("unindexed", 280)
	if rep.Watermark, err = l.store.Watermark(); err != nil {
		t.Fatal(err)
	}
	// Make the acknowledgements durable, as a client's own log would.
	b, _ := json.Marshal(rep)
	if err := os.WriteFile(filepath.Join(dir, crashReportFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// TestCrashBetweenSequencingAndIndexing kills a process that holds
// acknowledged but unindexed entries, then opens the directory again.
//
// A second Ledger on the same directory in this process cannot stand in for
// the crash: the index store holds an exclusive lock on its files (bbolt an
// flock on index.db, pebble its LOCK file), so a second Open fails while the
// first Ledger is alive, and releasing the store first is a clean shutdown
// of the index, not a crash. A child process killed with SIGKILL is a real
// crash, tessera's own file locks included.
func TestCrashBetweenSequencingAndIndexing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	testConfig(t, dir) // make the keys here, so both processes share them
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v\n%s", err, out.Bytes())
	}
	b, err := os.ReadFile(filepath.Join(dir, crashReportFile))
	if err != nil {
		t.Fatalf("helper wrote no report: %v\n%s", err, out.Bytes())
	}
	var rep crashReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// The crash left the index behind the log.
	if len(rep.Acked) != 300 || rep.Watermark != 20 {
		t.Fatalf("helper acknowledged %d events with the index at %d, want 300 at 20", len(rep.Acked), rep.Watermark)
	}

	l := openLedger(t, dir, nil)
	wm, err := l.store.Watermark()
	if err != nil || wm != 300 {
		t.Fatalf("Watermark after reopen = %d, %v; want 300", wm, err)
	}
	checkIndexed(t, l, rep.Acked)
	if got := integratedSize(t, l); got != 300 {
		t.Errorf("integrated size = %d, want 300: an acknowledged event was appended again", got)
	}
	// Every acknowledged event is in the log at its index.
	awaitSize(t, l, 300)
	for id, idx := range rep.Acked {
		leaf, err := l.Entry(t.Context(), idx)
		if err != nil {
			t.Fatalf("Entry(%d): %v", idx, err)
		}
		e, err := event.DecodeLeaf(leaf)
		if err != nil || e.GetEvent().GetEventId() != id {
			t.Errorf("Entry(%d) = %v, %v; want event %s", idx, e, err, id)
		}
	}
}

// TestFollowerRebuild: the index is a pure function of the log. Losing all
// or part of it rebuilds exactly the same records.
func TestFollowerRebuild(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	evIDs := ids("ev", n)
	evs := eventsFor("acme", evIDs)
	l := openLedger(t, dir, func(c *Config) { c.FollowInterval = time.Hour })
	var hashes [][32]byte
	for _, part := range [][]*pb.ProvenanceEvent{evs[:150], evs[150:]} {
		for _, r := range appendAll(t, l, part...) {
			hashes = append(hashes, r.LeafHash)
		}
	}
	if err := l.follow(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := snapshotIndex(t, l.store, "acme", evIDs, hashes)
	if want.Watermark != n || len(want.Records) != n || len(want.Leaves) != n {
		t.Fatalf("index at %d holds %d events and %d leaves, want %d of each", want.Watermark, len(want.Records), len(want.Leaves), n)
	}
	check := func(t *testing.T, s indexStore) {
		t.Helper()
		if diff := cmp.Diff(want, snapshotIndex(t, s, "acme", evIDs, hashes)); diff != "" {
			t.Errorf("rebuilt index differs (-want +got):\n%s", diff)
		}
	}

	// In place: the watermark moves back, the follower passes again over
	// leaves it has recorded, and must leave the records as they were.
	for _, wm := range []uint64{0, 100, 256, 299} {
		t.Run(fmt.Sprintf("watermark reset to %d", wm), func(t *testing.T) {
			if err := l.store.Commit(nil, wm); err != nil {
				t.Fatal(err)
			}
			if err := l.follow(t.Context()); err != nil {
				t.Fatal(err)
			}
			check(t, l.store)
		})
	}
	closeLedger(t, l)

	// From nothing, at Open.
	t.Run("index deleted", func(t *testing.T) {
		if err := os.RemoveAll(indexPath(dir)); err != nil {
			t.Fatal(err)
		}
		l := openLedger(t, dir, func(c *Config) { c.FollowInterval = time.Hour })
		check(t, l.store)
		closeLedger(t, l)
	})

	// From a prefix, at Open: what a pass that died after committing its
	// first records would leave behind.
	t.Run("index holds a prefix", func(t *testing.T) {
		if err := os.RemoveAll(indexPath(dir)); err != nil {
			t.Fatal(err)
		}
		s := openIndexStore(t, indexPath(dir))
		var recs []record
		for _, id := range evIDs {
			if r := want.Records[id]; r.Index < 100 {
				recs = append(recs, r)
			}
		}
		if err := s.Commit(recs, 100); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		l := openLedger(t, dir, func(c *Config) { c.FollowInterval = time.Hour })
		check(t, l.store)
		closeLedger(t, l)
	})
}
