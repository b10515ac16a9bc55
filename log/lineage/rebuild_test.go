package lineage

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// contents is every index pair of a store outside the meta keyspace.
func contents(t *testing.T, s Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.Scan(t.Context(), []byte{0}, nil, false, func(k, v []byte) error {
		if k[0] != keyMeta {
			out[string(k)] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkedDigest(t *testing.T, ix *Index) (uint64, [32]byte) {
	t.Helper()
	size, d, err := ix.Digest(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	vs, vd, err := ix.VerifyDigest(t.Context())
	if err != nil {
		t.Fatalf("VerifyDigest: %v", err)
	}
	if vs != size || vd != d {
		t.Fatalf("VerifyDigest gives %d %x, Digest %d %x", vs, vd, size, d)
	}
	return size, d
}

const rebuildSize = 1500

// synthLog is a synthetic log of rebuildSize leaves with two garbage ones.
func synthLog() *synthSource {
	return &synthSource{g: synth{tenants: 3, bad: map[uint64]bool{700: true, 1203: true}}, size: rebuildSize}
}

// TestRebuildEqualsLive indexes a log as it grows, in uneven steps and small
// passes, and compares it with indexes rebuilt from the log alone.
func TestRebuildEqualsLive(t *testing.T) {
	src := synthLog()
	src.setSize(0)
	liveStore := openStore(t, t.TempDir())
	live, err := Open(t.Context(), liveStore, src, Options{PassSize: 100, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint64{1, 37, 255, 256, 300, 511, 513, 1000, 1203, 1204, rebuildSize} {
		src.setSize(n)
		if err := live.CatchUp(t.Context()); err != nil {
			t.Fatalf("CatchUp to %d: %v", n, err)
		}
		if live.Watermark() != n {
			t.Fatalf("watermark %d after catching up to %d", live.Watermark(), n)
		}
	}
	liveSize, liveDigest := checkedDigest(t, live)

	freshStore := openStore(t, t.TempDir())
	fresh, err := Open(t.Context(), freshStore, src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	freshSize, freshDigest := checkedDigest(t, fresh)
	if liveSize != rebuildSize || freshSize != liveSize || freshDigest != liveDigest {
		t.Errorf("live index %d %x, fresh one %d %x", liveSize, liveDigest, freshSize, freshDigest)
	}
	if d := cmp.Diff(contents(t, liveStore), contents(t, freshStore)); d != "" {
		t.Errorf("stored pairs differ (-live +fresh):\n%.2000s", d)
	}
	for _, size := range []uint64{256, 512, 768, 1024, 1280, rebuildSize} {
		a, err := live.DigestAt(t.Context(), size)
		if err != nil {
			t.Fatalf("live DigestAt(%d): %v", size, err)
		}
		b, err := fresh.DigestAt(t.Context(), size)
		if err != nil {
			t.Fatalf("fresh DigestAt(%d): %v", size, err)
		}
		if a != b {
			t.Errorf("DigestAt(%d): live %x, fresh %x", size, a, b)
		}
	}
	// Sizes a live pass ended at are recorded too.
	for _, size := range []uint64{37, 300, 1203} {
		if _, err := live.DigestAt(t.Context(), size); err != nil {
			t.Errorf("live DigestAt(%d): %v", size, err)
		}
	}
	if _, err := live.DigestAt(t.Context(), 1499); !errors.Is(err, ErrQueryNotFound) {
		t.Errorf("DigestAt an unrecorded size: %v, want ErrQueryNotFound", err)
	}
	// The digest changes with the size.
	d1024, _ := live.DigestAt(t.Context(), 1024)
	if d1024 == liveDigest {
		t.Error("digests at 1024 and 1500 are equal")
	}

	// So does an index whose passes end early on their size in bytes.
	small := newIndex(openStore(t, t.TempDir()), src, Options{Logger: testLogger})
	small.passBytes = 20 << 10
	if err := small.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if size, d := checkedDigest(t, small); size != liveSize || d != liveDigest {
		t.Errorf("index in passes of 20KiB: %d %x, want %d %x", size, d, liveSize, liveDigest)
	}
	if _, err := small.DigestAt(t.Context(), 1280); err != nil {
		t.Errorf("DigestAt(1280) of the index in small passes: %v", err)
	}

	// Rebuild in place gives the same again.
	if err := live.Rebuild(t.Context()); err != nil {
		t.Fatal(err)
	}
	if size, d := checkedDigest(t, live); size != liveSize || d != liveDigest {
		t.Errorf("rebuilt in place: %d %x, want %d %x", size, d, liveSize, liveDigest)
	}
	if got := live.GapCounts()[GapUndecodableLeaf]; got != 2 {
		t.Errorf("undecodable leaves counted %d, want 2", got)
	}
	bad, err := live.UndecodableLeaves(t.Context(), 0, 0)
	if err != nil || !cmp.Equal(bad, []uint64{700, 1203}) {
		t.Errorf("UndecodableLeaves = %v, %v", bad, err)
	}
}

// TestDigestDetectsChanges: one changed, added or removed pair changes the
// recomputed digest, which VerifyDigest reports.
func TestDigestDetectsChanges(t *testing.T) {
	src := synthLog()
	for _, tc := range []struct {
		name  string
		tweak func(b *Batch, k []byte)
	}{
		{"changed value", func(b *Batch, k []byte) { b.Set(k, []byte("tampered")) }},
		{"removed pair", func(b *Batch, k []byte) { b.Delete(k) }},
		{"added pair", func(b *Batch, k []byte) { b.Set(append(k, 0), nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			ix, err := Open(t.Context(), s, src, Options{Logger: testLogger})
			if err != nil {
				t.Fatal(err)
			}
			_, before := checkedDigest(t, ix)
			b := &Batch{}
			k := newKey(keyRunMeta).str(synthLog().g.event(809).GetTenant()).str("run-101")
			if _, err := s.Get(t.Context(), k); err != nil {
				t.Fatalf("the pair to tamper with: %v", err)
			}
			tc.tweak(b, k)
			if err := s.Commit(t.Context(), b); err != nil {
				t.Fatal(err)
			}
			_, after, err := ix.VerifyDigest(t.Context())
			if !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("VerifyDigest after tampering: %v, want ErrDigestMismatch", err)
			}
			if after == before {
				t.Error("recomputed digest unchanged")
			}
		})
	}
}

var errCrash = errors.New("simulated crash")

// TestCrashMidIndexing stops indexing at a pass, as a crash would (nothing
// of the pass is committed), reopens the store and catches up: the result
// equals a fresh rebuild.
func TestCrashMidIndexing(t *testing.T) {
	src := synthLog()
	fresh, err := Open(t.Context(), openStore(t, t.TempDir()), src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	_, want := checkedDigest(t, fresh)

	for _, tc := range []struct {
		name string
		// crash arranges for indexing to stop; it returns the watermark
		// expected after the crash.
		crash func(ix *Index, src *synthSource) uint64
	}{
		{"before the commit of the fourth pass", func(ix *Index, src *synthSource) uint64 {
			ix.beforeCommit = func(end uint64) error {
				if end > 3*128 {
					return errCrash
				}
				return nil
			}
			return 3 * 128
		}},
		{"reading the log mid-pass", func(ix *Index, src *synthSource) uint64 {
			src.failBundle = func(index uint64) error {
				if index == 4 {
					return errCrash
				}
				return nil
			}
			return 8 * 128
		}},
		{"at the first pass", func(ix *Index, src *synthSource) uint64 {
			ix.beforeCommit = func(end uint64) error { return errCrash }
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := OpenPebbleStore(filepath.Join(dir, "index"), testLogger)
			if err != nil {
				t.Fatal(err)
			}
			flaky := synthLog()
			ix := newIndex(s, flaky, Options{PassSize: 128, Logger: testLogger})
			wantWM := tc.crash(ix, flaky)
			if err := ix.CatchUp(t.Context()); !errors.Is(err, errCrash) {
				t.Fatalf("CatchUp: %v, want the crash", err)
			}
			if ix.Watermark() != wantWM {
				t.Errorf("watermark %d after the crash, want %d", ix.Watermark(), wantWM)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openStore(t, filepath.Join(dir, "index"))
			ix, err = Open(t.Context(), s, synthLog(), Options{PassSize: 128, Logger: testLogger})
			if err != nil {
				t.Fatal(err)
			}
			if size, got := checkedDigest(t, ix); size != rebuildSize || got != want {
				t.Errorf("after the crash and catching up: %d %x, fresh rebuild %x", size, got, want)
			}
		})
	}
}

func TestIndexAheadOfLog(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if _, err := Open(t.Context(), s, synthLog(), Options{Logger: testLogger}); err != nil {
		t.Fatal(err)
	}
	short := synthLog()
	short.setSize(100)
	if _, err := Open(t.Context(), s, short, Options{Logger: testLogger}); !errors.Is(err, ErrIndexAhead) {
		t.Errorf("Open over a shorter log: %v, want ErrIndexAhead", err)
	}
}

// TestFormatChangeRebuilds: an index written in another format is rebuilt
// on Open.
func TestFormatChangeRebuilds(t *testing.T) {
	src := synthLog()
	s := openStore(t, t.TempDir())
	ix, err := Open(t.Context(), s, src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	_, want := checkedDigest(t, ix)
	b := &Batch{}
	b.Set(metaKey(metaFormat), binary.BigEndian.AppendUint64(nil, formatVersion+1))
	b.Set(newKey(keyEvent).u64(5), []byte("stale data of the old format"))
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	ix, err = Open(t.Context(), s, src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	if _, got := checkedDigest(t, ix); got != want {
		t.Errorf("after the rebuild %x, want %x", got, want)
	}
}

// TestRun follows a growing log.
func TestRun(t *testing.T) {
	src := synthLog()
	src.setSize(10)
	var gaps []Gap
	ix, err := Open(t.Context(), openStore(t, t.TempDir()), src, Options{PollInterval: 5 * time.Millisecond, Logger: testLogger, OnGap: func(g Gap) { gaps = append(gaps, g) }})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Watermark() != 10 {
		t.Fatalf("Open caught up to %d, want 10", ix.Watermark())
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	for _, n := range []uint64{11, 300, 701, rebuildSize} {
		src.setSize(n)
		deadline := time.Now().Add(20 * time.Second)
		for ix.Watermark() != n {
			if time.Now().After(deadline) {
				t.Fatalf("Run did not reach %d (at %d)", n, ix.Watermark())
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v", err)
	}
	// Leaves 700 and 1203 are garbage: the staging steps 4 of run 87 and 3
	// of run 150, whose outputs the next steps of their runs then read
	// unproduced.
	var got []string
	for _, g := range gaps {
		got = append(got, fmt.Sprintf("%s %v", g.Kind, g.Leaves))
	}
	want := []string{"undecodable_leaf [700]", "unproduced_input [701]", "unproduced_input [702]", "undecodable_leaf [1203]", "unproduced_input [1204]"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("gaps reported (-want +got):\n%s", d)
	}
}

// TestKilledMidIndexing runs the indexer in a child process, kills it with
// SIGKILL while it indexes, twice, and catches up from what it left on
// disk: the result equals a fresh rebuild.
func TestKilledMidIndexing(t *testing.T) {
	if os.Getenv("LINEAGE_CRASH_CHILD") != "" {
		t.Skip("in the child")
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	src := &synthSource{g: synth{tenants: 3}, size: crashChildSize}
	fresh, err := Open(t.Context(), openStore(t, t.TempDir()), src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	_, want := checkedDigest(t, fresh)

	dir := filepath.Join(t.TempDir(), "index")
	for _, after := range []uint64{1024, 3072} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "LINEAGE_CRASH_CHILD="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it as soon as it reports having indexed past after: it is
		// then in the middle of its next pass.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var n uint64
			if _, err := fmt.Sscanf(sc.Text(), "indexed %d", &n); err == nil && n >= after {
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		s, err := OpenPebbleStore(dir, testLogger)
		if err != nil {
			t.Fatal(err)
		}
		wm, _, err := newIndex(s, src, Options{}).metaU64(t.Context(), metaWatermark)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Commits are not synced (Store contract): the kill may lose the
		// latest ones, so the watermark may be below what the child
		// reported. It must still be short of the end, or the kill did not
		// land mid-indexing.
		if wm >= crashChildSize {
			t.Errorf("child killed at watermark %d, want it below %d", wm, crashChildSize)
		}
		t.Logf("child killed at watermark %d", wm)
	}
	s := openStore(t, dir)
	ix, err := Open(t.Context(), s, src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	if got, d := checkedDigest(t, ix); got != crashChildSize || d != want {
		t.Errorf("after the kills and catching up: %d %x, fresh rebuild %x", got, d, want)
	}
}

const crashChildSize = 6000

// TestCrashChild is the child of TestKilledMidIndexing: it indexes a
// growing log, reporting each pass, until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LINEAGE_CRASH_CHILD")
	if dir == "" {
		t.Skip("only as the child of TestKilledMidIndexing")
	}
	s, err := OpenPebbleStore(dir, testLogger)
	if err != nil {
		t.Fatal(err)
	}
	wm, _, err := newIndex(s, nil, Options{}).metaU64(context.Background(), metaWatermark)
	if err != nil {
		t.Fatal(err)
	}
	src := &synthSource{g: synth{tenants: 3}, size: wm} // the log as far as the last run got
	ix, err := Open(context.Background(), s, src, Options{PassSize: 128, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	for n := ix.Watermark() + 128; n <= crashChildSize; n += 128 {
		src.setSize(n)
		if err := ix.CatchUp(context.Background()); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("indexed %d\n", n)
	}
	time.Sleep(time.Minute) // wait to be killed
}

// TestPassBoundariesDoNotMatter indexes logs full of gaps that open and
// close (steps missing, runs out of order) in passes of many sizes: the
// digests are equal at every size, so the state is a function of the log
// alone.
func TestPassBoundariesDoNotMatter(t *testing.T) {
	feeds := gapFeeds(t)
	for name, f := range feeds {
		t.Run(name, func(t *testing.T) {
			var want [][32]byte
			for _, passSize := range []int{1000, 1, 2, 3, 5, 7} {
				src := f.source()
				ix := openIndex(t, src, Options{PassSize: passSize})
				var got [][32]byte
				for n := uint64(1); n <= uint64(len(f.leaves)); n++ {
					d, err := ix.DigestAt(t.Context(), n)
					if err != nil {
						if passSize != 1 {
							continue
						}
						t.Fatal(err)
					}
					got = append(got, d)
				}
				if passSize == 1000 {
					// Only the last size is recorded; rebuild one leaf at a
					// time for every size.
					continue
				}
				if passSize == 1 {
					want = got
					if _, d := checkedDigest(t, ix); d != got[len(got)-1] {
						t.Fatalf("digest %x, DigestAt the watermark %x", d, got[len(got)-1])
					}
					continue
				}
				// The sizes this index recorded: multiples of its pass size
				// and the end.
				for n := uint64(1); n <= uint64(len(f.leaves)); n++ {
					d, err := ix.DigestAt(t.Context(), n)
					if err != nil {
						continue
					}
					if d != want[n-1] {
						t.Errorf("pass size %d: digest at %d differs from the one-leaf-at-a-time index", passSize, n)
					}
				}
			}
		})
	}
}

// gapFeeds are small logs full of gaps that open and close: steps missing,
// runs and approvals before what they name, inputs read from a location
// before its first producer.
func gapFeeds(t *testing.T) map[string]*feed {
	t.Helper()
	feeds := map[string]*feed{
		"missing transform": sampleFeed(t, 13),
		"missing run A":     sampleFeed(t, 1, 2, 3, 4, 5, 6, 7, 8, 9, 18),
	}
	byNum := map[int]sample{}
	for _, s := range samples(t) {
		byNum[s.n] = s
	}
	rev := &feed{}
	for n := 24; n >= 1; n-- {
		if n != 13 {
			rev.add(t, byNum[n])
		}
	}
	feeds["reversed"] = rev
	// Inputs read from a location before its first producer, in an order
	// that is not their key order.
	late := &feed{}
	mk := func(n int, op provlogv1.Operation, in, out []*provlogv1.Asset) {
		late.add(t, sample{n: n, e: &provlogv1.ProvenanceEvent{
			SchemaVersion: 1, EventId: fmt.Sprintf("e%d", n), Tenant: "acme", Operation: op,
			EventTime: timestamppb.New(testReceived),
			Actor:     &provlogv1.Actor{Type: provlogv1.ActorType_ACTOR_TYPE_SERVICE, Id: "svc"},
			Workflow:  &provlogv1.Workflow{Platform: "custom", RunId: "run-1"},
			Inputs:    in, Outputs: out,
		}})
	}
	read := provlogv1.Operation_OPERATION_READ
	mk(1, read, []*provlogv1.Asset{{Uri: "db://x/t1", Version: "v2"}}, nil)
	mk(2, read, []*provlogv1.Asset{{Uri: "db://x/t1", Version: "v1"}}, nil)
	mk(3, read, []*provlogv1.Asset{{Uri: "db://x/t0", Version: "v9"}}, nil)
	mk(4, provlogv1.Operation_OPERATION_WRITE, nil, []*provlogv1.Asset{{Uri: "db://x/other", Version: "v"}})
	feeds["candidates judged late"] = late
	return feeds
}
