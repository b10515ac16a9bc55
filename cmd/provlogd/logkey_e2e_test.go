package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestCheckpointKeyRotation: with --log-next-key every checkpoint carries
// the old and the new key's signatures, so clients trusting either accept
// it; after the overlap the new key becomes log.key, and its checkpoints
// are consistent with those signed by the old key alone.
func TestCheckpointKeyRotation(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	nextKey := filepath.Join(t.TempDir(), "next.key")
	_, _, samples := loadSamples(t)
	appendN := func(d *daemon, id string) {
		t.Helper()
		ev := samples[0]
		ev.EventId = id
		if _, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED}); err != nil {
			t.Fatal(err)
		}
	}
	raw := func(d *daemon) []byte {
		t.Helper()
		code, b := d.get("/log/checkpoint")
		if code != http.StatusOK {
			t.Fatalf("GET /log/checkpoint: %d", code)
		}
		return b
	}
	verifierFile := func(p string) note.Verifier {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		v, err := note.NewVerifier(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	d := startDaemon(t, dataDir)
	appendN(d, "rotation-1")
	oldV := d.verifier()
	cp1 := openCheckpoint(t, oldV, raw(d))
	d.stop()

	// Overlap: both keys sign.
	d = startDaemon(t, dataDir, "--log-next-key", nextKey)
	appendN(d, "rotation-2")
	newV := verifierFile(nextKey + ".pub")
	both := raw(d)
	openCheckpoint(t, oldV, both)
	openCheckpoint(t, newV, both)
	d.stop()

	// After the overlap: the new key is log.key, the old one is gone.
	for src, dst := range map[string]string{nextKey: "log.key", nextKey + ".pub": "log.pub"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	d = startDaemon(t, dataDir)
	appendN(d, "rotation-3")
	last := raw(d)
	cp3 := openCheckpoint(t, newV, last)
	if _, err := note.Open(last, note.VerifierList(oldV)); err == nil {
		t.Error("a checkpoint after the overlap verifies under the retired key")
	}
	// Consistent with the checkpoint the old key alone signed.
	c, err := d.client().GetConsistencyProof(d.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(cp1.size), ToSize: uint64(cp3.size)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(hashes(t, c.GetProof()), cp3.size, cp3.root, cp1.size, cp1.root); err != nil {
		t.Fatalf("rotation broke consistency: %v", err)
	}
	d.stop()

	// A next key for another origin is refused.
	other := filepath.Join(t.TempDir(), "other.key")
	sk, _, _ := note.GenerateKey(nil, "other.example/log")
	os.WriteFile(other, []byte(sk+"\n"), 0o600)
	os.WriteFile(other+".pub", []byte("x\n"), 0o644)
	failStart(t, dataDir, "a rotated key keeps the origin", "--log-next-key", other)
}
