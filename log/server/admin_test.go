package server_test

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// storeClock is the admin store's clock in tests: settable, so that tokens
// can expire.
type storeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *storeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *storeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// adminHarness is a harness whose authenticator is an auth.Store (file in
// the data dir) with the bootstrap admin token, tenants acme and other,
// and AdminService on.
type adminHarness struct {
	*harness
	store *auth.Store
	clock *storeClock
	admin pb.AdminServiceClient
}

func startAdminHarness(t *testing.T) *adminHarness {
	t.Helper()
	return startAdminHarnessWith(t, nil)
}

// startAdminHarnessWith lets configure change the server config (given the
// data dir) after the admin store is set.
func startAdminHarnessWith(t *testing.T, configure func(*server.Config, string)) *adminHarness {
	t.Helper()
	dir := t.TempDir()
	clk := &storeClock{t: testNow}
	st, err := auth.OpenStore(filepath.Join(dir, auth.StoreFile), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	st.AddStatic(adminToken, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	for _, ten := range []string{"acme", "other"} {
		if _, err := st.CreateTenant(ten, auth.TenantPolicy{}); err != nil {
			t.Fatal(err)
		}
	}
	h := startHarnessWith(t, dir, func(c *server.Config) {
		c.Auth, c.Admin = st, st
		if configure != nil {
			configure(c, dir)
		}
	})
	return &adminHarness{harness: h, store: st, clock: clk, admin: pb.NewAdminServiceClient(h.conn)}
}

// token creates a token through AdminService and returns its secret.
func (h *adminHarness) token(t *testing.T, name string, roles []string, tenants []string, person string) string {
	t.Helper()
	resp, err := h.admin.CreateToken(withToken(t.Context(), adminToken), &pb.CreateTokenRequest{Name: name, Roles: roles, Tenants: tenants, Person: person})
	if err != nil {
		t.Fatalf("CreateToken(%s): %v", name, err)
	}
	return resp.GetSecret()
}

func TestAdminTokensOverREST(t *testing.T) {
	h := startAdminHarness(t)
	// Create: the secret is in this answer only.
	body := `{"name":"ci-bot","roles":["appender"],"tenants":["acme"]}`
	var created pb.CreateTokenResponse
	h.rest(t, http.MethodPost, "/v1/admin/tokens", adminToken, []byte(body)).decode(t, &created)
	secret, id := created.GetSecret(), created.GetToken().GetId()
	if !strings.HasPrefix(secret, "pl_") || !strings.HasPrefix(id, "tok_") {
		t.Fatalf("CreateToken = %v", &created)
	}
	list := h.rest(t, http.MethodGet, "/v1/admin/tokens", adminToken, nil)
	if strings.Contains(string(list.body), secret) || strings.Contains(string(list.body), secret[3:]) {
		t.Fatal("ListTokens shows the secret")
	}
	var lr pb.ListTokensResponse
	list.decode(t, &lr)
	if len(lr.GetTokens()) != 1 || lr.GetTokens()[0].GetName() != "ci-bot" {
		t.Errorf("ListTokens = %v", &lr)
	}

	// Use it, over gRPC and REST.
	ev := readEvent(t, uniqueID(t, "1"))
	if _, err := h.client.Append(withToken(t.Context(), secret), &pb.AppendRequest{Event: ev}); err != nil {
		t.Fatalf("Append with the new token: %v", err)
	}
	// The token is not an admin's.
	restCode(t, h.rest(t, http.MethodGet, "/v1/admin/tokens", secret, nil), codes.PermissionDenied)

	// Revoke: refused from then on, everywhere.
	var rv pb.RevokeTokenResponse
	h.rest(t, http.MethodPost, "/v1/admin/tokens/"+id+":revoke", adminToken, nil).decode(t, &rv)
	if rv.GetToken().GetRevokeTime() == nil {
		t.Errorf("RevokeToken = %v, want a revoke_time", &rv)
	}
	_, err := h.client.Append(withToken(t.Context(), secret), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "2"))})
	grpcCode(t, err, codes.Unauthenticated)
	restCode(t, h.rest(t, http.MethodPost, "/v1/events", secret, eventJSON(t, readEvent(t, uniqueID(t, "3")))), codes.Unauthenticated)
	restCode(t, h.rest(t, http.MethodPost, "/v1/admin/tokens/tok_nope:revoke", adminToken, nil), codes.NotFound)

	// A token that expires: good until its time, refused at and after it.
	resp, err := h.admin.CreateToken(withToken(t.Context(), adminToken), &pb.CreateTokenRequest{
		Name: "short", Roles: []string{"appender"}, Tenants: []string{"acme"}, ExpireTime: timestamppb.New(testNow.Add(time.Minute))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.client.Append(withToken(t.Context(), resp.GetSecret()), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "4"))}); err != nil {
		t.Fatalf("Append before expiry: %v", err)
	}
	h.clock.add(time.Minute)
	_, err = h.client.Append(withToken(t.Context(), resp.GetSecret()), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "5"))})
	grpcCode(t, err, codes.Unauthenticated)

	// Bad requests name the field.
	for _, tc := range []struct {
		body, field string
	}{
		{`{"name":"x","roles":["root"],"tenants":["acme"]}`, "roles[0]"},
		{`{"name":"x","roles":["reader"],"tenants":["globex"]}`, "tenants[0]"},
		{`{"name":"x y","roles":["reader"],"tenants":["acme"]}`, "name"},
		{`{"name":"x","roles":["reader"],"tenants":["acme"],"expireTime":"2020-01-01T00:00:00Z"}`, "expire_time"},
	} {
		restCode(t, h.rest(t, http.MethodPost, "/v1/admin/tokens", adminToken, []byte(tc.body)), codes.InvalidArgument, tc.field)
	}
}

// TestTenantIsolation: an appender of acme can append for acme only and
// read nothing; a reader of other sees other's entries and NotFound for
// acme's.
func TestTenantIsolation(t *testing.T) {
	h := startAdminHarness(t)
	appA := h.token(t, "app-acme", []string{"appender"}, []string{"acme"}, "")
	readA := h.token(t, "read-acme", []string{"reader"}, []string{"acme"}, "")
	readB := h.token(t, "read-other", []string{"reader"}, []string{"other"}, "")
	audB := h.token(t, "audit-other", []string{"auditor"}, []string{"other"}, "")

	own := readEvent(t, uniqueID(t, "own"))
	r, err := h.client.Append(withToken(t.Context(), appA), &pb.AppendRequest{Event: own, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatalf("appender of acme, acme event: %v", err)
	}
	foreign := readEvent(t, uniqueID(t, "foreign"))
	foreign.Tenant = "other"
	before := h.size(t)
	_, err = h.client.Append(withToken(t.Context(), appA), &pb.AppendRequest{Event: foreign})
	grpcCode(t, err, codes.PermissionDenied, "tenant", "other")
	restCode(t, h.rest(t, http.MethodPost, "/v1/events", appA, eventJSON(t, foreign)), codes.PermissionDenied, "tenant")
	bresp, err := h.client.AppendBatch(withToken(t.Context(), appA), &pb.AppendBatchRequest{Events: []*pb.ProvenanceEvent{foreign}})
	if err != nil || bresp.GetResults()[0].GetError().GetCode() != int32(codes.PermissionDenied) {
		t.Errorf("AppendBatch of a foreign event: %v, %v", bresp, err)
	}
	if got := h.size(t); got != before {
		t.Errorf("refused appends grew the log from %d to %d", before, got)
	}
	// The appender cannot read, not even its own tenant.
	_, err = h.client.GetEntry(withToken(t.Context(), appA), &pb.GetEntryRequest{Index: r.GetIndex()})
	grpcCode(t, err, codes.PermissionDenied)
	// Readers: own tenant yes, foreign NotFound.
	if _, err := h.client.GetEntry(withToken(t.Context(), readA), &pb.GetEntryRequest{Index: r.GetIndex()}); err != nil {
		t.Errorf("reader of acme, acme entry: %v", err)
	}
	_, err = h.client.GetEntry(withToken(t.Context(), readB), &pb.GetEntryRequest{Index: r.GetIndex()})
	grpcCode(t, err, codes.NotFound)
	// Readers get no proofs; auditors get proofs of their tenants only,
	// by index or by leaf hash.
	_, err = h.client.GetInclusionProof(withToken(t.Context(), readA), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: r.GetIndex()}})
	grpcCode(t, err, codes.PermissionDenied)
	_, err = h.client.GetInclusionProof(withToken(t.Context(), audB), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: r.GetIndex()}})
	grpcCode(t, err, codes.NotFound)
	_, err = h.client.GetInclusionProof(withToken(t.Context(), audB), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: r.GetLeafHash()}})
	grpcCode(t, err, codes.NotFound)
	if _, err := h.client.GetInclusionProof(withToken(t.Context(), adminToken), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: r.GetIndex()}}); err != nil {
		t.Errorf("admin inclusion proof: %v", err)
	}
}

// TestSubmitterKeys: signatures verified against the key valid at the
// event's time; key changes are events in the log, from which anyone can
// rebuild the key history and re-verify authorship.
func TestSubmitterKeys(t *testing.T) {
	h := startAdminHarness(t)
	ctx := withToken(t.Context(), adminToken)
	app := h.token(t, "app-acme", []string{"appender"}, []string{"acme"}, "")
	pub1, priv1, _ := ed25519.GenerateKey(nil)
	pub2, priv2, _ := ed25519.GenerateKey(nil)
	_, forger, _ := ed25519.GenerateKey(nil)

	// Register over REST (valid from a month back, so the samples' times
	// are covered); require signatures.
	reg := fmt.Sprintf(`{"keyId":"k1","publicKey":%q,"validFrom":%q}`, toB64(pub1), testNow.Add(-30*24*time.Hour).Format(time.RFC3339))
	var rk pb.RegisterKeyResponse
	h.rest(t, http.MethodPost, "/v1/admin/tenants/acme/keys", adminToken, []byte(reg)).decode(t, &rk)
	if rk.GetKey().GetState() != authorship.KeyActive || len(rk.GetKey().GetEventIndexes()) != 1 {
		t.Fatalf("RegisterKey = %v", &rk)
	}
	if _, err := h.admin.SetTenantPolicy(ctx, &pb.SetTenantPolicyRequest{Tenant: "acme", Policy: &pb.TenantPolicy{RequireSignature: true}}); err != nil {
		t.Fatal(err)
	}
	append1 := func(ev *pb.ProvenanceEvent) (*pb.AppendResponse, error) {
		return h.client.Append(withToken(t.Context(), app), &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	}
	sign := func(ev *pb.ProvenanceEvent, id string, k ed25519.PrivateKey) *pb.ProvenanceEvent {
		if err := authorship.Sign(ev, id, k); err != nil {
			t.Fatal(err)
		}
		return ev
	}

	// Unsigned: refused by the policy. Forged: refused, nothing appended.
	before := h.size(t)
	_, err := append1(readEvent(t, uniqueID(t, "unsigned")))
	grpcCode(t, err, codes.InvalidArgument, "signature")
	forged := sign(readEvent(t, uniqueID(t, "forged")), "k1", forger)
	_, err = append1(forged)
	grpcCode(t, err, codes.InvalidArgument, "signature.signature", "does not verify")
	tampered := sign(readEvent(t, uniqueID(t, "tampered")), "k1", priv1)
	tampered.Inputs[0].Version = "tampered"
	_, err = append1(tampered)
	grpcCode(t, err, codes.InvalidArgument, "signature.signature")
	if got := h.size(t); got != before {
		t.Fatalf("refused events grew the log from %d to %d", before, got)
	}
	// Signed with k1: appended, key id and signature in the leaf.
	early := sign(readEvent(t, uniqueID(t, "early")), "k1", priv1) // event_time 2026-11-26T02:00:41.907Z
	r1, err := append1(early)
	if err != nil {
		t.Fatalf("signed append: %v", err)
	}

	// Rotate to k2 at testNow: k1 signs nothing after it, k2 does. Then
	// revoke k2 (from testNow, the server's clock): k2 signs nothing after
	// it, and k1 stays valid for what it signed before the rotation.
	if _, err := h.admin.RotateKey(ctx, &pb.RotateKeyRequest{Tenant: "acme", KeyId: "k1", NewKeyId: "k2", NewPublicKey: pub2}); err != nil {
		t.Fatalf("RotateKey: %v", err)
	}
	late := readEvent(t, uniqueID(t, "late"))
	late.EventTime = timestamppb.New(testNow.Add(time.Minute))
	if _, err := append1(sign(proto.Clone(late).(*pb.ProvenanceEvent), "k1", priv1)); err == nil {
		t.Error("k1 signature on an event after the rotation was accepted")
	}
	lateSigned := sign(proto.Clone(late).(*pb.ProvenanceEvent), "k2", priv2)
	if _, err := append1(lateSigned); err != nil {
		t.Fatalf("k2 signature after the rotation: %v", err)
	}
	rev, err := h.admin.RevokeKey(ctx, &pb.RevokeKeyRequest{Tenant: "acme", KeyId: "k2", Reason: "key file leaked"})
	if err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if rev.GetKey().GetState() != authorship.KeyRevoked {
		t.Errorf("RevokeKey = %v", rev)
	}
	after := readEvent(t, uniqueID(t, "after-revoke"))
	after.EventTime = timestamppb.New(testNow.Add(2 * time.Minute))
	before = h.size(t)
	_, err = append1(sign(after, "k2", priv2))
	grpcCode(t, err, codes.InvalidArgument, "signature.key_id", "revoked")
	if got := h.size(t); got != before {
		t.Fatalf("a refused event grew the log from %d to %d", before, got)
	}
	// A retry of an event appended before the revocation is a duplicate,
	// not a refusal; a changed body under its id is a conflict.
	if r, err := append1(lateSigned); err != nil || !r.GetDuplicate() {
		t.Errorf("retry of an event appended before its key's revocation: %v, %v; want a duplicate", r, err)
	}
	changed := proto.Clone(lateSigned).(*pb.ProvenanceEvent)
	changed.Inputs[0].Version = "changed"
	_, err = append1(sign(changed, "k2", priv2))
	grpcCode(t, err, codes.AlreadyExists)
	_, err = h.admin.RevokeKey(ctx, &pb.RevokeKeyRequest{Tenant: "acme", KeyId: "k2"})
	grpcCode(t, err, codes.FailedPrecondition)
	_, err = h.admin.RegisterKey(ctx, &pb.RegisterKeyRequest{Tenant: "acme", KeyId: "k1", PublicKey: pub1})
	grpcCode(t, err, codes.AlreadyExists)
	_, err = h.admin.RegisterKey(ctx, &pb.RegisterKeyRequest{Tenant: "acme", KeyId: "k3", PublicKey: pub1[:31]})
	grpcCode(t, err, codes.InvalidArgument, "public_key")
	_, err = h.client.Append(ctx, &pb.AppendRequest{Event: authorship.KeyRevokeEvent("acme", "k1", testNow, testNow, "", &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "x"})})
	grpcCode(t, err, codes.PermissionDenied, "AdminService")

	// Anyone can rebuild the key history from the log and re-verify: the
	// early event still verifies (signed before the key's end), and the key
	// history equals the server's.
	size := h.publishedSize(t)
	kh := authorship.NewKeyHistory()
	var keyEvents int
	for i := range size {
		leaf, err := h.ledger.Entry(t.Context(), i)
		if err != nil {
			t.Fatal(err)
		}
		e, err := event.DecodeLeaf(leaf)
		if err != nil {
			t.Fatal(err)
		}
		if authorship.IsKeyOperation(e.GetEvent().GetOperation()) {
			keyEvents++
			if err := kh.ApplyEvent(e.GetEvent(), i); err != nil {
				t.Fatalf("replaying key event %d: %v", i, err)
			}
		}
		if i == r1.GetIndex() {
			if e.GetEvent().GetSignature().GetKeyId() != "k1" {
				t.Errorf("leaf %d holds signature %v", i, e.GetEvent().GetSignature())
			}
			if err := kh.Verify(e.GetEvent()); err != nil {
				t.Errorf("re-verifying the early event from the log: %v", err)
			}
		}
	}
	if keyEvents != 3 {
		t.Errorf("%d key events in the log, want 3 (register, rotate, revoke)", keyEvents)
	}
	lk, err := h.admin.ListKeys(ctx, &pb.ListKeysRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range lk.GetKeys() {
		got, _ := kh.Get("acme", k.GetKeyId())
		if !got.ValidFrom.Equal(k.GetValidFrom().AsTime()) || k.GetState() != got.State || fmt.Sprint(got.Events) != fmt.Sprint(k.GetEventIndexes()) {
			t.Errorf("key %s: server %v, replayed from the log %+v", k.GetKeyId(), k, got)
		}
	}
	if err := kh.Verify(early); err != nil {
		t.Errorf("early event after revocation: %v", err)
	}
}

func timestampAt(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func toB64(b []byte) string {
	j, _ := json.Marshal(b) // protojson bytes are standard base64
	return strings.Trim(string(j), `"`)
}

// TestHumanActions: approvals and overrides name the authenticated person;
// a tenant may require a second person for overrides.
func TestHumanActions(t *testing.T) {
	h := startAdminHarness(t)
	ctx := withToken(t.Context(), adminToken)
	priya := h.token(t, "priya", []string{"appender"}, []string{"acme"}, "priya.natarajan@acme.example")
	bot := h.token(t, "bot", []string{"appender"}, []string{"acme"}, "")
	approval := sampleEvent(t, "07-crm-export-approval") // actor priya.natarajan@acme.example

	_, err := h.client.Append(withToken(t.Context(), bot), &pb.AppendRequest{Event: approval})
	grpcCode(t, err, codes.PermissionDenied, "person")
	other := proto.Clone(approval).(*pb.ProvenanceEvent)
	other.Actor.Id = "someone.else@acme.example"
	_, err = h.client.Append(withToken(t.Context(), priya), &pb.AppendRequest{Event: other})
	grpcCode(t, err, codes.PermissionDenied, "actor.id")
	if _, err := h.client.Append(withToken(t.Context(), priya), &pb.AppendRequest{Event: approval, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED}); err != nil {
		t.Fatalf("approval by its person: %v", err)
	}

	// Second person for overrides.
	if _, err := h.admin.SetTenantPolicy(ctx, &pb.SetTenantPolicyRequest{Tenant: "acme", Policy: &pb.TenantPolicy{SecondPersonForOverrides: true}}); err != nil {
		t.Fatal(err)
	}
	jonas := h.token(t, "jonas", []string{"appender"}, []string{"acme"}, "jonas@acme.example")
	override := &pb.ProvenanceEvent{SchemaVersion: 1, EventId: uniqueID(t, "override"), Tenant: "acme", Operation: pb.Operation_OPERATION_OVERRIDE,
		EventTime: timestamppb.New(testNow.Add(-time.Hour)), Actor: &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_PERSON, Id: "jonas@acme.example"},
		Workflow: &pb.Workflow{Platform: "n8n", RunId: "run-7f3a9c"}, Rationale: "quality gate false positive",
		SubjectEventIds: []string{"n8n:run-7f3a9c:dedupe-normalise"}}
	_, err = h.client.Append(withToken(t.Context(), jonas), &pb.AppendRequest{Event: override})
	grpcCode(t, err, codes.FailedPrecondition, "second person")
	// Naming priya's approval, which covers the other subject: accepted.
	override.SubjectEventIds = append(override.SubjectEventIds, approval.GetEventId())
	if _, err := h.client.Append(withToken(t.Context(), jonas), &pb.AppendRequest{Event: override}); err != nil {
		t.Fatalf("override with a second person's approval: %v", err)
	}
	// Priya cannot be her own second person.
	self := proto.Clone(override).(*pb.ProvenanceEvent)
	self.EventId, self.Actor.Id = uniqueID(t, "self"), "priya.natarajan@acme.example"
	_, err = h.client.Append(withToken(t.Context(), priya), &pb.AppendRequest{Event: self})
	grpcCode(t, err, codes.FailedPrecondition, "second person")
}

func TestAdminTenantsAndGrants(t *testing.T) {
	h := startAdminHarness(t)
	ctx := withToken(t.Context(), adminToken)
	restCode(t, h.rest(t, http.MethodPost, "/v1/admin/tenants", adminToken, []byte(`{"name":"Bad Name"}`)), codes.InvalidArgument, "name")
	restCode(t, h.rest(t, http.MethodPost, "/v1/admin/tenants", adminToken, []byte(`{"name":"acme"}`)), codes.AlreadyExists)
	var ct pb.CreateTenantResponse
	h.rest(t, http.MethodPost, "/v1/admin/tenants", adminToken, []byte(`{"name":"globex","policy":{"requireSignature":true}}`)).decode(t, &ct)
	if !ct.GetTenant().GetPolicy().GetRequireSignature() {
		t.Errorf("CreateTenant = %v", &ct)
	}
	var lt pb.ListTenantsResponse
	h.rest(t, http.MethodGet, "/v1/admin/tenants", adminToken, nil).decode(t, &lt)
	var names []string
	for _, x := range lt.GetTenants() {
		names = append(names, x.GetName())
	}
	if fmt.Sprint(names) != "[acme globex other]" {
		t.Errorf("ListTenants = %v", names)
	}
	var sp pb.SetTenantPolicyResponse
	h.rest(t, http.MethodPut, "/v1/admin/tenants/globex/policy", adminToken, []byte(`{"secondPersonForOverrides":true}`)).decode(t, &sp)
	if p := sp.GetTenant().GetPolicy(); p.GetRequireSignature() || !p.GetSecondPersonForOverrides() {
		t.Errorf("SetTenantPolicy = %v", &sp)
	}
	restCode(t, h.rest(t, http.MethodPut, "/v1/admin/tenants/nope/policy", adminToken, []byte(`{}`)), codes.NotFound)
	if _, err := h.admin.GrantCertificate(ctx, &pb.GrantCertificateRequest{Subject: "spiffe://acme.example/ns/etl/sa/n8n", Roles: []string{"appender"}, Tenants: []string{"acme"}}); err != nil {
		t.Fatal(err)
	}
	var lg pb.ListCertificateGrantsResponse
	h.rest(t, http.MethodGet, "/v1/admin/certificates", adminToken, nil).decode(t, &lg)
	if len(lg.GetGrants()) != 1 {
		t.Errorf("ListCertificateGrants = %v", &lg)
	}
	var rg pb.RevokeCertificateGrantResponse
	h.rest(t, http.MethodPost, "/v1/admin/certificates:revoke", adminToken, []byte(`{"subject":"spiffe://acme.example/ns/etl/sa/n8n"}`)).decode(t, &rg)
	restCode(t, h.rest(t, http.MethodPost, "/v1/admin/certificates:revoke", adminToken, []byte(`{"subject":"spiffe://acme.example/ns/etl/sa/n8n"}`)), codes.NotFound)
}

// TestInterruptedKeyChange: a key change recorded as pending (the process
// died before or after appending it) is finished when the server starts:
// appended once, applied to the key store.
func TestInterruptedKeyChange(t *testing.T) {
	pub1, _, _ := ed25519.GenerateKey(nil)
	pub2, _, _ := ed25519.GenerateKey(nil)
	by := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"}
	var appendedAt uint64
	h := startAdminHarnessWith(t, func(c *server.Config, _ string) {
		// k1: died after recording, before appending.
		if err := c.Admin.AddPending(authorship.KeyRegisterEvent("acme", "k1", pub1, testNow, testNow, by), "admin"); err != nil {
			t.Fatal(err)
		}
		// k2: died after appending, before applying.
		ev := authorship.KeyRegisterEvent("acme", "k2", pub2, testNow, testNow, by)
		if err := c.Admin.AddPending(ev, "admin"); err != nil {
			t.Fatal(err)
		}
		r := c.Ledger.Append(t.Context(), []ledger.Submission{{Event: ev, Submitter: "admin"}})[0]
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		appendedAt = r.Index
	})
	evs, _, err := h.store.Pending()
	if err != nil || len(evs) != 0 {
		t.Fatalf("pending after start: %v, %v", evs, err)
	}
	lk, err := h.admin.ListKeys(withToken(t.Context(), adminToken), &pb.ListKeysRequest{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if len(lk.GetKeys()) != 2 {
		t.Fatalf("ListKeys = %v, want k1 and k2", lk)
	}
	for _, k := range lk.GetKeys() {
		if k.GetKeyId() == "k2" && k.GetEventIndexes()[0] != appendedAt {
			t.Errorf("k2 recorded at %v, want the index it was appended at, %d", k.GetEventIndexes(), appendedAt)
		}
	}
	if n := h.size(t); n != 2 {
		t.Errorf("log holds %d leaves, want 2 (k2's append not repeated)", n)
	}
}
