package witness

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// TestTesseraInterop runs a real tessera v1.0.x POSIX log whose witness
// policy names this witness: tessera's own witness client must get
// cosignatures it accepts, first from old size 0 and then with consistency
// proofs it builds from its tiles.
func TestTesseraInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a tessera log")
	}
	const origin = "example.com/tessera-interop"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	logSigner, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	logVerifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	env := newTestWitness(t, Log{Origin: origin, Verifiers: []note.Verifier{logVerifier}})
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)
	root, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	wit, err := tessera.NewWitness(env.key.vkey, root)
	if err != nil {
		t.Fatalf("tessera rejects witness.pub-style vkey: %v", err)
	}

	ctx := t.Context()
	driver, err := posix.New(ctx, posix.Config{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(logSigner).
		WithCheckpointInterval(100*time.Millisecond).
		WithBatching(64, 10*time.Millisecond).
		WithWitnesses(tessera.NewWitnessGroup(1, wit), &tessera.WitnessOptions{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(ctx) })
	awaiter := tessera.NewPublicationAwaiter(ctx, reader.ReadCheckpoint, 20*time.Millisecond)

	var prevHeld uint64
	for round := range 3 {
		var last tessera.IndexFuture
		for i := range 5 {
			last = appender.Add(ctx, tessera.NewEntry(fmt.Appendf(nil, "round %d entry %d", round, i)))
		}
		idx, cp, err := awaiter.Await(ctx, last)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// The published checkpoint carries our cosignature.
		n, err := note.Open(cp, note.VerifierList(logVerifier))
		if err != nil {
			t.Fatal(err)
		}
		var ours int
		for _, s := range n.UnverifiedSigs {
			if s.Name == env.key.name {
				ours++
			}
		}
		if ours != 1 {
			t.Fatalf("round %d: published checkpoint has %d signatures from the witness, want 1:\n%s", round, ours, cp)
		}
		env.key.checkCosignature(t, n.Text, cosigLine(t, cp, env.key.name))
		held, err := env.store.Latest(ctx, origin)
		if err != nil {
			t.Fatal(err)
		}
		if held.Size <= idx.Index {
			t.Errorf("round %d: witness holds size %d, entry %d not covered", round, held.Size, idx.Index)
		}
		// From the second round on, growth from a non-empty cosigned tree
		// needed a consistency proof that tessera built.
		if held.Size <= prevHeld {
			t.Errorf("round %d: witness holds size %d, not more than %d", round, held.Size, prevHeld)
		}
		prevHeld = held.Size
	}
	if n := counterValue(t, env.reg, "provwitness_http_requests_total", "endpoint", "add-checkpoint", "code", "422"); n != 0 {
		t.Errorf("%v requests from tessera were refused with 422", n)
	}
}

// cosigLine returns the signature line of name in a signed note.
func cosigLine(t *testing.T, signed []byte, name string) []byte {
	t.Helper()
	for _, line := range bytes.SplitAfter(signed, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("— "+name+" ")) {
			return line
		}
	}
	t.Fatalf("no signature from %s in %s", name, signed)
	return nil
}
