package client

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestVerifySensitive(t *testing.T) {
	salt1, salt2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	c1, c2 := event.Commitment(salt1, []byte("alice@example.com")), event.Commitment(salt2, []byte("1250000"))
	ev := &pb.ProvenanceEvent{
		SchemaVersion: 1, EventId: "e1", Tenant: "acme", Operation: pb.Operation_OPERATION_RUN_START,
		EventTime: timestamppb.New(time.Unix(1700000000, 0)),
		Actor:     &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "svc"},
		Workflow:  &pb.Workflow{Platform: "p", RunId: "r"},
		Sensitive: []*pb.SensitiveValue{
			{Name: "email", Classification: "pii", KeyId: "acme/pii/1", Commitment: c1[:]},
			{Name: "amount", Classification: "confidential", KeyId: "acme/confidential/1", Commitment: c2[:]},
		},
	}
	_, leaf, err := event.NewLeaf(ev, time.Unix(1700000001, 0), "s")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := event.DecodeLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}
	good := []*pb.SensitiveReveal{
		{Name: "email", Classification: "pii", KeyId: "acme/pii/1", Commitment: c1[:], Status: pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED, Value: "alice@example.com", Salt: salt1},
		{Name: "amount", Classification: "confidential", KeyId: "acme/confidential/1", Commitment: c2[:], Status: pb.SensitiveStatus_SENSITIVE_STATUS_REDACTED, Display: "[REDACTED: confidential]"},
	}
	got, err := VerifySensitive(entry, good)
	if err != nil || len(got) != 1 || got["email"] != "alice@example.com" {
		t.Fatalf("VerifySensitive = %v, %v", got, err)
	}
	tests := []struct {
		name   string
		modify func([]*pb.SensitiveReveal) []*pb.SensitiveReveal
	}{
		{"another value", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { rs[0].Value = "bob@example.com"; return rs }},
		{"another salt", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { rs[0].Salt = salt2; return rs }},
		{"another classification", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { rs[1].Classification = "public"; return rs }},
		{"another commitment", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { rs[0].Commitment = c2[:]; return rs }},
		{"missing one", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { return rs[:1] }},
		{"twice", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { return []*pb.SensitiveReveal{rs[0], rs[0]} }},
		{"not in leaf", func(rs []*pb.SensitiveReveal) []*pb.SensitiveReveal { rs[1].Name = "phone"; return rs }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs := make([]*pb.SensitiveReveal, len(good))
			for i, r := range good {
				rs[i] = proto.Clone(r).(*pb.SensitiveReveal)
			}
			if _, err := VerifySensitive(entry, tc.modify(rs)); !errors.Is(err, ErrVerification) {
				t.Errorf("VerifySensitive = %v, want ErrVerification", err)
			}
		})
	}
}
