package witness

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"
)

func newKey(t testing.TB, name string) string {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

// step is one add-checkpoint request and the response the spec demands.
type step struct {
	body []byte
	code int
	// ct is the expected Content-Type.
	ct string
	// body409 is the exact expected body of a 409.
	body409 string
	// text is the checkpoint text a 200's cosignature must sign.
	text string
}

const textPlain = "text/plain; charset=utf-8"

func ok(body []byte, text string) step { return step{body: body, code: 200, ct: textPlain, text: text} }
func fail(body []byte, code int) step  { return step{body: body, code: code, ct: textPlain} }
func conflict(body []byte, size uint64) step {
	return step{body: body, code: 409, ct: "text/x.tlog.size", body409: fmt.Sprintf("%d\n", size)}
}

// TestAddCheckpointConformance drives the handler with raw HTTP requests
// and checks every status code c2sp.org/tlog-witness prescribes.
func TestAddCheckpointConformance(t *testing.T) {
	const origin = "example.com/log-a"
	aKey := newKey(t, origin)
	a := newTestLog(t, origin, aKey, "a", 20)
	// Same origin and key, different entries: a split view.
	fork := newTestLog(t, origin, aKey, "b", 20)
	// Same origin and key name, untrusted key.
	impostor := newTestLog(t, origin, newKey(t, origin), "a", 20)
	// Same entries, signed by a second trusted key (key rotation).
	rotated := newTestLog(t, origin, newKey(t, origin+"/2026"), "a", 20)
	stranger := newTestLog(t, "example.com/unknown", "", "a", 5)
	logs := []Log{{Origin: origin, Verifiers: []note.Verifier{a.verifier(t), rotated.verifier(t)}}}

	cp5 := a.checkpoint(t, 5)
	tampered := tamperSignature(t, cp5)
	badProof := a.proof(t, 3, 10)
	badProof[0] = bytes.Clone(badProof[0])
	badProof[0][0] ^= 1
	otherSigner := func() note.Signer {
		s, err := note.NewSigner(newKey(t, "someone.example/else"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	hash5 := strings.Split(a.text(t, 5), "\n")[2]
	sixtyFour := bytes.Repeat([]byte(strings.Split(a.text(t, 1), "\n")[2]+"\n"), 64)

	tests := []struct {
		name  string
		steps []step
	}{
		{"first checkpoint with old 0", []step{ok(a.grow(t, 0, 5), a.text(t, 5))}},
		{"growth with consistency proof", []step{
			ok(a.grow(t, 0, 3), a.text(t, 3)),
			ok(a.grow(t, 3, 10), a.text(t, 10)),
			ok(a.grow(t, 10, 20), a.text(t, 20)),
		}},
		{"growth from 1 and to a power of two", []step{
			ok(a.grow(t, 0, 1), a.text(t, 1)),
			ok(a.grow(t, 1, 16), a.text(t, 16)),
		}},
		{"empty tree", []step{
			ok(a.grow(t, 0, 0), a.text(t, 0)),
			ok(a.grow(t, 0, 4), a.text(t, 4)),
		}},
		{"same checkpoint cosigned again", []step{
			ok(a.grow(t, 0, 5), a.text(t, 5)),
			ok(a.grow(t, 5, 5), a.text(t, 5)),
		}},
		{"retry with the size from 409", []step{
			ok(a.grow(t, 0, 5), a.text(t, 5)),
			conflict(a.grow(t, 0, 9), 5),
			ok(a.grow(t, 5, 9), a.text(t, 9)),
		}},
		{"extra signatures from unknown keys are ignored", []step{
			ok(addBody(0, nil, signText(t, a.text(t, 5), otherSigner, a.signer)), a.text(t, 5)),
		}},
		{"signature from a rotated trusted key", []step{ok(rotated.grow(t, 0, 5), rotated.text(t, 5))}},
		{"extension lines are cosigned", []step{
			ok(addBody(0, nil, signText(t, a.text(t, 5)+"ext one\n", a.signer)), a.text(t, 5)+"ext one\n"),
		}},

		// 409: old size is not the witnessed size.
		{"409 old size set but nothing witnessed", []step{conflict(a.grow(t, 3, 5), 0)}},
		{"409 old size behind", []step{
			ok(a.grow(t, 0, 10), a.text(t, 10)),
			conflict(a.grow(t, 3, 12), 10),
		}},
		{"409 old size ahead of witnessed", []step{
			ok(a.grow(t, 0, 3), a.text(t, 3)),
			conflict(a.grow(t, 5, 12), 3),
		}},
		{"409 comes before the proof is checked", []step{
			ok(a.grow(t, 0, 5), a.text(t, 5)),
			conflict(addBody(3, badProof, a.checkpoint(t, 10)), 5),
		}},
		{"409 rollback to an older checkpoint", []step{
			ok(a.grow(t, 0, 10), a.text(t, 10)),
			conflict(a.grow(t, 0, 5), 10),
		}},

		// 422: consistency failures.
		{"422 bad consistency proof", []step{
			ok(a.grow(t, 0, 3), a.text(t, 3)),
			fail(addBody(3, badProof, a.checkpoint(t, 10)), 422),
		}},
		{"422 proof for other sizes", []step{
			ok(a.grow(t, 0, 3), a.text(t, 3)),
			fail(addBody(3, a.proof(t, 4, 10), a.checkpoint(t, 10)), 422),
		}},
		{"422 missing proof", []step{
			ok(a.grow(t, 0, 3), a.text(t, 3)),
			fail(addBody(3, nil, a.checkpoint(t, 10)), 422),
		}},
		{"422 proof with old 0", []step{fail(addBody(0, a.proof(t, 3, 10), a.checkpoint(t, 10)), 422)}},
		{"422 same size different root", []step{
			ok(a.grow(t, 0, 5), a.text(t, 5)),
			fail(fork.grow(t, 5, 5), 422),
		}},
		{"422 same size with a non-empty proof", []step{
			ok(a.grow(t, 0, 5), a.text(t, 5)),
			fail(addBody(5, a.proof(t, 3, 5), a.checkpoint(t, 5)), 422),
		}},
		{"422 growth onto a fork", []step{
			ok(a.grow(t, 0, 5), a.text(t, 5)),
			fail(fork.grow(t, 5, 12), 422),
		}},
		{"422 size 0 with a non-empty root", []step{
			fail(addBody(0, nil, signText(t, fmt.Sprintf("%s\n0\n%s\n", origin, hash5), a.signer)), 422),
		}},

		// 400: old size larger than the checkpoint, malformed requests.
		{"400 old size larger than checkpoint size", []step{fail(addBody(6, nil, cp5), 400)}},
		{"400 old size larger even when witnessed", []step{
			ok(a.grow(t, 0, 8), a.text(t, 8)),
			fail(addBody(8, nil, cp5), 400),
		}},
		{"400 no old line", []step{fail(append([]byte("\n"), cp5...), 400)}},
		{"400 old with leading zero", []step{fail(append([]byte("old 00\n\n"), cp5...), 400)}},
		{"400 old negative", []step{fail(append([]byte("old -1\n\n"), cp5...), 400)}},
		{"400 old overflows", []step{fail(append([]byte("old 18446744073709551616\n\n"), cp5...), 400)}},
		{"400 old with two spaces", []step{fail(append([]byte("old  0\n\n"), cp5...), 400)}},
		{"400 CRLF line endings", []step{fail(append([]byte("old 0\r\n\r\n"), cp5...), 400)}},
		{"400 proof line not base64", []step{fail(append([]byte("old 0\nnot-base64!\n\n"), cp5...), 400)}},
		{"400 proof line not 32 bytes", []step{fail(append([]byte("old 0\nAAAA\n\n"), cp5...), 400)}},
		{"400 more than 63 proof lines", []step{fail(append(append([]byte("old 0\n"), sixtyFour...), append([]byte("\n"), cp5...)...), 400)}},
		{"400 no empty line", []step{fail([]byte("old 0\n"), 400)}},
		{"400 no checkpoint", []step{fail([]byte("old 0\n\n"), 400)}},
		{"400 checkpoint without signatures", []step{fail(addBody(0, nil, []byte(a.text(t, 5))), 400)}},
		{"400 signed checkpoint size with leading zero", []step{
			fail(addBody(0, nil, signText(t, fmt.Sprintf("%s\n05\n%s\n", origin, hash5), a.signer)), 400),
		}},
		{"400 signed checkpoint with short hash", []step{
			fail(addBody(0, nil, signText(t, fmt.Sprintf("%s\n5\nAAAA\n", origin), a.signer)), 400),
		}},
		{"400 signed checkpoint with two lines", []step{
			fail(addBody(0, nil, signText(t, fmt.Sprintf("%s\n5\n", origin), a.signer)), 400),
		}},

		// 403 and 404.
		{"403 signed by an untrusted key of the same name", []step{fail(impostor.grow(t, 0, 5), 403)}},
		{"403 only unknown signatures", []step{fail(addBody(0, nil, signText(t, a.text(t, 5), otherSigner)), 403)}},
		{"403 trusted key with a bad signature", []step{fail(addBody(0, nil, tampered), 403)}},
		{"403 before 400 for old size", []step{fail(addBody(9, nil, impostor.checkpoint(t, 5)), 403)}},
		{"404 unknown origin", []step{fail(stranger.grow(t, 0, 5), 404)}},
		{"404 before 403", []step{fail(addBody(0, nil, signText(t, stranger.text(t, 5), a.signer)), 404)}},

		// 413.
		{"413 oversized body", []step{fail(append(append([]byte("old 0\n\n"), cp5...), bytes.Repeat([]byte("x"), MaxRequestSize)...), 413)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestWitness(t, logs...)
			srv := httptest.NewServer(env.w.Handler())
			t.Cleanup(srv.Close)
			for i, s := range tc.steps {
				got := post(t, srv.URL, s.body)
				want := response{code: s.code, ct: s.ct, body: s.body409}
				if s.code != 409 {
					want.body = got.body // checked below
				}
				if diff := cmp.Diff(want, got, cmp.AllowUnexported(response{})); diff != "" {
					t.Fatalf("step %d: response mismatch (-want +got):\n%s", i, diff)
				}
				if s.code == 200 {
					env.key.checkCosignature(t, s.text, []byte(got.body))
				}
			}
		})
	}
}

// tamperSignature flips a bit of the Ed25519 signature in the last
// signature line of a signed note, keeping the key name and ID.
func tamperSignature(t testing.TB, signed []byte) []byte {
	t.Helper()
	body := bytes.TrimSuffix(signed, []byte("\n"))
	i := bytes.LastIndexByte(body, ' ')
	sig, err := base64.StdEncoding.DecodeString(string(body[i+1:]))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-1] ^= 1
	return fmt.Appendf(bytes.Clone(body[:i+1]), "%s\n", base64.StdEncoding.EncodeToString(sig))
}

func TestAddCheckpointMethodNotAllowed(t *testing.T) {
	env := newTestWitness(t)
	srv := httptest.NewServer(env.w.Handler())
	t.Cleanup(srv.Close)
	got := get(t, srv.URL+"/add-checkpoint")
	if got.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /add-checkpoint = %d, want 405", got.code)
	}
}
