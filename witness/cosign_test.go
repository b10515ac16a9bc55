package witness

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// TestCosignatureVerifiesWithTesseraVerifier checks the response the way
// tessera v1.0.x's witness client does: append it to the submitted
// checkpoint and open the note with formats/note's cosignature/v1 verifier
// built from the witness's vkey.
func TestCosignatureVerifiesWithTesseraVerifier(t *testing.T) {
	l := newTestLog(t, "example.com/log", "", "x", 9)
	env := newTestWitness(t, l.config(t))
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)

	v, err := fnote.NewVerifierForCosignatureV1(env.key.vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, sizes := range [][2]int64{{0, 4}, {4, 9}, {9, 9}} {
		cp := l.checkpoint(t, sizes[1])
		before := time.Now().Unix()
		resp := post(t, srv.URL, addBody(sizes[0], l.proof(t, sizes[0], sizes[1]), cp))
		if resp.code != 200 {
			t.Fatalf("old %d size %d: %d %s", sizes[0], sizes[1], resp.code, resp.body)
		}
		n, err := note.Open(append(bytes.Clone(cp), resp.body...), note.VerifierList(v))
		if err != nil {
			t.Fatalf("tessera-style verification failed: %v", err)
		}
		if len(n.Sigs) != 1 || n.Sigs[0].Name != env.key.name || n.Sigs[0].Hash != v.KeyHash() {
			t.Fatalf("verified signatures %+v, want one from %s", n.Sigs, env.key.name)
		}
		ts, err := fnote.CoSigV1Timestamp(n.Sigs[0])
		if err != nil {
			t.Fatal(err)
		}
		if ts.Unix() < before || ts.After(time.Now()) {
			t.Errorf("cosignature time %v not within the request", ts)
		}
		// The plain Ed25519 vkey of the same key must not verify it:
		// cosignatures have their own key ID (type 0x04).
		plain, err := note.NewVerifier(env.key.nvkey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(append(bytes.Clone(cp), resp.body...), note.VerifierList(plain)); err == nil {
			t.Error("cosignature verified as a plain Ed25519 note signature")
		}
	}
}

func TestMonitorCheckpoint(t *testing.T) {
	l := newTestLog(t, "example.com/log", "", "x", 9)
	other := newTestLog(t, "example.com/other", "", "y", 3)
	env := newTestWitness(t, l.config(t), other.config(t))
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)
	url := srv.URL + "/" + originHash(l.origin) + "/checkpoint"

	if got := get(t, url); got.code != 404 {
		t.Errorf("before any cosignature: %d, want 404", got.code)
	}
	stranger, err := note.NewSigner(newKey(t, "stranger.example"))
	if err != nil {
		t.Fatal(err)
	}
	cp := signText(t, l.text(t, 9), l.signer, stranger)
	resp := post(t, srv.URL, addBody(0, nil, cp))
	if resp.code != 200 {
		t.Fatalf("add-checkpoint: %d %s", resp.code, resp.body)
	}
	// The log signature the witness verified and its cosignature; not the
	// signature from the unknown key.
	want := string(l.checkpoint(t, 9)) + resp.body
	got := get(t, url)
	if diff := cmp.Diff(response{code: 200, ct: textPlain, body: want}, got, cmp.AllowUnexported(response{})); diff != "" {
		t.Errorf("GET checkpoint (-want +got):\n%s", diff)
	}
	cv, err := fnote.NewVerifierForCosignatureV1(env.key.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := note.Open([]byte(got.body), note.VerifierList(cv, l.verifier(t))); err != nil || len(n.Sigs) != 2 {
		t.Errorf("served checkpoint does not carry both signatures: %v", err)
	}

	for _, path := range []string{
		"/" + originHash(other.origin) + "/checkpoint",              // known, never cosigned
		"/" + originHash("example.com/nope") + "/checkpoint",        // unknown
		"/" + originHash(l.origin)[:63] + "/checkpoint",             // truncated
		"/" + strings.ToUpper(originHash(l.origin)) + "/checkpoint", // not lowercase
	} {
		if got := get(t, srv.URL+path); got.code != 404 {
			t.Errorf("GET %s = %d, want 404", path, got.code)
		}
	}

	gotLatest, err := env.w.Latest(t.Context(), l.origin)
	if err != nil || string(gotLatest) != want {
		t.Errorf("Latest = %q, %v; want %q", gotLatest, err, want)
	}
	if _, err := env.w.Latest(t.Context(), "example.com/nope"); !errors.Is(err, ErrUnknownOrigin) {
		t.Errorf("Latest(unknown) = %v, want ErrUnknownOrigin", err)
	}
	if _, err := env.w.Latest(t.Context(), other.origin); !errors.Is(err, ErrNotFound) {
		t.Errorf("Latest(never cosigned) = %v, want ErrNotFound", err)
	}
}

// TestMLDSALogKey: a log that signs its checkpoints with an ML-DSA-44
// cosignature-style key, as tlog-checkpoint recommends, is witnessed when
// configured with its vkey.
func TestMLDSALogKey(t *testing.T) {
	const origin = "example.com/pq-log"
	skey, vkey, err := fnote.GenerateMLDSAKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := fnote.NewMLDSASigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l := newTestLog(t, origin, "", "x", 4)
	env := newTestWitness(t, Log{Origin: origin, Verifiers: []note.Verifier{v}})
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)
	if got := post(t, srv.URL, addBody(0, nil, signText(t, l.text(t, 4), signer))); got.code != 200 {
		t.Fatalf("ML-DSA-signed checkpoint: %d %q", got.code, got.body)
	}
	// The Ed25519 key of newTestLog is not trusted for this origin.
	if got := post(t, srv.URL, addBody(4, nil, l.checkpoint(t, 4))); got.code != 403 {
		t.Fatalf("untrusted Ed25519 signature: %d %q, want 403", got.code, got.body)
	}
}
