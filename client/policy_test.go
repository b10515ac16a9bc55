package client

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// testWitness is a witness key pair as provwitness makes them: an Ed25519
// note key used as a C2SP tlog-cosignature cosignature/v1 signer.
type testWitness struct {
	name   string
	cosig  note.Signer // cosignature/v1
	plain  note.Signer // the same key as a plain Ed25519 note signer
	vkey   string      // cosignature/v1 verifier key, as in witness.pub
	plainV string      // the plain Ed25519 verifier key
}

func newTestWitness(t *testing.T, name string) testWitness {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	cosig, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	cvkey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{name: name, cosig: cosig, plain: plain, vkey: cvkey, plainV: vkey}
}

// sigLine is the signature line signer puts on a note with this text.
func sigLine(t *testing.T, text string, s note.Signer) string {
	t.Helper()
	b := signNote(t, text, s)
	_, line, ok := strings.Cut(string(b), "\n\n")
	if !ok || !strings.HasPrefix(line, "— ") || strings.Count(line, "\n") != 1 {
		t.Fatalf("unexpected signed note %q", b)
	}
	return line
}

// tamper flips one bit of the signature (not the key hash) in a signature line.
func tamper(t *testing.T, line string) string {
	t.Helper()
	i := strings.LastIndexByte(line, ' ')
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line[i+1:], "\n"))
	if err != nil {
		t.Fatal(err)
	}
	sig[len(sig)-5] ^= 0x10
	return line[:i+1] + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// note assembles a signed note from its text and signature lines.
func assemble(text string, lines ...string) []byte {
	return []byte(text + "\n" + strings.Join(lines, ""))
}

func TestPolicyVerifyCheckpoint(t *testing.T) {
	l := newTestLog(t)
	const size = 7
	text := l.checkpointText(size)
	otherText := l.checkpointText(size - 1)
	logSig := sigLine(t, text, l.signer)

	w := []testWitness{newTestWitness(t, "w1.example/w"), newTestWitness(t, "w2.example/w"), newTestWitness(t, "w3.example/w")}
	impostor := newTestWitness(t, "w2.example/w") // w2's name, another key
	cosig := func(i int) string { return sigLine(t, text, w[i].cosig) }

	policy3of2 := fmt.Sprintf(`# three witnesses, any two of them
witness w1 %s http://127.0.0.1:1/
witness w2 %s http://127.0.0.1:2/
witness w3 %s
group g 2 w1 w2 w3
quorum g
`, w[0].vkey, w[1].vkey, w[2].vkey)
	nested := fmt.Sprintf(`witness w1 %s
witness w2 %s
witness w3 %s
group either any w1 w2
group both all either w3
quorum both
`, w[0].vkey, w[1].vkey, w[2].vkey)

	for _, tc := range []struct {
		name   string
		policy string
		cp     []byte
		ok     bool
		errHas string // substring of the error, when !ok
	}{
		{"quorum met, two of three", policy3of2, assemble(text, logSig, cosig(0), cosig(2)), true, ""},
		{"quorum met, three of three", policy3of2, assemble(text, logSig, cosig(0), cosig(1), cosig(2)), true, ""},
		{"quorum met, cosignatures before the log's", policy3of2, assemble(text, cosig(1), cosig(2), logSig), true, ""},
		{"one short", policy3of2, assemble(text, logSig, cosig(1)), false, "valid cosignatures from 1 of 3 witnesses (w2)"},
		{"no cosignatures", policy3of2, assemble(text, logSig), false, "from 0 of 3 witnesses (none)"},
		{"same cosignature twice", policy3of2, assemble(text, logSig, cosig(0), cosig(0)), false, "from 1 of 3"},
		{"wrong witness key", policy3of2, assemble(text, logSig, cosig(0), sigLine(t, text, impostor.cosig)), false, "from 1 of 3 witnesses (w1)"},
		{"plain Ed25519 signature by a witness key, not a cosignature", policy3of2, assemble(text, logSig, cosig(0), sigLine(t, text, w[1].plain)), false, "from 1 of 3"},
		{"tampered cosignature", policy3of2, assemble(text, logSig, cosig(0), tamper(t, cosig(1))), false, "invalid cosignatures from (w2)"},
		{"tampered cosignature, quorum met by the others", policy3of2, assemble(text, logSig, cosig(0), tamper(t, cosig(1)), cosig(2)), true, ""},
		{"cosignatures of another checkpoint", policy3of2, assemble(text, logSig, sigLine(t, otherText, w[0].cosig), sigLine(t, otherText, w[1].cosig)), false, "invalid cosignatures from (w1, w2)"},
		{"cosignatures but no log signature", policy3of2, assemble(text, cosig(0), cosig(1), cosig(2)), false, "checkpoint"},
		{"tampered log signature", policy3of2, assemble(text, tamper(t, logSig), cosig(0), cosig(1)), false, "checkpoint"},
		{"log signature by another key", policy3of2, assemble(text, sigLine(t, text, newTestWitness(t, testOrigin).plain), cosig(0), cosig(1)), false, "checkpoint"},
		{"checkpoint body edited after signing", policy3of2, assemble(strings.Replace(text, "\n7\n", "\n8\n", 1), logSig, cosig(0), cosig(1)), false, "checkpoint"},
		{"nested groups satisfied", nested, assemble(text, logSig, cosig(1), cosig(2)), true, ""},
		{"nested groups, inner group only", nested, assemble(text, logSig, cosig(0), cosig(1)), false, "from 2 of 3"},
		{"no witnesses in policy: log signature only", "", assemble(text, logSig), true, ""},
		{"no witnesses in policy, comments only", "# nothing to see\n\n", assemble(text, logSig, cosig(0)), true, ""},
		{"no witnesses in policy, bad log signature", "", assemble(text, tamper(t, logSig)), false, "checkpoint"},
		{"quorum none", fmt.Sprintf("witness w1 %s\nquorum none\n", w[0].vkey), assemble(text, logSig), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(l.vkey, []byte(tc.policy))
			if err != nil {
				t.Fatalf("ParsePolicy: %v", err)
			}
			cp, err := p.VerifyCheckpoint(tc.cp)
			if tc.ok {
				if err != nil {
					t.Fatalf("VerifyCheckpoint: %v\n%s", err, tc.cp)
				}
				root, _ := tlog.TreeHash(size, l.hashes)
				if diff := cmp.Diff([]any{testOrigin, uint64(size), root[:]}, []any{cp.Origin, cp.Size, cp.Hash}); diff != "" {
					t.Fatalf("checkpoint (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, ErrVerification) {
				t.Fatalf("VerifyCheckpoint = %+v, %v; want an error wrapping ErrVerification\n%s", cp, err, tc.cp)
			}
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("error %q does not say %q", err, tc.errHas)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	l := newTestLog(t)
	w1, w2 := newTestWitness(t, "w1.example/w"), newTestWitness(t, "w2.example/w")
	for _, tc := range []struct {
		name, logKey, policy, errHas string
	}{
		{"provlogd's format with URLs", l.vkey, fmt.Sprintf("witness a %s https://a.example/\nwitness b %s https://b.example/w/\ngroup g 2 a b\nquorum g\n", w1.vkey, w2.vkey), ""},
		{"URLs optional", l.vkey, fmt.Sprintf("witness a %s\nwitness b %s\ngroup g any a b\nquorum g\n", w1.vkey, w2.vkey), ""},
		{"a single witness as the quorum", l.vkey, fmt.Sprintf("witness a %s\nquorum a\n", w1.vkey), ""},
		{"plain Ed25519 witness keys are read as cosignature/v1", l.vkey, fmt.Sprintf("witness a %s\nquorum a\n", w1.plainV), ""},
		{"log lines are ignored", l.vkey, fmt.Sprintf("log %s\nwitness a %s\nquorum a\n", l.vkey, w1.vkey), ""},
		{"empty", l.vkey, "", ""},
		{"bad log key", "example.com/log+00000000+AAAA", "", "log verifier key"},
		{"no log key", "", "", "log verifier key"},
		{"bad witness key", l.vkey, "witness a w1.example/w+12345678+AAAA\nquorum a\n", `witness "a"`},
		{"same key twice", l.vkey, fmt.Sprintf("witness a %s\nwitness b %s\ngroup g 2 a b\nquorum g\n", w1.vkey, w1.vkey), `same key as witness "a"`},
		{"same key twice, plain and cosignature forms", l.vkey, fmt.Sprintf("witness a %s\nwitness b %s\ngroup g 2 a b\nquorum g\n", w1.vkey, w1.plainV), `same key as witness "a"`},
		{"no quorum", l.vkey, fmt.Sprintf("witness a %s\n", w1.vkey), "quorum"},
		{"unknown member", l.vkey, fmt.Sprintf("witness a %s\ngroup g 1 a zz\nquorum g\n", w1.vkey), "zz"},
		{"threshold above members", l.vkey, fmt.Sprintf("witness a %s\ngroup g 2 a\nquorum g\n", w1.vkey), "threshold"},
		{"unknown keyword", l.vkey, "wit a b c\n", "keyword"},
		{"witness line too long", l.vkey, fmt.Sprintf("witness a %s http://a/ extra\nquorum a\n", w1.vkey), "witness"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.logKey, []byte(tc.policy))
			if tc.errHas == "" {
				if err != nil {
					t.Fatalf("ParsePolicy: %v", err)
				}
				if got := p.LogVerifier().Name(); got != testOrigin {
					t.Fatalf("log verifier name %q, want %q", got, testOrigin)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("ParsePolicy = %v, want an error saying %q", err, tc.errHas)
			}
			if errors.Is(err, ErrVerification) {
				t.Fatalf("a bad policy is not a verification failure: %v", err)
			}
		})
	}
}

func TestVerifyReceiptWithPolicy(t *testing.T) {
	l := newTestLog(t)
	w := []testWitness{newTestWitness(t, "w1.example/w"), newTestWitness(t, "w2.example/w"), newTestWitness(t, "w3.example/w")}
	p, err := ParsePolicy(l.vkey, fmt.Appendf(nil, "witness w1 %s\nwitness w2 %s\nwitness w3 %s\ngroup g 2 w1 w2 w3\nquorum g\n", w[0].vkey, w[1].vkey, w[2].vkey))
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(l.leaves))
	text := l.checkpointText(size)
	cosigned := func(ws ...int) []byte {
		lines := []string{sigLine(t, text, l.signer)}
		for _, i := range ws {
			lines = append(lines, sigLine(t, text, w[i].cosig))
		}
		return assemble(text, lines...)
	}

	r := l.receipt(3, size)
	r.Checkpoint = cosigned(0, 2)
	v, err := VerifyReceiptWithPolicy(r, p)
	if err != nil {
		t.Fatalf("receipt with a cosigned checkpoint: %v", err)
	}
	if v.Index != 3 || v.Checkpoint.Size != uint64(size) {
		t.Fatalf("verified index %d size %d", v.Index, v.Checkpoint.Size)
	}
	// The log's key alone accepts what the policy refuses.
	r.Checkpoint = cosigned(1)
	if _, err := VerifyReceipt(r, p.LogVerifier()); err != nil {
		t.Fatalf("VerifyReceipt with the log key only: %v", err)
	}
	if _, err := VerifyReceiptWithPolicy(r, p); !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "quorum") {
		t.Fatalf("receipt with one cosignature: %v, want a quorum ErrVerification", err)
	}
	// A bad proof fails even with a full quorum.
	r.Checkpoint = cosigned(0, 1, 2)
	r.InclusionProof[0] = bytes.Repeat([]byte{7}, 32)
	if _, err := VerifyReceiptWithPolicy(r, p); !errors.Is(err, ErrVerification) || !strings.Contains(err.Error(), "inclusion") {
		t.Fatalf("receipt with a bad proof: %v, want an inclusion ErrVerification", err)
	}
	if _, err := VerifyReceiptWithPolicy(nil, p); err == nil {
		t.Fatal("nil receipt verified")
	}
}
