package server_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// TestSensitiveReceipt: the submitter of an event with sensitive values
// (explicit ones and a field the tenant's policy marks sensitive) verifies
// its receipt against the event it sent, with the openings of the Append
// response; for Append, a re-sent duplicate and AppendBatch.
func TestSensitiveReceipt(t *testing.T) {
	dir, key := t.TempDir(), newKeyFile(t)
	h := startSV(t, dir, key, &vclock{t: testNow})
	ctx := withToken(t.Context(), svAppender)

	ev := sensitiveEvent(t, "acme", uniqueID(t, "one"))
	verify := func(what string, r *pb.Receipt, sent *pb.ProvenanceEvent, o []*pb.SensitiveOpening) {
		t.Helper()
		if len(o) != len(sent.GetSensitive())+1 { // + extensions.customer_email
			t.Errorf("%s: %d openings, want %d", what, len(o), len(sent.GetSensitive())+1)
		}
		if _, err := client.VerifySubmittedReceipt(r, h.verifier, sent, o); err != nil {
			t.Errorf("%s: VerifySubmittedReceipt: %v", what, err)
		}
		other := sensitiveEvent(t, sent.GetTenant(), sent.GetEventId())
		other.Sensitive[0].Value += "x"
		if _, err := client.VerifySubmittedReceipt(r, h.verifier, other, o); !errors.Is(err, client.ErrVerification) {
			t.Errorf("%s: another value verifies: %v", what, err)
		}
	}
	first, err := h.log.Append(ctx, &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatal(err)
	}
	verify("Append", first.GetReceipt(), ev, first.GetOpenings())
	again, err := h.log.Append(ctx, &pb.AppendRequest{Event: sensitiveEvent(t, "acme", ev.GetEventId()), Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil || !again.GetDuplicate() {
		t.Fatalf("re-sent: %v, %v", again, err)
	}
	verify("duplicate", again.GetReceipt(), ev, again.GetOpenings())

	evs := []*pb.ProvenanceEvent{sensitiveEvent(t, "acme", uniqueID(t, "two")), readEvent(t, uniqueID(t, "plain")), sensitiveEvent(t, "acme", uniqueID(t, "three"))}
	evs[1].Tenant = "acme"
	batch, err := h.log.AppendBatch(ctx, &pb.AppendBatchRequest{Events: evs, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range batch.GetResults() {
		if r.GetError() != nil {
			t.Fatalf("batch %d: %v", i, r.GetError())
		}
		if i == 1 {
			if len(r.GetOpenings()) != 0 {
				t.Errorf("plain event of a batch: openings %v", r.GetOpenings())
			}
			if _, err := client.VerifySubmittedReceipt(r.GetReceipt(), h.verifier, evs[1], nil); err != nil {
				t.Errorf("plain event of a batch: %v", err)
			}
			continue
		}
		verify("batch", r.GetReceipt(), evs[i], r.GetOpenings())
	}

	// The SDK's Append and AppendBatch verify these receipts themselves.
	vkey, err := os.ReadFile(filepath.Join(dir, "log.pub"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.ParsePolicy(strings.TrimSpace(string(vkey)), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{Addr: h.conn.Target(), HTTP: "http://127.0.0.1:1", Token: svAppender}, p, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Append(t.Context(), sensitiveEvent(t, "acme", uniqueID(t, "sdk")), pb.WaitFor_WAIT_FOR_PUBLISHED); err != nil {
		t.Errorf("client.Append of an event with sensitive values: %v", err)
	}
	if _, err := c.AppendBatch(t.Context(), []*pb.ProvenanceEvent{sensitiveEvent(t, "globex", uniqueID(t, "sdk-batch")), evs[1]}, pb.WaitFor_WAIT_FOR_PUBLISHED); err != nil {
		t.Errorf("client.AppendBatch of an event with sensitive values: %v", err)
	}
}
