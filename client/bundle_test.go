package client

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

const goldenBundle = "testdata/bundles/trace.json"

// fixedCosigner is a C2SP cosignature/v1 Ed25519 signer with a fixed
// timestamp, so that golden bundles regenerate byte for byte.
type fixedCosigner struct {
	name string
	key  ed25519.PrivateKey
	ts   uint64
}

func (s fixedCosigner) Name() string { return s.name }

func (s fixedCosigner) KeyHash() uint32 {
	h := sha256.New()
	h.Write([]byte(s.name + "\n"))
	h.Write([]byte{0x04})
	h.Write(s.key.Public().(ed25519.PublicKey))
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func (s fixedCosigner) Sign(msg []byte) ([]byte, error) {
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", s.ts, msg)
	return append(binary.BigEndian.AppendUint64(nil, s.ts), ed25519.Sign(s.key, m)...), nil
}

func (s fixedCosigner) vkey() string {
	pub := append([]byte{0x04}, s.key.Public().(ed25519.PublicKey)...)
	return fmt.Sprintf("%s+%08x+%s", s.name, s.KeyHash(), base64.StdEncoding.EncodeToString(pub))
}

// deterministicServer is a fakeServer (not listening) whose keys and
// signatures are the same on every run.
func deterministicServer(t *testing.T) *fakeServer {
	t.Helper()
	random := rand.NewChaCha8([32]byte{'p', 'r', 'o', 'v', 'l', 'o', 'g'})
	l := newTestLogFrom(t, random)
	seed := make([]byte, ed25519.SeedSize)
	random.Read(seed)
	w := fixedCosigner{name: "witness.example", key: ed25519.NewKeyFromSeed(seed), ts: 1790000000}
	f := &fakeServer{t: t, l: l, size: int64(len(l.leaves)), appended: map[string]uint64{}}
	f.wit = []testWitness{{name: w.name, cosig: w, vkey: w.vkey()}}
	f.policy = []byte("witness w1 " + w.vkey() + "\nquorum w1\n")
	return f
}

var bundleTime = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func goldenTraceBundle(t *testing.T, f *fakeServer) []byte {
	t.Helper()
	req := &pb.TraceRequest{Tenant: "acme", Start: &pb.TraceRequest_EventId{EventId: f.l.events[1].GetEventId()}, Direction: pb.Direction_DIRECTION_UPSTREAM}
	bu, err := TraceBundle(req, f.traceAnswer(1), f.clientPolicy(t), bundleTime)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bu.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenBundle pins the bundle format: the committed bundle verifies
// against the committed log key, and building it again gives the same
// bytes (go test ./client -run GoldenBundle -update rewrites it).
func TestGoldenBundle(t *testing.T) {
	f := deterministicServer(t)
	got := goldenTraceBundle(t, f)
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenBundle), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenBundle, got, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(filepath.Dir(goldenBundle), "log.pub"), []byte(f.l.vkey+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenBundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("building the golden bundle again gives other bytes; run go test ./client -run GoldenBundle -update and review the diff")
	}
	key, err := os.ReadFile(filepath.Join(filepath.Dir(goldenBundle), "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := ParsePolicy(string(key), f.policy)
	if err != nil {
		t.Fatal(err)
	}
	vb, err := VerifyBundle(want, trusted)
	if err != nil {
		t.Fatal(err)
	}
	if vb.SelfAsserted || vb.Checkpoint.Size != 24 || len(vb.Entries) != 1 || len(vb.Trace.GetEdges()) != 2 {
		t.Errorf("verified bundle: self-asserted %v, size %d, %d entries, %d edges", vb.SelfAsserted, vb.Checkpoint.Size, len(vb.Entries), len(vb.Trace.GetEdges()))
	}
	if vb, err := VerifyBundle(want, nil); err != nil || !vb.SelfAsserted {
		t.Errorf("against its own key: %v, self-asserted %v", err, vb != nil && vb.SelfAsserted)
	}
}

func TestVerifyBundleTampered(t *testing.T) {
	f := deterministicServer(t)
	raw := goldenTraceBundle(t, f)
	trusted := f.clientPolicy(t)
	edit := func(fn func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		fn(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	leaf0 := func(m map[string]any) map[string]any { return m["leaves"].([]any)[0].(map[string]any) }
	flipB64 := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[len(b)-2] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	other := newTestLog(t)
	for _, tc := range []struct {
		name    string
		raw     []byte
		trusted *Policy
		want    string
	}{
		{"untouched", raw, trusted, ""},
		{"leaf edited", edit(func(m map[string]any) { leaf0(m)["leaf"] = flipB64(leaf0(m)["leaf"].(string)) }), trusted, "leaf 1: inclusion proof"},
		{"proof edited", edit(func(m map[string]any) {
			p := leaf0(m)["proof"].([]any)
			p[0] = flipB64(p[0].(string))
		}), trusted, "leaf 1: inclusion proof"},
		{"index moved", edit(func(m map[string]any) { leaf0(m)["index"] = 2 }), trusted, "leaf 2: inclusion proof"},
		{"checkpoint edited", edit(func(m map[string]any) {
			m["checkpoint"] = strings.Replace(m["checkpoint"].(string), "\n24\n", "\n25\n", 1)
		}), trusted, "checkpoint"},
		{"cosignature dropped", edit(func(m map[string]any) {
			cp := m["checkpoint"].(string)
			m["checkpoint"] = cp[:strings.LastIndex(cp[:len(cp)-1], "\n")+1]
		}), trusted, "witness quorum not met"},
		{"another log's key", raw, func() *Policy { p, _ := ParsePolicy(other.vkey, nil); return p }(), "checkpoint"},
		{"trace edge re-pointed", edit(func(m map[string]any) {
			e := m["trace"].(map[string]any)["edges"].([]any)[0].(map[string]any)
			e["kind"] = "EDGE_KIND_OUTPUT"
		}), trusted, "trace: verification failed: edge 0"},
		{"trace node edited", edit(func(m map[string]any) {
			n := m["trace"].(map[string]any)["nodes"].([]any)[1].(map[string]any)
			n["actorId"] = "mallory"
		}), trusted, "actor \"mallory\""},
		{"subject not in the trace", edit(func(m map[string]any) {
			m["subject"].(map[string]any)["event_id"] = "some-other-event"
		}), trusted, "no node is the subject's start"},
		{"unknown field", edit(func(m map[string]any) { m["extra"] = 1 }), trusted, "unknown field"},
		{"wrong format", edit(func(m map[string]any) { m["format"] = "v0" }), trusted, "format"},
		{"no leaves", edit(func(m map[string]any) { m["leaves"] = []any{} }), trusted, "no leaves"},
		{"trailing data", append(bytes.Clone(raw), "{}"...), trusted, "data after the bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundle(tc.raw, tc.trusted)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("tampered bundle verified")
			case !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want one wrapping ErrVerification saying %q", err, tc.want)
			}
		})
	}
}

func TestRunAndEntriesBundles(t *testing.T) {
	f := newFakeServer(t, 1)
	c := f.newClient(t, nil)
	ev := f.l.events[0]
	run, err := c.RunEvents(t.Context(), ev.GetTenant(), ev.GetWorkflow().GetRunId())
	if err != nil {
		t.Fatal(err)
	}
	bu, err := RunBundle(ev.GetTenant(), ev.GetWorkflow().GetRunId(), run, c.Policy(), bundleTime)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bu.Marshal()
	vb, err := VerifyBundle(b, c.Policy())
	if err != nil || len(vb.Run.GetEvents()) != len(run.GetEvents()) || len(run.GetEvents()) < 2 {
		t.Fatalf("run bundle: %v (%d events)", err, len(run.GetEvents()))
	}
	// Claiming the events belong to another run fails.
	bu.Subject.RunID = "another-run"
	b, _ = bu.Marshal()
	if _, err := VerifyBundle(b, c.Policy()); err == nil || !strings.Contains(err.Error(), "not of run \"another-run\"") {
		t.Errorf("run bundle for another run: %v", err)
	}

	// Both entries are proven into the fake's one published checkpoint.
	e1, err := c.GetEntry(t.Context(), 3)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := c.GetEntry(t.Context(), 9)
	if err != nil {
		t.Fatal(err)
	}
	bu, err = EntriesBundle([]*VerifiedEntry{e1, e2}, c.Policy(), bundleTime)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ = bu.Marshal(); true {
		if vb, err := VerifyBundle(b, c.Policy()); err != nil || len(vb.Entries) != 2 {
			t.Errorf("entries bundle: %v", err)
		}
	}
}

func FuzzParseBundle(f *testing.F) {
	if b, err := os.ReadFile(goldenBundle); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"format":"provlog-evidence-bundle/v1","leaves":[{"index":1,"leaf":"AA==","proof":["AA=="]}],"trace":{"nodes":[{}]}}`))
	f.Add([]byte(`{}`))
	key := "example.com/provlog-test+8f2c6b4a+AQQtIbHVXY3mB0w66nnZ3hWHUyGWLtMG8fnyEWWsGx8s"
	p, err := ParsePolicy(key, nil)
	if err != nil {
		p = nil
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bu, err := ParseBundle(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedBundle) {
				t.Fatalf("ParseBundle error %v does not wrap ErrMalformedBundle", err)
			}
			return
		}
		if _, err := bu.Marshal(); err != nil {
			t.Fatalf("a parsed bundle does not marshal: %v", err)
		}
		if _, err := VerifyBundle(b, p); err != nil && !errors.Is(err, ErrVerification) {
			t.Fatalf("VerifyBundle error %v does not wrap ErrVerification", err)
		}
		VerifyBundle(b, nil)
	})
}
