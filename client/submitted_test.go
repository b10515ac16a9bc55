package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	goldenSubmittedEvent    = "testdata/submitted/event.json"
	goldenSubmittedResponse = "testdata/submitted/response.json"
	goldenSubmittedLogKey   = "testdata/submitted/log.pub"
)

// submittedEvent is an event as a submitter sends it: two sensitive values
// in clear, and an extension the tenant's policy marks sensitive.
func submittedEvent(t *testing.T, l *testLog) *pb.ProvenanceEvent {
	t.Helper()
	ev := proto.Clone(l.events[1]).(*pb.ProvenanceEvent)
	ev.EventId = "submitted-sensitive-1"
	ev.Sensitive = []*pb.SensitiveValue{
		{Name: "contact.email", Classification: "pii", Value: "alice@example.com"},
		{Name: "contact.note", Classification: "confidential", Value: "line 1\nline 2"},
	}
	ev.Extensions["ssn"] = "123-45-6789"
	return ev
}

// sealLikeTheLog seals ev as the server does (explicit values in order, then
// the policy's fields, each under a fixed salt), appends the leaf to l and
// returns the Append response a submitter gets.
func sealLikeTheLog(t *testing.T, l *testLog, ev *pb.ProvenanceEvent) *pb.AppendResponse {
	t.Helper()
	sealed := proto.Clone(ev).(*pb.ProvenanceEvent)
	sealed.Sensitive = append(sealed.Sensitive, &pb.SensitiveValue{Name: "extensions.ssn", Classification: "pii", Value: sealed.Extensions["ssn"]})
	delete(sealed.Extensions, "ssn")
	resp := &pb.AppendResponse{}
	for i, s := range sealed.Sensitive {
		salt := bytes.Repeat([]byte{byte(0xa0 + i)}, event.CommitmentSaltSize)
		c := event.Commitment(salt, []byte(s.Value))
		s.Value, s.KeyId, s.Commitment = "", "acme/"+s.Classification+"/1", c[:]
		resp.Openings = append(resp.Openings, &pb.SensitiveOpening{Name: s.Name, Salt: salt})
	}
	_, leaf, err := event.NewLeaf(sealed, time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), "svc-n8n")
	if err != nil {
		t.Fatal(err)
	}
	i := int64(len(l.leaves))
	hs, err := tlog.StoredHashes(i, leaf, l.hashes)
	if err != nil {
		t.Fatal(err)
	}
	l.hashes, l.leaves, l.events = append(l.hashes, hs...), append(l.leaves, leaf), append(l.events, sealed)
	h := event.LeafHash(leaf)
	resp.Index, resp.LeafHash, resp.Receipt = uint64(i), h[:], l.receipt(i, i+1)
	return resp
}

// stableJSON is protojson's output without its deliberately unstable
// whitespace.
func stableJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, b); err != nil {
		t.Fatal(err)
	}
	json.Indent(&out, compact.Bytes(), "", "  ")
	return append(out.Bytes(), '\n')
}

// TestVerifySubmittedReceiptGolden pins the wire form of an Append response
// with openings (testdata/submitted, regenerate with -update) and checks
// that the submitter verifies it against the event it sent, with the
// sensitive values in clear.
func TestVerifySubmittedReceiptGolden(t *testing.T) {
	l := newTestLogFrom(t, rand.NewChaCha8([32]byte{'s', 'u', 'b', 'm', 'i', 't'}))
	ev := submittedEvent(t, l)
	resp := sealLikeTheLog(t, l, ev)
	files := map[string][]byte{
		goldenSubmittedEvent:    stableJSON(t, ev),
		goldenSubmittedResponse: stableJSON(t, resp),
		goldenSubmittedLogKey:   []byte(l.vkey + "\n"),
	}
	for name, want := range files {
		if *update {
			os.MkdirAll(filepath.Dir(name), 0o755)
			if err := os.WriteFile(name, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the test builds (%v); run go test ./client -run Golden -update and review the diff", name, err)
		}
	}

	// Verify from the files alone, as a submitter would.
	var gotResp pb.AppendResponse
	var gotEv pb.ProvenanceEvent
	b, _ := os.ReadFile(goldenSubmittedResponse)
	if err := protojson.Unmarshal(b, &gotResp); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(goldenSubmittedEvent)
	if err := protojson.Unmarshal(b, &gotEv); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(goldenSubmittedLogKey)
	policy, err := ParsePolicy(string(bytes.TrimSpace(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotResp.GetOpenings()) != 3 || gotResp.GetOpenings()[2].GetName() != "extensions.ssn" {
		t.Fatalf("golden response openings: %v", gotResp.GetOpenings())
	}
	vr, err := VerifyReceiptWithPolicy(gotResp.GetReceipt(), policy)
	if err != nil {
		t.Fatal(err)
	}
	if err := vr.HoldsSubmitted(&gotEv, gotResp.GetOpenings()); err != nil {
		t.Fatalf("HoldsSubmitted of the golden response: %v", err)
	}
	if _, err := VerifyReceiptFor(gotResp.GetReceipt(), l.verifier(), &gotEv); !errors.Is(err, ErrVerification) {
		t.Errorf("VerifyReceiptFor of an event with sensitive values = %v, want a verification failure", err)
	}
}

func TestVerifySubmittedReceipt(t *testing.T) {
	l := newTestLog(t)
	ev := submittedEvent(t, l)
	resp := sealLikeTheLog(t, l, ev)
	if _, err := VerifySubmittedReceipt(resp.GetReceipt(), l.verifier(), ev, resp.GetOpenings()); err != nil {
		t.Fatalf("honest receipt: %v", err)
	}
	// Events without sensitive values verify with no openings.
	if _, err := VerifySubmittedReceipt(l.receipt(0, 1), l.verifier(), l.events[0], nil); err != nil {
		t.Fatalf("plain event: %v", err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt)
		reason string
	}{
		{"other value", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			ev.Sensitive[0].Value = "bob@example.com"
			return o, nil
		}, `"contact.email": the submitted value and the opening do not recompute`},
		{"other value of a policy field", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			ev.Extensions["ssn"] = "000-00-0000"
			return o, nil
		}, `"extensions.ssn": the submitted value`},
		{"policy field missing from the event", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			delete(ev.Extensions, "ssn")
			return o, nil
		}, `"extensions.ssn" is not in the event`},
		{"salt flipped", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			o[1].Salt = bytes.Clone(o[1].Salt)
			o[1].Salt[0] ^= 1
			return o, nil
		}, `"contact.note": the submitted value and the opening`},
		{"salt short", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			o[0].Salt = o[0].Salt[:31]
			return o, nil
		}, `"contact.email"`},
		{"openings missing", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			return nil, nil
		}, "0 openings for the leaf's 3 sensitive values"},
		{"openings swapped", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			o[0], o[1] = o[1], o[0]
			return o, nil
		}, `opening 0 is for "contact.note"`},
		{"classification changed", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			ev.Sensitive[1].Classification = "pii"
			return o, nil
		}, `"contact.note" (confidential) in the leaf`},
		{"extra sensitive value", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			ev.Sensitive = append(ev.Sensitive, &pb.SensitiveValue{Name: "a", Classification: "pii"}, &pb.SensitiveValue{Name: "b", Classification: "pii"})
			return o, nil
		}, "the leaf has 3 sensitive values, the event 4"},
		{"other field of the event", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			ev.Workflow.StepId = "other-step"
			return o, nil
		}, "the leaf does not hold this event"},
		{"extra extension", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			ev.Extensions["x"] = "y"
			return o, nil
		}, "the leaf does not hold this event"},
		{"receipt of another leaf", func(ev *pb.ProvenanceEvent, o []*pb.SensitiveOpening) ([]*pb.SensitiveOpening, *pb.Receipt) {
			return o, l.receipt(1, int64(len(l.leaves)))
		}, "3 openings for the leaf's 0 sensitive values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := proto.Clone(ev).(*pb.ProvenanceEvent)
			var o []*pb.SensitiveOpening
			for _, x := range resp.GetOpenings() {
				o = append(o, proto.Clone(x).(*pb.SensitiveOpening))
			}
			o, r := tc.edit(ev, o)
			if r == nil {
				r = resp.GetReceipt()
			}
			_, err := VerifySubmittedReceipt(r, l.verifier(), ev, o)
			if !errors.Is(err, ErrVerification) || !bytes.Contains([]byte(err.Error()), []byte(tc.reason)) {
				t.Fatalf("VerifySubmittedReceipt = %v, want a verification failure saying %q", err, tc.reason)
			}
		})
	}
}

// FuzzHoldsSubmitted feeds edited Append responses (untrusted: they come
// from the server) to the submitter's check: it must not panic, and what
// it accepts must hold the event sent, each commitment recomputed from a
// value sent and its opening.
func FuzzHoldsSubmitted(f *testing.F) {
	resp, err := os.ReadFile(goldenSubmittedResponse)
	if err != nil {
		f.Fatal(err)
	}
	evJSON, _ := os.ReadFile(goldenSubmittedEvent)
	key, _ := os.ReadFile(goldenSubmittedLogKey)
	policy, err := ParsePolicy(string(bytes.TrimSpace(key)), nil)
	if err != nil {
		f.Fatal(err)
	}
	var ev pb.ProvenanceEvent
	if err := protojson.Unmarshal(evJSON, &ev); err != nil {
		f.Fatal(err)
	}
	f.Add(resp)
	f.Add(bytes.Replace(resp, []byte(`"extensions.ssn"`), []byte(`"environment.ssn"`), 1))
	f.Add([]byte(`{"receipt": {}, "openings": [{}, {"name": "x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r pb.AppendResponse
		if protojson.Unmarshal(b, &r) != nil {
			return
		}
		vr, err := VerifyReceiptWithPolicy(r.GetReceipt(), policy)
		if err != nil {
			return
		}
		sent := proto.Clone(&ev).(*pb.ProvenanceEvent)
		if err := vr.HoldsSubmitted(sent, r.GetOpenings()); err != nil {
			if !errors.Is(err, ErrVerification) {
				t.Fatalf("HoldsSubmitted = %v, not a verification failure", err)
			}
			return
		}
		if !proto.Equal(sent, &ev) {
			t.Fatal("HoldsSubmitted modified the event")
		}
		values := map[string]string{"extensions.ssn": ev.GetExtensions()["ssn"]}
		for _, s := range ev.GetSensitive() {
			values[s.GetName()] = s.GetValue()
		}
		for i, s := range vr.Entry.GetEvent().GetSensitive() {
			if !event.VerifyCommitment(s.GetCommitment(), r.GetOpenings()[i].GetSalt(), []byte(values[s.GetName()])) {
				t.Fatalf("accepted %q, whose commitment the opening does not open", s.GetName())
			}
		}
	})
}
