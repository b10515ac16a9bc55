package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// TestMigrateToAWS moves a log from the embedded default to the aws storage
// with `provlogd migrate` (tessera's migration), then serves it from there:
// the same checkpoint (same root at the same size), the lineage index
// rebuilt to the same digest, idempotency kept, and appends going on after
// the migrated entries, consistent with the old checkpoint.
func TestMigrateToAWS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := filepath.Join(t.TempDir(), "vault.key")
	d := startDaemon(t, dir, "--vault-master-key", key)
	events := manyEvents(t, "mig", 299) // a full bundle and a partial one, with the sensitive event below
	const secret = "migrated-secret@example.com"
	sensitive := proto.Clone(events[1]).(*pb.ProvenanceEvent)
	sensitive.EventId = "mig-sensitive"
	sensitive.Sensitive = []*pb.SensitiveValue{{Name: "contact.email", Classification: "pii", Value: secret}}
	events = append(events, sensitive)
	var index []uint64
	for lo := 0; lo < len(events); lo += 100 {
		resp, err := d.client().AppendBatch(d.ctx(), &pb.AppendBatchRequest{Events: events[lo : lo+100]})
		if err != nil {
			t.Fatalf("AppendBatch: %v", err)
		}
		for _, r := range resp.GetResults() {
			if r.GetError() != nil {
				t.Fatal(r.GetError())
			}
			index = append(index, r.GetIndex())
		}
	}
	// An admin change of the embedded log (auth.json) moves with it.
	admin := pb.NewAdminServiceClient(d.conn)
	if _, err := admin.CreateTenant(d.ctx(), &pb.CreateTenantRequest{Name: "mig-tenant"}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(d.ctx(), &pb.CreateTokenRequest{Name: "mig-auditor", Roles: []string{"auditor"}, Tenants: []string{"mig-tenant"}})
	if err != nil {
		t.Fatal(err)
	}
	n := int64(len(events))
	before := d.waitForSize(n)
	digest := waitIndexed(t, d, uint64(n))
	d.stop()

	a := newAWS(t)
	cmd := exec.Command(provlogdBinary(t), "migrate", "--data-dir", dir,
		"--mysql-dsn", a.dsn, "--s3-endpoint", a.endpoint, "--s3-bucket", a.bucket)
	cmd.Env = append(os.Environ(), a.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("provlogd migrate: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "migrated 300 entries") || !strings.Contains(out.String(), "copied the vault: 1 values") ||
		!strings.Contains(out.String(), "copied auth.json") {
		t.Fatalf("provlogd migrate said %q", out.String())
	}

	d2 := a.start(t, dir, "--reindex", "--vault-master-key", key)
	after := d2.latestCheckpoint()
	if after.size != before.size || after.root != before.root {
		t.Fatalf("migrated checkpoint %d %v, source %d %v", after.size, after.root, before.size, before.root)
	}
	if got := waitIndexed(t, d2, uint64(n)); !bytes.Equal(got, digest) {
		t.Fatalf("lineage digest after migration %x, before %x", got, digest)
	}
	// The token made before the migration works: auth.json is in the
	// database.
	tctx := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok.GetSecret())
	if _, err := d2.client().GetCheckpoint(tctx, &pb.GetCheckpointRequest{}); err != nil {
		t.Fatalf("a token of the embedded log after migration: %v", err)
	}
	if ts, err := pb.NewAdminServiceClient(d2.conn).ListTenants(d2.ctx(), &pb.ListTenantsRequest{}); err != nil || len(ts.GetTenants()) != 1 {
		t.Fatalf("tenants after migration: %v, %v", ts, err)
	}
	// The vault moved with the log: the value is revealed from the database.
	reveal(t, d2, d2.ctx(), index[len(index)-1], secret)
	// Idempotency carried over: the index is rebuilt from the migrated log.
	resp, err := d2.client().AppendBatch(d2.ctx(), &pb.AppendBatchRequest{Events: events[:50]})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if !r.GetDuplicate() || r.GetIndex() != index[i] {
			t.Fatalf("re-append of %d after migration: index %d duplicate %v, want %d duplicate", i, r.GetIndex(), r.GetDuplicate(), index[i])
		}
	}
	// The log goes on after the migrated entries.
	more := manyEvents(t, "after-mig", 3)
	resp, err = d2.client().AppendBatch(d2.ctx(), &pb.AppendBatchRequest{Events: more, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if r.GetError() != nil || r.GetIndex() != uint64(n)+uint64(i) {
			t.Fatalf("append after migration: %v index %d, want %d", r.GetError(), r.GetIndex(), n+int64(i))
		}
		checkReceipt(t, d2, r.GetReceipt(), more[i])
	}
	grown := d2.waitForSize(n + 3)
	c, err := d2.client().GetConsistencyProof(d2.ctx(), &pb.GetConsistencyProofRequest{FromSize: uint64(n), ToSize: uint64(grown.size)})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(hashes(t, c.GetProof()), grown.size, grown.root, before.size, before.root); err != nil {
		t.Fatalf("migrated log not consistent with the source checkpoint: %v", err)
	}
	d2.stop()
}
