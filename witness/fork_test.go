package witness

import (
	"bytes"
	"math/rand/v2"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestSplitView: two logs with the same origin and key but different
// entries. The witness cosigns one; the other is refused and kept as fork
// evidence, and the first goes on growing.
func TestSplitView(t *testing.T) {
	const origin = "example.com/split"
	skey := newKey(t, origin)
	a := newTestLog(t, origin, skey, "a", 12)
	b := newTestLog(t, origin, skey, "b", 12)
	env := newTestWitness(t, a.config(t))
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)

	steps := []struct {
		body []byte
		want int
	}{
		{a.grow(t, 0, 5), 200},
		{b.grow(t, 0, 5), 409},  // stale old size; same size, other root: evidence
		{b.grow(t, 5, 5), 422},  // same size, other root: evidence
		{b.grow(t, 5, 8), 422},  // b's proof does not lead from a's root: evidence
		{b.grow(t, 0, 8), 409},  // stale and of another size: proves nothing
		{a.grow(t, 5, 12), 200}, // a is unaffected
		{b.grow(t, 5, 12), 409}, // stale, but size 12 has another root: evidence
	}
	var served, served12 string
	for i, s := range steps {
		got := post(t, srv.URL, s.body)
		if got.code != s.want {
			t.Fatalf("step %d: %d %q, want %d", i, got.code, got.body, s.want)
		}
		switch i {
		case 0:
			served = string(a.checkpoint(t, 5)) + got.body
		case 5:
			served12 = string(a.checkpoint(t, 12)) + got.body
		}
	}

	want := []Evidence{
		{Origin: origin, Kind: KindRootMismatch, Cosigned: []byte(served), Submitted: b.checkpoint(t, 5), OldSize: 0},
		{Origin: origin, Kind: KindRootMismatch, Cosigned: []byte(served), Submitted: b.checkpoint(t, 5), OldSize: 5},
		{Origin: origin, Kind: KindBadProof, Cosigned: []byte(served), Submitted: b.checkpoint(t, 8), OldSize: 5, Proof: b.proof(t, 5, 8)},
		{Origin: origin, Kind: KindRootMismatch, Cosigned: []byte(served12), Submitted: b.checkpoint(t, 12), OldSize: 5, Proof: b.proof(t, 5, 12)},
	}
	got, err := env.store.Evidence(t.Context(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Evidence{}, "Time", "Detail")); diff != "" {
		t.Errorf("fork evidence (-want +got):\n%s", diff)
	}
	for i, e := range got {
		if e.Time.IsZero() || e.Detail == "" {
			t.Errorf("evidence %d has no time or detail: %+v", i, e)
		}
	}
	for _, kind := range []string{KindRootMismatch, KindBadProof} {
		wantN := 0
		for _, e := range want {
			if e.Kind == kind {
				wantN++
			}
		}
		if n := counterValue(t, env.reg, "provwitness_forks_detected_total", "origin", origin, "kind", kind); n != float64(wantN) {
			t.Errorf("provwitness_forks_detected_total{kind=%q} = %v, want %d", kind, n, wantN)
		}
	}
	latest, err := env.store.Latest(t.Context(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Size != 12 || !bytes.Equal(latest.Hash, a.root(t, 12)) {
		t.Errorf("witnessed state is size %d root %x, want a's size 12", latest.Size, latest.Hash)
	}
}

// TestConcurrentForks: many clients race to grow two forks of one log.
// Whatever the interleaving, everything the witness cosigns is from one
// history.
func TestConcurrentForks(t *testing.T) {
	const (
		origin  = "example.com/race"
		size    = 40
		clients = 16
		rounds  = 12
	)
	skey := newKey(t, origin)
	histories := []*testLog{newTestLog(t, origin, skey, "a", size), newTestLog(t, origin, skey, "b", size)}
	env := newTestWitness(t, histories[0].config(t))
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)
	cv, err := fnote.NewVerifierForCosignatureV1(env.key.vkey)
	if err != nil {
		t.Fatal(err)
	}

	// Precompute every request a client may send: body[h][old][size].
	type key struct{ h, old, size int }
	bodies := make(map[key][]byte)
	for h, l := range histories {
		for old := 0; old <= size; old++ {
			for sz := old; sz <= size; sz++ {
				bodies[key{h, old, sz}] = l.grow(t, int64(old), int64(sz))
			}
		}
	}

	type cosig struct {
		history, size int
		resp          string
	}
	var (
		mu       sync.Mutex
		cosigned []cosig
		refused  int
		wg       sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			h := c % 2
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			known := 0
			for range rounds {
				target := min(size, known+rng.IntN(4))
				resp := post(t, srv.URL, bodies[key{h, known, target}])
				switch resp.code {
				case 200:
					mu.Lock()
					cosigned = append(cosigned, cosig{h, target, resp.body})
					mu.Unlock()
					known = target
				case 409:
					n, err := strconv.Atoi(strings.TrimSuffix(resp.body, "\n"))
					if err != nil {
						t.Errorf("409 body %q: %v", resp.body, err)
						return
					}
					known = n
				case 422:
					mu.Lock()
					refused++
					mu.Unlock()
				default:
					t.Errorf("client %d: unexpected %d %q", c, resp.code, resp.body)
					return
				}
			}
		})
	}
	wg.Wait()

	// The empty tree belongs to both histories; any other size says which
	// history was cosigned.
	winner, first, maxSize := -1, 0, 0
	for _, c := range cosigned {
		// Each cosignature must verify over the checkpoint it answered.
		cp := histories[c.history].checkpoint(t, int64(c.size))
		if _, err := note.Open(append(cp, c.resp...), note.VerifierList(cv)); err != nil {
			t.Errorf("cosignature for size %d does not verify: %v", c.size, err)
		}
		if c.size == 0 {
			continue
		}
		if winner == -1 {
			winner, first = c.history, c.size
		}
		if c.history != winner {
			t.Fatalf("witness cosigned both histories: %d (size %d) and %d (size %d)", winner, first, c.history, c.size)
		}
		maxSize = max(maxSize, c.size)
	}
	if winner == -1 {
		t.Fatal("no non-empty checkpoint was cosigned")
	}
	latest, err := env.store.Latest(t.Context(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Size != uint64(maxSize) || !bytes.Equal(latest.Hash, histories[winner].root(t, int64(maxSize))) {
		t.Errorf("stored state size %d root %x, want the largest cosigned, %d of history %d", latest.Size, latest.Hash, maxSize, winner)
	}
	evidence, err := env.store.Evidence(t.Context(), origin)
	if err != nil {
		t.Fatal(err)
	}
	if refused == 0 || len(evidence) < refused {
		t.Errorf("%d forks refused with 422, %d pieces of evidence: want some, and evidence for each", refused, len(evidence))
	}
	t.Logf("history %d won: %d cosignatures up to size %d, %d forks refused, %d evidence records",
		winner, len(cosigned), maxSize, refused, len(evidence))
}
