package authorship

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"
)

// TestKeyEventsGolden: the key event builders write exactly the events of
// the golden vectors testdata/leaves/key_*.json (log/event pins their
// bytes), and replaying those vectors gives the expected key history.
func TestKeyEventsGolden(t *testing.T) {
	// The golden vectors' keys and times (log/event/golden_test.go).
	key1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	key2 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x43}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	evTime := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC).Add(-1500 * time.Millisecond)
	admin := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"}
	jane := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_PERSON, Id: "jane@acme.example"}
	cases := []struct {
		name string
		ev   *pb.ProvenanceEvent
	}{
		{"key_register", KeyRegisterEvent("acme", "acme-ci-2026", key1, evTime.Add(-24*time.Hour), evTime, admin)},
		{"key_rotate", KeyRotateEvent("acme", "acme-ci-2026", "acme-ci-2027", key2, evTime, jane)},
		{"key_revoke", KeyRevokeEvent("acme", "acme-ci-2027", evTime.Add(-time.Hour), evTime, "key file leaked", admin)},
	}
	h := NewKeyHistory()
	for i, c := range cases {
		b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "leaves", c.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var want pb.LeafEntry
		if err := protojson.Unmarshal(b, &want); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if diff := cmp.Diff(want.GetEvent(), c.ev, protocmp.Transform()); diff != "" {
			t.Errorf("%s: builder differs from the golden vector (-golden +built):\n%s", c.name, diff)
		}
		if err := h.ApplyEvent(want.GetEvent(), uint64(i)); err != nil {
			t.Fatalf("replaying %s: %v", c.name, err)
		}
	}
	got := h.All()
	want := []*SubmitterKey{
		{Tenant: "acme", ID: "acme-ci-2026", Public: key1, ValidFrom: evTime.Add(-24 * time.Hour), ValidUntil: evTime, State: KeyRotated, ReplacedBy: "acme-ci-2027", Events: []uint64{0, 1}},
		{Tenant: "acme", ID: "acme-ci-2027", Public: key2, ValidFrom: evTime, ValidUntil: evTime.Add(-time.Hour), State: KeyRevoked, Events: []uint64{1, 2}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("replayed history (-want +got):\n%s", diff)
	}
}
