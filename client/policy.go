package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"strings"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
)

// Policy is what a checkpoint must carry to be trusted: the log's signature
// and, when the policy names witnesses, cosignatures from a quorum of them.
// A Policy is immutable and safe for concurrent use.
type Policy struct {
	logKey note.Verifier
	// quorum is nil when the policy names no witnesses.
	quorum *tessera.WitnessGroup
	// witnesses are the cosignature/v1 verifiers of every witness line, by
	// policy name, for error messages.
	witnesses []namedVerifier
	// keyText and policyText are what the policy was parsed from, for
	// evidence bundles.
	keyText    string
	policyText []byte
}

type namedVerifier struct {
	name string
	v    note.Verifier
	url  string // "" when the policy line gave none
}

// ParsePolicy builds a checkpoint policy from the log's note verifier key
// (the one line of provlogd's log.pub) and a witness policy in the text
// format provlogd's --witness-policy reads (tessera's
// NewWitnessGroupFromPolicy):
//
//	witness NAME VKEY [URL]
//	group NAME N|any|all MEMBER...
//	quorum NAME|none
//
// VKEY is a witness's cosignature/v1 verifier key (its witness.pub). The URL
// is optional here: a verifier never contacts witnesses. "#" starts a
// comment. An empty witness policy (or one of comments only) means no
// witnesses: a checkpoint then needs only the log's signature. Two witness
// lines with the same key are refused, since one cosignature would count
// twice towards the quorum.
func ParsePolicy(logKey string, witnessPolicy []byte) (*Policy, error) {
	v, err := fnote.NewVerifier(strings.TrimSpace(logKey))
	if err != nil {
		return nil, fmt.Errorf("couldn't parse log verifier key: %w", err)
	}
	p := &Policy{logKey: v, keyText: strings.TrimSpace(logKey), policyText: bytes.Clone(witnessPolicy)}

	// Normalise: give URL-less witness lines a placeholder URL (tessera's
	// parser requires one) and collect each witness's verifier.
	var norm bytes.Buffer
	seen := map[string]string{} // "keyname+keyhash" -> policy name
	empty := true
	sc := bufio.NewScanner(bytes.NewReader(witnessPolicy))
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			norm.WriteString("\n")
			continue
		}
		empty = false
		if fields[0] == "witness" && (len(fields) == 3 || len(fields) == 4) {
			name, vkey := fields[1], fields[2]
			wv, err := fnote.NewVerifierForCosignatureV1(vkey)
			if err != nil {
				return nil, fmt.Errorf("witness policy line %d: witness %q: bad cosignature/v1 verifier key: %w", lineNo, name, err)
			}
			id := fmt.Sprintf("%s+%08x", wv.Name(), wv.KeyHash())
			if other, ok := seen[id]; ok {
				return nil, fmt.Errorf("witness policy line %d: witness %q has the same key as witness %q", lineNo, name, other)
			}
			seen[id] = name
			nv := namedVerifier{name: name, v: wv}
			if len(fields) == 4 {
				nv.url = fields[3]
			}
			p.witnesses = append(p.witnesses, nv)
			if len(fields) == 3 {
				fields = append(fields, (&url.URL{Scheme: "https", Host: "witness.invalid", Path: "/" + name}).String())
			}
		}
		norm.WriteString(strings.Join(fields, " "))
		norm.WriteString("\n")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading witness policy: %w", err)
	}
	if empty {
		return p, nil
	}
	wg, err := tessera.NewWitnessGroupFromPolicy(norm.Bytes())
	if err != nil {
		return nil, fmt.Errorf("couldn't parse witness policy: %w", err)
	}
	p.quorum = &wg
	return p, nil
}

// LogKey is the log's note verifier key the policy was parsed from.
func (p *Policy) LogKey() string { return p.keyText }

// WitnessPolicy is the witness policy text the policy was parsed from.
func (p *Policy) WitnessPolicy() []byte { return bytes.Clone(p.policyText) }

// Witness is one witness a policy names.
type Witness struct {
	Name string
	// URL is the witness's base URL from the policy, "" if none.
	URL string
	// Verifier checks its cosignature/v1 signatures.
	Verifier note.Verifier
}

// Witnesses lists the witnesses the policy names, in policy order.
func (p *Policy) Witnesses() []Witness {
	out := make([]Witness, len(p.witnesses))
	for i, w := range p.witnesses {
		out[i] = Witness{Name: w.name, URL: w.url, Verifier: w.v}
	}
	return out
}

// LogVerifier is the log's checkpoint signature verifier. Its name is the
// log's origin.
func (p *Policy) LogVerifier() note.Verifier { return p.logKey }

// VerifyCheckpoint checks a signed checkpoint against the policy: the log's
// signature verifies, the origin is the log key's name, and the witnesses'
// cosignatures (C2SP tlog-cosignature, cosignature/v1) satisfy the quorum.
// Signatures by keys the policy does not name are ignored; a cosignature
// that does not verify counts as absent. Errors wrap ErrVerification.
func (p *Policy) VerifyCheckpoint(raw []byte) (*log.Checkpoint, error) {
	cp, _, _, err := log.ParseCheckpoint(raw, p.logKey.Name(), p.logKey)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint: %w", ErrVerification, err)
	}
	if err := p.checkQuorum(raw); err != nil {
		return nil, err
	}
	return cp, nil
}

// checkQuorum checks the cosignatures on a checkpoint whose log signature
// is already verified.
func (p *Policy) checkQuorum(raw []byte) error {
	if p.quorum == nil || p.quorum.Satisfied(raw) {
		return nil
	}
	var good, bad []string
	for _, w := range p.witnesses {
		_, err := note.Open(raw, note.VerifierList(w.v))
		var invalid *note.InvalidSignatureError
		switch {
		case err == nil:
			good = append(good, w.name)
		case errors.As(err, &invalid):
			bad = append(bad, w.name)
		}
	}
	var invalid string
	if len(bad) > 0 {
		invalid = ", invalid cosignatures from " + list(bad)
	}
	return fmt.Errorf("%w: witness quorum not met: valid cosignatures from %d of %d witnesses %s%s", ErrVerification, len(good), len(p.witnesses), list(good), invalid)
}

// VerifyReceiptWithPolicy is VerifyReceipt plus the policy's witness
// quorum: the receipt's checkpoint must be cosigned as the policy asks.
func VerifyReceiptWithPolicy(r *pb.Receipt, p *Policy) (*VerifiedReceipt, error) {
	v, err := VerifyReceipt(r, p.logKey)
	if err != nil {
		return nil, err
	}
	if err := p.checkQuorum(r.GetCheckpoint()); err != nil {
		return nil, err
	}
	return v, nil
}

func list(names []string) string {
	if len(names) == 0 {
		return "(none)"
	}
	return "(" + strings.Join(names, ", ") + ")"
}
