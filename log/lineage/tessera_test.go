package lineage

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// tessera's LogReader is a Source.
var _ Source = tessera.LogReader(nil)

// TestTesseraPosixLog indexes a real tessera POSIX log as it grows (a
// partial entry bundle, then across a bundle boundary), and compares it
// with the index of the same leaves served from memory.
func TestTesseraPosixLog(t *testing.T) {
	if testing.Short() {
		t.Skip("appends to a tessera log")
	}
	ctx := t.Context()
	skey, _, err := note.GenerateKey(rand.Reader, "provlog.test/lineage")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := posix.New(ctx, posix.Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(100*time.Millisecond).
		WithBatching(64, 10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown(sctx)
	})

	f := sampleFeed(t)
	g := synth{tenants: 2}
	for i := uint64(0); i < 300; i++ {
		l, err := g.leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		f.leaves = append(f.leaves, l)
		f.nums = append(f.nums, 0)
		f.tenant = append(f.tenant, g.event(i).GetTenant())
	}
	ix, err := Open(ctx, openStore(t, t.TempDir()), reader, Options{PassSize: 50, Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	inLog := make([][]byte, len(f.leaves)) // by tessera's index
	added := 0
	for _, upTo := range []int{10, 24, 200, len(f.leaves)} {
		var futures []tessera.IndexFuture
		for _, l := range f.leaves[added:upTo] {
			futures = append(futures, appender.Add(ctx, tessera.NewEntry(l)))
		}
		for j, fu := range futures {
			idx, err := fu()
			if err != nil {
				t.Fatal(err)
			}
			inLog[idx.Index] = f.leaves[added+j]
		}
		added = upTo
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, err := reader.IntegratedSize(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == uint64(upTo) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("integrated size %d, want %d", n, upTo)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := ix.CatchUp(ctx); err != nil {
			t.Fatalf("CatchUp at %d: %v", upTo, err)
		}
		if ix.Watermark() != uint64(upTo) {
			t.Fatalf("watermark %d, want %d", ix.Watermark(), upTo)
		}
	}
	mem := &memSource{}
	mem.add(inLog...)
	want := openIndex(t, mem, Options{})
	_, wd, _ := want.Digest(ctx)
	size, gd := checkedDigest(t, ix)
	if size != uint64(len(f.leaves)) || gd != wd {
		t.Errorf("index of the tessera log: %d %x; of the same leaves in memory: %x", size, gd, wd)
	}
	for _, at := range []uint64{256} {
		a, err1 := ix.DigestAt(ctx, at)
		b, err2 := want.DigestAt(ctx, at)
		if err1 != nil || err2 != nil || a != b {
			t.Errorf("DigestAt(%d): %x %v, %x %v", at, a, err1, b, err2)
		}
	}
	if d := cmp.Diff(want.GapCounts(), ix.GapCounts()); d != "" {
		t.Errorf("gap counts (-memory +tessera):\n%s", d)
	}
}
