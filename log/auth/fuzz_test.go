package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FuzzBearerToken: the authorization header parser and the token store
// take any bytes without panicking, and only the issued secret
// authenticates.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer pl_abc", "bearer  x ", "Basic Zm9v", "Bearer", "Bearer \x00", "BEARER pl_" + strings.Repeat("A", 600), "Bearer\tx", "bearer é"} {
		f.Add(s)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	st, err := OpenStore(f.TempDir()+"/"+StoreFile, clk.now)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := st.CreateTenant("acme", TenantPolicy{}); err != nil {
		f.Fatal(err)
	}
	_, secret, err := st.CreateToken("fuzz", []Role{RoleReader}, []string{"acme"}, "", time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, ok := BearerToken(header)
		if ok {
			if tok == "" || tok != strings.TrimSpace(tok) {
				t.Fatalf("BearerToken(%q) = %q: empty or untrimmed", header, tok)
			}
			if !strings.EqualFold(header[:7], "bearer ") {
				t.Fatalf("BearerToken(%q) accepted a non-bearer scheme", header)
			}
		} else if tok != "" {
			t.Fatalf("BearerToken(%q) = %q, false", header, tok)
		}
		id, err := st.Authenticate(context.Background(), tok)
		if (err == nil) != (tok == secret) {
			t.Fatalf("Authenticate(%q) = %v, %v", tok, id, err)
		}
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("Authenticate error %v is not ErrUnauthenticated", err)
		}
	})
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
	admin := &Identity{Name: "admin"}
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
		before := h.all()
		ev := &pb.ProvenanceEvent{Tenant: "acme", Operation: pb.Operation(op), Extensions: map[string]string{
			extKeyID: id, extKeyPublic: pubB64, extValidFrom: when, extValidUntil: when, extReplaces: replaces}}
		if err := h.ApplyEvent(ev, 1); err != nil {
			if len(h.all()) != len(before) {
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
