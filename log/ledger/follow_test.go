package ledger

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/event"
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

// ackedFile is where the crash helper writes the indices it was given.
const ackedFile = "acked.json"

// TestCrashHelper is run as a child process by TestCrashBetweenSequencingAndIndexing.
// It appends, lets the follower index the first part only, and dies by
// SIGKILL: no Close, no final follow pass, no deferred anything.
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
	acked := map[string]uint64{}
	record := func(prefix string, n int) {
		evs := eventsFor("acme", ids(prefix, n))
		for i, r := range appendAll(t, l, evs...) {
			acked[evs[i].GetEventId()] = r.Index
		}
	}
	record("indexed", 20)
	if err := l.follow(t.Context()); err != nil {
		t.Fatal(err)
	}
	record("unindexed", 280)
	// Make the acknowledgements durable, as a client's log would be.
	b, _ := json.Marshal(acked)
	if err := os.WriteFile(filepath.Join(dir, ackedFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute)
}

// TestCrashBetweenSequencingAndIndexing kills a process that holds
// acknowledged but unindexed entries, then opens the directory again.
//
// A second Ledger on the same directory in this process could not stand in
// for the crash: bbolt flocks index.db per open file description, so a
// second Open would wait out its 5s timeout and fail while the first
// Ledger holds it, and closing the first store is already a clean shutdown
// of the index. A child process killed with SIGKILL is a real crash.
func TestCrashBetweenSequencingAndIndexing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	// Make the keys here so both processes share them.
	testConfig(t, dir)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper did not die by SIGKILL: %v\n%s", err, out.Bytes())
	}
	b, err := os.ReadFile(filepath.Join(dir, ackedFile))
	if err != nil {
		t.Fatalf("helper wrote no acknowledgements: %v\n%s", err, out.Bytes())
	}
	var acked map[string]uint64
	if err := json.Unmarshal(b, &acked); err != nil {
		t.Fatal(err)
	}
	if len(acked) != 300 {
		t.Fatalf("%d acknowledgements, want 300", len(acked))
	}

	// The crash left the index behind the log: only the first pass is in it.
	before := dumpIndex(t, indexPath(dir))
	if got, want := len(before["events"]), 20; got != want {
		t.Fatalf("index holds %d events before reopening, want %d", got, want)
	}

	l := openLedger(t, dir, nil)
	wm, err := l.store.Watermark()
	if err != nil || wm != 300 {
		t.Fatalf("Watermark after reopen = %d, %v; want 300", wm, err)
	}
	checkIndexed(t, l, acked)
	if got := integratedSize(t, l); got != 300 {
		t.Errorf("integrated size = %d, want 300: an acknowledged event was appended again", got)
	}
	// Every acknowledged event is in the log, byte for byte what its
	// leaf hash says.
	awaitSize(t, l, 300)
	for id, idx := range acked {
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
// or part of it and reopening rebuilds exactly the same records.
func TestFollowerRebuild(t *testing.T) {
	dir := t.TempDir()
	l := openLedger(t, dir, nil)
	const n = 300
	evs := eventsFor("acme", ids("ev", n))
	appendAll(t, l, evs[:150]...)
	appendAll(t, l, evs[150:]...)
	closeLedger(t, l)
	want := dumpIndex(t, indexPath(dir))
	if len(want["events"]) != n || len(want["leaves"]) != n {
		t.Fatalf("index holds %d events and %d leaves, want %d", len(want["events"]), len(want["leaves"]), n)
	}

	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T)
	}{
		{name: "watermark reset to 0", break_: func(t *testing.T) {
			s, err := openBoltStore(indexPath(dir))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Commit(nil, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "index deleted", break_: func(t *testing.T) {
			if err := os.Remove(indexPath(dir)); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "index holds a prefix", break_: func(t *testing.T) {
			// What a pass that died after committing the first bundle
			// would leave: the records below 100, watermark 100.
			if err := os.Remove(indexPath(dir)); err != nil {
				t.Fatal(err)
			}
			writeIndex(t, indexPath(dir), want, 100)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_(t)
			l := openLedger(t, dir, nil)
			if wm, err := l.store.Watermark(); err != nil || wm != n {
				t.Errorf("Watermark = %d, %v; want %d", wm, err, n)
			}
			closeLedger(t, l)
			if diff := cmp.Diff(want, dumpIndex(t, indexPath(dir))); diff != "" {
				t.Errorf("rebuilt index differs (-want +got):\n%s", diff)
			}
		})
	}
}

// writeIndex writes the records of dump below watermark, and watermark,
// into a new index store at path.
func writeIndex(t *testing.T, path string, dump map[string]map[string]string, watermark uint64) {
	t.Helper()
	s, err := openBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var recs []record
	for k, v := range dump["events"] {
		key, val := mustHex(t, k), mustHex(t, v)
		r := record{Key: string(key), Index: binary.BigEndian.Uint64(val[:8])}
		copy(r.LeafHash[:], val[8:40])
		copy(r.Digest[:], val[40:])
		if r.Index < watermark {
			recs = append(recs, r)
		}
	}
	if len(recs) != int(watermark) {
		t.Fatalf("%d records below %d", len(recs), watermark)
	}
	if err := s.Commit(recs, watermark); err != nil {
		t.Fatal(err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
