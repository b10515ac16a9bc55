package authorship

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// signedEvent is a RUN_START of tenant acme at time at, signed by priv.
func signedEvent(t testing.TB, id string, at time.Time, keyID string, priv ed25519.PrivateKey) *pb.ProvenanceEvent {
	t.Helper()
	ev := &pb.ProvenanceEvent{SchemaVersion: 1, EventId: id, Tenant: "acme", Operation: pb.Operation_OPERATION_RUN_START,
		EventTime: timestamppb.New(at), Actor: &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_WORKFLOW, Id: "wf"},
		Workflow: &pb.Workflow{Platform: "airflow", RunId: "r1"}}
	if err := Sign(ev, keyID, priv); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestKeyHistoryVerify(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	pub1, priv1, _ := ed25519.GenerateKey(nil)
	pub2, priv2, _ := ed25519.GenerateKey(nil)
	admin := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"}
	// The key events, as the admin service writes them to the log.
	events := []*pb.ProvenanceEvent{
		KeyRegisterEvent("acme", "k1", pub1, t0, t0, admin),
		KeyRotateEvent("acme", "k1", "k2", pub2, t0.Add(10*time.Hour), admin),
		KeyRevokeEvent("acme", "k2", t0.Add(20*time.Hour), t0.Add(21*time.Hour), "laptop stolen", admin),
	}
	h := NewKeyHistory()
	for i, ev := range events {
		if err := h.ApplyEvent(ev, uint64(i)); err != nil {
			t.Fatalf("ApplyEvent %d: %v", i, err)
		}
	}
	k1, _ := h.Get("acme", "k1")
	k2, _ := h.Get("acme", "k2")
	if k1.State != KeyRotated || k1.ReplacedBy != "k2" || !k1.ValidUntil.Equal(t0.Add(10*time.Hour)) {
		t.Errorf("k1 = %+v", k1)
	}
	if k2.State != KeyRevoked || !k2.ValidUntil.Equal(t0.Add(20*time.Hour)) || !cmp.Equal(k2.Events, []uint64{1, 2}) {
		t.Errorf("k2 = %+v", k2)
	}

	forged := signedEvent(t, "e-forged", t0.Add(time.Hour), "k1", priv1)
	forged.Workflow.RunId = "r2" // changed after signing
	otherTenant := signedEvent(t, "e-other", t0.Add(time.Hour), "k1", priv1)
	otherTenant.Tenant = "globex"
	if err := Sign(otherTenant, "k1", priv1); err != nil {
		t.Fatal(err)
	}
	unsigned := signedEvent(t, "e-unsigned", t0.Add(time.Hour), "k1", priv1)
	unsigned.Signature = nil
	for _, tc := range []struct {
		name    string
		ev      *pb.ProvenanceEvent
		wantErr error
		field   string
	}{
		{"k1 in its time", signedEvent(t, "e1", t0.Add(time.Hour), "k1", priv1), nil, ""},
		{"k1 before registration", signedEvent(t, "e2", t0.Add(-time.Second), "k1", priv1), ErrKeyNotValid, "signature.key_id"},
		{"k1 after rotation", signedEvent(t, "e3", t0.Add(10*time.Hour), "k1", priv1), ErrKeyNotValid, "signature.key_id"},
		{"k2 after rotation, before revocation", signedEvent(t, "e4", t0.Add(15*time.Hour), "k2", priv2), nil, ""},
		{"k2 after revocation", signedEvent(t, "e5", t0.Add(20*time.Hour), "k2", priv2), ErrKeyNotValid, "signature.key_id"},
		{"k2 key, k1 id", signedEvent(t, "e6", t0.Add(time.Hour), "k1", priv2), ErrBadSignature, "signature.signature"},
		{"forged", forged, ErrBadSignature, "signature.signature"},
		{"other tenant", otherTenant, ErrUnknownKey, "signature.key_id"},
		{"unknown key", signedEvent(t, "e7", t0.Add(time.Hour), "k9", priv1), ErrUnknownKey, "signature.key_id"},
		{"unsigned", unsigned, ErrSignatureNeeded, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Verify(tc.ev)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify: %v, want %v", err, tc.wantErr)
			}
			var se *SignatureError
			if tc.wantErr != nil && (!errors.As(err, &se) || se.Field != tc.field) {
				t.Errorf("Verify: %v, want field %s", err, tc.field)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	_, vkey, err := note.GenerateKey(nil, "acme/etl-1")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	notePub := ed25519.PublicKey(raw[1:])
	for in, want := range map[string]ed25519.PublicKey{
		hex.EncodeToString(pub): pub, base64.StdEncoding.EncodeToString(pub): pub, base64.RawURLEncoding.EncodeToString(pub): pub,
		" " + hex.EncodeToString(pub) + "\n": pub,
		vkey + "\n":                          notePub,
	} {
		pub := want
		got, err := ParsePublicKey(in)
		if err != nil || !pub.Equal(got) {
			t.Errorf("ParsePublicKey(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", hex.EncodeToString(pub[:31]), base64.StdEncoding.EncodeToString(append(pub, 0)),
		strings.Replace(vkey, "acme", "evil", 1), // hash no longer matches the name
		"a+b+c",
	} {
		if k, err := ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%q) = %x, want an error", in, k)
		}
	}
}

// FuzzVerify: signature checking takes any key id and signature bytes,
// and any change to a signed event, without panicking, and accepts only
// the genuine signature over the unchanged event.
func FuzzVerify(f *testing.F) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	pub, priv, _ := ed25519.GenerateKey(nil)
	h := NewKeyHistory()
	if err := h.Register("acme", "k1", pub, t0, 0); err != nil {
		f.Fatal(err)
	}
	base := &pb.ProvenanceEvent{SchemaVersion: 1, EventId: "e1", Tenant: "acme", Operation: pb.Operation_OPERATION_RUN_START,
		Actor: &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_WORKFLOW, Id: "wf"}, Workflow: &pb.Workflow{Platform: "airflow", RunId: "r1"}}
	base.EventTime = nil
	good := proto.Clone(base).(*pb.ProvenanceEvent)
	good.EventTime = tsAt(t0.Add(time.Hour))
	if err := Sign(good, "k1", priv); err != nil {
		f.Fatal(err)
	}
	goodSig := good.GetSignature().GetSignature()
	f.Add("k1", goodSig, "r1", int64(3600))
	f.Add("k1", goodSig, "r2", int64(3600))
	f.Add("k1", goodSig[:63], "r1", int64(3600))
	f.Add("k2", goodSig, "r1", int64(3600))
	f.Add("", []byte(nil), "r1", int64(-1))
	f.Add("k1", bytes.Repeat([]byte{0xff}, 64), "r1", int64(1<<40))
	f.Fuzz(func(t *testing.T, keyID string, sig []byte, runID string, offset int64) {
		ev := proto.Clone(base).(*pb.ProvenanceEvent)
		ev.Workflow.RunId = runID
		ev.EventTime = tsAt(t0.Add(time.Duration(offset) * time.Second))
		ev.Signature = &pb.SubmitterSignature{KeyId: keyID, Signature: sig}
		err := h.Verify(ev)
		genuine := keyID == "k1" && bytes.Equal(sig, goodSig) && runID == "r1" && offset == 3600
		if genuine && err != nil {
			t.Fatalf("genuine signature refused: %v", err)
		}
		if !genuine && err == nil {
			t.Fatalf("accepted key %q sig %x run %q offset %d", keyID, sig, runID, offset)
		}
	})
}

// FuzzApplyEvent: replaying key events with arbitrary extensions never
// panics, and a refused event leaves the history as it was.
func FuzzApplyEvent(f *testing.F) {
	pub, _, _ := ed25519.GenerateKey(nil)
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	admin := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"}
	for _, ev := range []*pb.ProvenanceEvent{
		KeyRegisterEvent("acme", "k2", pub, t0, t0, admin),
		KeyRotateEvent("acme", "k1", "k3", pub, t0, admin),
		KeyRevokeEvent("acme", "k1", t0, t0, "", admin),
	} {
		x := ev.GetExtensions()
		f.Add(int32(ev.GetOperation()), x[extKeyID], x[extKeyPublic], x[extValidFrom]+x[extValidUntil], x[extReplaces])
	}
	f.Fuzz(func(t *testing.T, op int32, id, pubB64, when, replaces string) {
		h := NewKeyHistory()
		if err := h.Register("acme", "k1", pub, t0, 0); err != nil {
			t.Fatal(err)
		}
		before := h.All()
		ev := &pb.ProvenanceEvent{Tenant: "acme", Operation: pb.Operation(op), Extensions: map[string]string{
			extKeyID: id, extKeyPublic: pubB64, extValidFrom: when, extValidUntil: when, extReplaces: replaces}}
		if err := h.ApplyEvent(ev, 1); err != nil {
			if len(h.All()) != len(before) {
				t.Fatalf("refused event changed the history: %v", err)
			}
			k, _ := h.Get("acme", "k1")
			if k.State != KeyActive {
				t.Fatalf("refused event changed k1: %+v", k)
			}
		}
	})
}

func tsAt(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }
