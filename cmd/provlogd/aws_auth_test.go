package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/authorship"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TestAWSSharedAuth runs two frontends on one database: a tenant, a token
// and a submitter key made through A work through B at once (the token is
// unknown to B, which reloads the shared state), and a token revoked
// through B stops working through A within its refresh interval.
func TestAWSSharedAuth(t *testing.T) {
	t.Parallel()
	a := newAWS(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	dA := a.start(t, dirA)
	sharedKeys(t, dirA, dirB)
	dB := a.start(t, dirB)

	adminA, adminB := pb.NewAdminServiceClient(dA.conn), pb.NewAdminServiceClient(dB.conn)
	const tenant = "shared-acme"
	if _, err := adminA.CreateTenant(dA.ctx(), &pb.CreateTenantRequest{Name: tenant, Policy: &pb.TenantPolicy{RequireSignature: true}}); err != nil {
		t.Fatalf("CreateTenant through A: %v", err)
	}
	tok, err := adminA.CreateToken(dA.ctx(), &pb.CreateTokenRequest{Name: "engine", Roles: []string{"appender"}, Tenants: []string{tenant}})
	if err != nil {
		t.Fatalf("CreateToken through A: %v", err)
	}
	pub, priv, _ := ed25519.GenerateKey(nil)
	if _, err := adminA.RegisterKey(dA.ctx(), &pb.RegisterKeyRequest{Tenant: tenant, KeyId: "engine-1", PublicKey: pub}); err != nil {
		t.Fatalf("RegisterKey through A: %v", err)
	}

	// Through B, at once: the token appends a signed event of the tenant.
	asEngine := func() context.Context {
		return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+tok.GetSecret())
	}
	_, _, samples := loadSamples(t)
	next := func(id string) *pb.ProvenanceEvent {
		ev := proto.Clone(samples[0]).(*pb.ProvenanceEvent)
		ev.Tenant, ev.EventId, ev.EventTime = tenant, id, timestamppb.Now()
		if err := authorship.Sign(ev, "engine-1", priv); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	resp, err := dB.client().Append(asEngine(), &pb.AppendRequest{Event: next("signed-through-b")})
	if err != nil {
		t.Fatalf("Append through B with a token and key made through A: %v", err)
	}
	if ks, err := adminB.ListKeys(dB.ctx(), &pb.ListKeysRequest{Tenant: tenant}); err != nil || len(ks.GetKeys()) != 1 {
		t.Fatalf("ListKeys through B: %v, %v", ks, err)
	}
	t.Logf("signed event appended through B at %d", resp.GetIndex())
	// B checks signatures with A's key: a bad one is refused.
	bad := next("badly-signed")
	bad.Signature.Signature[0] ^= 1
	if _, err := dB.client().Append(asEngine(), &pb.AppendRequest{Event: bad}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("badly signed event through B: %v, want InvalidArgument", err)
	}
	if _, err := dA.client().Append(asEngine(), &pb.AppendRequest{Event: next("signed-through-a")}); err != nil {
		t.Fatalf("Append through A: %v", err)
	}

	// The same key registered through A and B at once: one wins, the
	// other is refused (AlreadyExists, or Aborted when both reached the
	// log), and key changes go on through either afterwards.
	var codesSeen [2]codes.Code
	var wg sync.WaitGroup
	for i, c := range []pb.AdminServiceClient{adminA, adminB} {
		d := []*daemon{dA, dB}[i]
		wg.Go(func() {
			p, _, _ := ed25519.GenerateKey(nil)
			_, err := c.RegisterKey(d.ctx(), &pb.RegisterKeyRequest{Tenant: tenant, KeyId: "raced", PublicKey: p})
			codesSeen[i] = status.Code(err)
		})
	}
	wg.Wait()
	if won := (codesSeen[0] == codes.OK) != (codesSeen[1] == codes.OK); !won {
		t.Fatalf("RegisterKey of one key through A and B at once: %v; want one OK", codesSeen)
	}
	for _, c := range codesSeen {
		if c != codes.OK && c != codes.AlreadyExists && c != codes.Aborted {
			t.Fatalf("the losing RegisterKey: %v, want AlreadyExists or Aborted", c)
		}
	}
	t.Logf("racing RegisterKey through A and B: %v", codesSeen)
	for i, c := range []pb.AdminServiceClient{adminA, adminB} {
		d := []*daemon{dA, dB}[i]
		p, _, _ := ed25519.GenerateKey(nil)
		if _, err := c.RegisterKey(d.ctx(), &pb.RegisterKeyRequest{Tenant: tenant, KeyId: fmt.Sprint("after-race-", i), PublicKey: p}); err != nil {
			t.Fatalf("RegisterKey through frontend %d after the race: %v", i, err)
		}
	}
	// A lists B's key once it refreshed (every 500ms).
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		ks, err := adminA.ListKeys(dA.ctx(), &pb.ListKeysRequest{Tenant: tenant})
		if err != nil {
			t.Fatal(err)
		}
		if len(ks.GetKeys()) == 4 {
			break
		}
		if time.Since(start) > 1500*time.Millisecond {
			t.Fatalf("ListKeys through A: %d keys after %v; want 4", len(ks.GetKeys()), time.Since(start))
		}
	}

	// Revoked through B: A refuses it within its refresh interval.
	if _, err := adminB.RevokeToken(dB.ctx(), &pb.RevokeTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatalf("RevokeToken through B: %v", err)
	}
	revoked := time.Now()
	for i := 0; ; i++ {
		_, err := dA.client().Append(asEngine(), &pb.AppendRequest{Event: next(fmt.Sprint("after-revoke-", i))})
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if err != nil {
			t.Fatalf("Append through A after the revocation: %v, want Unauthenticated", err)
		}
		if time.Since(revoked) > 1500*time.Millisecond {
			t.Fatalf("A still accepts the token %v after it was revoked through B", time.Since(revoked))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("A refused the revoked token %v after its revocation through B", time.Since(revoked).Round(time.Millisecond))
	if _, err := dB.client().Append(asEngine(), &pb.AppendRequest{Event: next("after-revoke-b")}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Append through B after the revocation: %v, want Unauthenticated", err)
	}
	// The bootstrap admin token is each frontend's own file: A's works on
	// B here only because sharedKeys copied it.
	if _, err := adminB.ListTenants(dB.ctx(), &pb.ListTenantsRequest{}); err != nil {
		t.Fatal(err)
	}
	dA.stop()
	dB.stop()
}
