package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/vault"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"
)

// TestAWSSharedLineageAndVault runs two provlogd frontends on one database
// and bucket, with one vault master key file. Lineage-linked events and a
// sensitive one are appended through the first; the second answers the
// same Trace, History, ListRunEvents, ListWorkflowRuns and index digest
// from the shared lineage table, and reveals the sensitive value to an
// auditor from the shared vault. Then the frontend writing the index is
// killed, more events (one sensitive) are appended through the other, and
// the index catches up there; the killed one, restarted, agrees.
func TestAWSSharedLineageAndVault(t *testing.T) {
	t.Parallel()
	a := newAWS(t)
	key := filepath.Join(t.TempDir(), "vault-master.key")
	if err := vault.CreateMasterKeyFile(key); err != nil {
		t.Fatal(err)
	}
	dir1, dir2 := t.TempDir(), t.TempDir()
	d1 := a.start(t, dir1, "--vault-master-key", key)
	sharedKeys(t, dir1, dir2)
	d2 := a.start(t, dir2, "--vault-master-key", key)

	_, _, events := loadSamples(t)
	if _, err := d1.client().AppendBatch(d1.ctx(), &pb.AppendBatchRequest{Events: events, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED}); err != nil {
		t.Fatal(err)
	}
	secret := func(d *daemon, id, value string) uint64 {
		t.Helper()
		ev := proto.Clone(events[1]).(*pb.ProvenanceEvent)
		ev.EventId = id
		ev.Sensitive = []*pb.SensitiveValue{{Name: "contact.email", Classification: "pii", Value: value}}
		r, err := d.client().Append(d.ctx(), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
		if err != nil {
			t.Fatalf("Append %s: %v", id, err)
		}
		if bytes.Contains(r.GetReceipt().GetLeaf(), []byte(value)) {
			t.Fatal("the leaf holds the sensitive value")
		}
		return r.GetIndex()
	}
	const value1, value2 = "shared-secret-1@example.com", "shared-secret-2@example.com"
	idx1 := secret(d1, "shared:secret-1", value1)
	size := uint64(len(events)) + 1

	if g1, g2 := waitIndexed(t, d1, size), waitIndexed(t, d2, size); !bytes.Equal(g1, g2) {
		t.Fatalf("index digests at %d differ: %x and %x", size, g1, g2)
	}
	sameLineageAnswers(t, d1, d2, events)

	// An auditor of acme, made on d2, reveals through d2 what d1 sealed.
	auditor := auditorCtx(t, d2)
	reveal(t, d2, auditor, idx1, value1)

	// Kill the frontend that writes the index; append through the other.
	writer, other := d1, d2
	if isWriter(t, d2) {
		writer, other = d2, d1
	} else if !isWriter(t, d1) {
		t.Fatal("neither frontend writes the lineage index")
	}
	writer.kill()
	more := manyEvents(t, "after-kill", 30)
	if _, err := other.client().AppendBatch(other.ctx(), &pb.AppendBatchRequest{Events: more, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED}); err != nil {
		t.Fatal(err)
	}
	idx2 := secret(other, "shared:secret-2", value2)
	size += uint64(len(more)) + 1
	digest := waitIndexed(t, other, size)
	if !isWriter(t, other) {
		t.Fatal("the surviving frontend did not take over the lineage index")
	}

	// The killed frontend, restarted, reads the index the other wrote and
	// reveals what the other sealed.
	writer.start()
	if got := waitIndexed(t, writer, size); !bytes.Equal(got, digest) {
		t.Fatalf("restarted frontend: digest at %d is %x, the writer's %x", size, got, digest)
	}
	sameLineageAnswers(t, writer, other, events)
	reveal(t, d2, auditor, idx2, value2)
	reveal(t, d2, auditor, idx1, value1)
	d1.stop()
	d2.stop()
}

// isWriter reads provlog_lineage_writer from d's /metrics.
func isWriter(t *testing.T, d *daemon) bool {
	t.Helper()
	_, body := d.authGet("/metrics")
	switch {
	case bytes.Contains(body, []byte("\nprovlog_lineage_writer 1")):
		return true
	case bytes.Contains(body, []byte("\nprovlog_lineage_writer 0")):
		return false
	}
	t.Fatalf("no provlog_lineage_writer in /metrics:\n%s", body)
	return false
}

// auditorCtx makes an auditor token for acme on d and returns a context
// carrying it.
func auditorCtx(t *testing.T, d *daemon) context.Context {
	t.Helper()
	admin := pb.NewAdminServiceClient(d.conn)
	if _, err := admin.CreateTenant(d.ctx(), &pb.CreateTenantRequest{Name: "acme"}); err != nil && status.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreateTenant: %v", err)
	}
	r, err := admin.CreateToken(d.ctx(), &pb.CreateTokenRequest{Name: "auditor", Roles: []string{"auditor"}, Tenants: []string{"acme"}})
	if err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+r.GetSecret())
}

// reveal reads entry idx through d with ctx and requires its sensitive
// value revealed as want, opening the leaf's commitment.
func reveal(t *testing.T, d *daemon, ctx context.Context, idx uint64, want string) {
	t.Helper()
	e, err := d.client().GetEntry(ctx, &pb.GetEntryRequest{Index: idx})
	if err != nil {
		t.Fatalf("GetEntry(%d): %v", idx, err)
	}
	le, err := event.DecodeLeaf(e.GetLeaf())
	if err != nil {
		t.Fatal(err)
	}
	if len(e.GetSensitive()) != 1 {
		t.Fatalf("entry %d: %d sensitive values", idx, len(e.GetSensitive()))
	}
	r := e.GetSensitive()[0]
	if r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED || r.GetValue() != want ||
		!event.VerifyCommitment(le.GetEvent().GetSensitive()[0].GetCommitment(), r.GetSalt(), []byte(r.GetValue())) {
		t.Fatalf("entry %d: %v, want %q opening the leaf's commitment", idx, r, want)
	}
}

// sameLineageAnswers asks both frontends the same lineage questions and
// requires the same answers (proofs aside: each proves against its own
// latest checkpoint), and the trace's proofs to verify.
func sameLineageAnswers(t *testing.T, d1, d2 *daemon, events []*pb.ProvenanceEvent) {
	t.Helper()
	const export = "s3://acme-exports/marketing/customer_segments/2026-11-26.csv"
	wf := events[0].GetWorkflow()
	asks := []struct {
		name string
		ask  func(d *daemon) (proto.Message, error)
	}{
		{"Trace", func(d *daemon) (proto.Message, error) {
			return pb.NewLineageServiceClient(d.conn).Trace(d.ctx(), &pb.TraceRequest{Tenant: "acme",
				Start: &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: export}}, Direction: pb.Direction_DIRECTION_UPSTREAM, Depth: 10})
		}},
		{"History", func(d *daemon) (proto.Message, error) {
			return pb.NewLineageServiceClient(d.conn).History(d.ctx(), &pb.HistoryRequest{Tenant: "acme", Asset: &pb.AssetRef{Uri: export}})
		}},
		{"ListRunEvents", func(d *daemon) (proto.Message, error) {
			return pb.NewLineageServiceClient(d.conn).ListRunEvents(d.ctx(), &pb.ListRunEventsRequest{Tenant: events[0].GetTenant(), RunId: wf.GetRunId()})
		}},
		{"ListWorkflowRuns", func(d *daemon) (proto.Message, error) {
			return pb.NewLineageServiceClient(d.conn).ListWorkflowRuns(d.ctx(), &pb.ListWorkflowRunsRequest{Tenant: events[0].GetTenant(), WorkflowId: wf.GetWorkflowId()})
		}},
	}
	for _, q := range asks {
		r1, err1 := q.ask(d1)
		r2, err2 := q.ask(d2)
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v / %v", q.name, err1, err2)
		}
		if diff := cmp.Diff(r1, r2, protocmp.Transform(), protocmp.IgnoreFields(&pb.TraceResponse{}, "proofs"),
			protocmp.IgnoreFields(&pb.HistoryResponse{}, "proofs"), protocmp.IgnoreFields(&pb.ListRunEventsResponse{}, "proofs"),
			protocmp.IgnoreFields(&pb.ListWorkflowRunsResponse{}, "proofs")); diff != "" {
			t.Fatalf("%s differs between the frontends (-first +second):\n%s", q.name, diff)
		}
		if tr, ok := r2.(*pb.TraceResponse); ok {
			if len(tr.GetNodes()) < 5 {
				t.Fatalf("Trace: %d nodes, want the export's whole upstream", len(tr.GetNodes()))
			}
			policy, err := client.ParsePolicy(strings.TrimSpace(readFile(t, filepath.Join(d2.dataDir, "log.pub"))), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := client.VerifyTrace(tr, policy); err != nil {
				t.Fatalf("Trace from %s does not verify: %v", d2.httpAddr, err)
			}
		}
	}
	// The digest at an old size, by both.
	for _, size := range []uint64{uint64(len(events))} {
		var got [][]byte
		for _, d := range []*daemon{d1, d2} {
			r, err := pb.NewLineageServiceClient(d.conn).GetIndexDigest(d.ctx(), &pb.GetIndexDigestRequest{TreeSize: size})
			if err != nil {
				t.Fatalf("GetIndexDigest(%d): %v", size, err)
			}
			got = append(got, r.GetDigest())
		}
		if !bytes.Equal(got[0], got[1]) {
			t.Fatalf("digests at %d differ: %x and %x", size, got[0], got[1])
		}
	}
}
