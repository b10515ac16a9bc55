package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testLog is a log built with golang.org/x/mod/sumdb/tlog, independently of
// the merkle package the witness verifies proofs with.
type testLog struct {
	origin string
	signer note.Signer
	vkey   string
	hashes []tlog.Hash // tlog's stored hashes
	size   int64
}

// newTestLog returns a log of size leaves "<prefix><i>", signing with skey
// (a fresh key if empty).
func newTestLog(t testing.TB, origin, skey, prefix string, size int64) *testLog {
	t.Helper()
	vkey := ""
	if skey == "" {
		var err error
		skey, vkey, err = note.GenerateKey(rand.Reader, origin)
		if err != nil {
			t.Fatal(err)
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if vkey == "" {
		vkey = vkeyOf(t, skey)
	}
	l := &testLog{origin: origin, signer: signer, vkey: vkey}
	for i := range size {
		l.append(t, fmt.Appendf(nil, "%s%d", prefix, i))
	}
	return l
}

// vkeyOf derives the verifier key of an Ed25519 note signer key.
func vkeyOf(t testing.TB, skey string) string {
	t.Helper()
	parts := strings.SplitN(skey, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(parts) != 5 || raw[0] != 1 {
		t.Fatalf("unexpected skey %q", skey)
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func (l *testLog) append(t testing.TB, leaf []byte) {
	t.Helper()
	hs, err := tlog.StoredHashes(l.size, leaf, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	l.hashes = append(l.hashes, hs...)
	l.size++
}

func (l *testLog) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = l.hashes[x]
		}
		return out, nil
	})
}

func (l *testLog) verifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(l.vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (l *testLog) config(t testing.TB) Log {
	return Log{Origin: l.origin, Verifiers: []note.Verifier{l.verifier(t)}}
}

func (l *testLog) root(t testing.TB, size int64) []byte {
	t.Helper()
	if size == 0 {
		h := sha256.Sum256(nil)
		return h[:]
	}
	h, err := tlog.TreeHash(size, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	return h[:]
}

func (l *testLog) proof(t testing.TB, old, size int64) [][]byte {
	t.Helper()
	if old == 0 || old == size {
		return nil
	}
	p, err := tlog.ProveTree(size, old, l.reader())
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

func (l *testLog) text(t testing.TB, size int64) string {
	return fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(l.root(t, size)))
}

func (l *testLog) checkpoint(t testing.TB, size int64) []byte {
	t.Helper()
	return signText(t, l.text(t, size), l.signer)
}

func signText(t testing.TB, text string, signers ...note.Signer) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: text}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// addBody formats an add-checkpoint request body.
func addBody(old int64, proof [][]byte, cp []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "old %d\n", old)
	for _, h := range proof {
		fmt.Fprintf(&b, "%s\n", base64.StdEncoding.EncodeToString(h))
	}
	b.WriteString("\n")
	b.Write(cp)
	return b.Bytes()
}

// grow is the add-checkpoint body taking l from old to size.
func (l *testLog) grow(t testing.TB, old, size int64) []byte {
	return addBody(old, l.proof(t, old, size), l.checkpoint(t, size))
}

// witnessKey is a witness identity, with its raw public key for verifying
// cosignatures straight from the spec.
type witnessKey struct {
	name  string
	skey  string
	pub   ed25519.PublicKey
	vkey  string // cosignature/v1 vkey (type 0x04)
	nvkey string // plain Ed25519 note vkey (type 0x01)
}

func newWitnessKey(t testing.TB, name string) witnessKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return witnessKey{name: name, skey: skey, pub: raw[1:], vkey: cvkey, nvkey: vkey}
}

func (k witnessKey) signer(t testing.TB) note.Signer {
	t.Helper()
	s, err := fnote.NewSignerForCosignatureV1(k.skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkCosignature verifies a cosignature/v1 line over text following
// c2sp.org/tlog-cosignature directly, and returns its timestamp.
func (k witnessKey) checkCosignature(t testing.TB, text string, line []byte) uint64 {
	t.Helper()
	rest, ok := bytes.CutPrefix(line, []byte("— "+k.name+" "))
	if !ok || !bytes.HasSuffix(rest, []byte("\n")) || bytes.Count(rest, []byte("\n")) != 1 {
		t.Fatalf("cosignature %q is not one signature line from %q", line, k.name)
	}
	sig, err := base64.StdEncoding.DecodeString(string(bytes.TrimSuffix(rest, []byte("\n"))))
	if err != nil {
		t.Fatalf("cosignature %q: %v", line, err)
	}
	if len(sig) != 4+8+ed25519.SignatureSize {
		t.Fatalf("cosignature is %d bytes, want 4+8+64", len(sig))
	}
	id := sha256.Sum256(append([]byte(k.name+"\n\x04"), k.pub...))
	if !bytes.Equal(sig[:4], id[:4]) {
		t.Errorf("key ID %x, want %x", sig[:4], id[:4])
	}
	ts := binary.BigEndian.Uint64(sig[4:12])
	if ts == 0 {
		t.Errorf("cosignature timestamp is zero")
	}
	msg := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, text)
	if !ed25519.Verify(k.pub, []byte(msg), sig[12:]) {
		t.Errorf("cosignature does not verify over %q", msg)
	}
	return ts
}

type testEnv struct {
	w     *Witness
	store *BoltStore
	key   witnessKey
	reg   *prometheus.Registry
	url   string // base URL of an httptest server, if started
}

// newTestWitness returns a witness over a fresh bbolt store in t.TempDir().
func newTestWitness(t testing.TB, logs ...Log) *testEnv {
	t.Helper()
	store, err := OpenBoltStore(filepath.Join(t.TempDir(), "witness.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key := newWitnessKey(t, "witness.example/w1")
	reg := prometheus.NewRegistry()
	w, err := New(Config{
		Signer:     key.signer(t),
		Logs:       logs,
		Store:      store,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{w: w, store: store, key: key, reg: reg}
}

type response struct {
	code int
	ct   string
	body string
}

func post(t testing.TB, url string, body []byte) response {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return readResponse(t, resp)
}

func get(t testing.TB, url string) response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return readResponse(t, resp)
}

func readResponse(t testing.TB, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: string(b)}
}

// counterValue reads a counter from reg; labels are name, value pairs.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[string]string)
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			got := make(map[string]string)
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
