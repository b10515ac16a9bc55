package server_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Who may do what, per tenant: the expected code for a caller of the
// tenant the request is about (own) and for one of another tenant
// (foreign). Admins hold every tenant.
type expect struct{ own, foreign codes.Code }

type roleExpect map[auth.Role]expect

const (
	ok     = codes.OK
	denied = codes.PermissionDenied
	absent = codes.NotFound
)

var (
	// appendFor: appenders and admins append for their tenants only.
	appendFor = roleExpect{auth.RoleAppender: {ok, denied}, auth.RoleReader: {denied, denied}, auth.RoleAuditor: {denied, denied}, auth.RoleAdmin: {ok, ok}}
	// readOwn: readers and auditors read their tenants; a foreign tenant's
	// data is NotFound, so its existence does not leak.
	readOwn = roleExpect{auth.RoleAppender: {denied, denied}, auth.RoleReader: {ok, absent}, auth.RoleAuditor: {ok, absent}, auth.RoleAdmin: {ok, ok}}
	// proofOwn: auditors prove leaves of their tenants.
	proofOwn = roleExpect{auth.RoleAppender: {denied, denied}, auth.RoleReader: {denied, denied}, auth.RoleAuditor: {ok, absent}, auth.RoleAdmin: {ok, ok}}
	// proofLog: about the whole tree (checkpoints, consistency, index
	// digest), which holds commitments of every tenant and no content.
	proofLog = roleExpect{auth.RoleAppender: {denied, denied}, auth.RoleReader: {denied, denied}, auth.RoleAuditor: {ok, ok}, auth.RoleAdmin: {ok, ok}}
	// adminOnly: AdminService.
	adminOnly = roleExpect{auth.RoleAppender: {denied, denied}, auth.RoleReader: {denied, denied}, auth.RoleAuditor: {denied, denied}, auth.RoleAdmin: {ok, ok}}
)

// matrixFixture is what the calls need: clients, and per tenant the index
// and leaf hash of one event with id matrixEventID in run matrixRun.
type matrixFixture struct {
	h        *adminHarness
	adminCtx context.Context
	index    map[string]uint64
	hash     map[string][]byte
	seq      atomic.Int64
}

const (
	matrixEventID = "matrix:read-1"
	matrixRun     = "run-7f3a9c"
	matrixWF      = "wf-matrix"
)

func (f *matrixFixture) unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, f.seq.Add(1))
}

// newKey registers a fresh key for tenant as admin and returns its id.
func (f *matrixFixture) newKey(tenant string) (string, error) {
	pub, _, _ := ed25519.GenerateKey(nil)
	id := f.unique("mk")
	_, err := f.h.admin.RegisterKey(f.adminCtx, &pb.RegisterKeyRequest{Tenant: tenant, KeyId: id, PublicKey: pub})
	return id, err
}

type matrixCall func(ctx context.Context, f *matrixFixture, tenant string) error

// roleMatrix is THE table: one row per gRPC method of provlog.v1, saying
// what each role gets for its own and a foreign tenant. TestRoleMatrix
// fails when a method of a registered service has no row.
var roleMatrix = map[string]struct {
	want roleExpect
	call matrixCall
}{
	pb.LogService_Append_FullMethodName: {appendFor, func(ctx context.Context, f *matrixFixture, tenant string) error {
		ev := matrixEvent(tenant, f.unique("matrix:append-"))
		_, err := f.h.client.Append(ctx, &pb.AppendRequest{Event: ev})
		return err
	}},
	pb.LogService_AppendBatch_FullMethodName: {appendFor, func(ctx context.Context, f *matrixFixture, tenant string) error {
		ev := matrixEvent(tenant, f.unique("matrix:batch-"))
		resp, err := f.h.client.AppendBatch(ctx, &pb.AppendBatchRequest{Events: []*pb.ProvenanceEvent{ev}})
		if err != nil {
			return err
		}
		if e := resp.GetResults()[0].GetError(); e != nil {
			return status.Error(codes.Code(e.GetCode()), e.GetMessage())
		}
		return nil
	}},
	pb.LogService_AppendStream_FullMethodName: {appendFor, func(ctx context.Context, f *matrixFixture, tenant string) error {
		// issue 8: one request on a stream; a refused stream ends with the
		// call's code, a refused event answers with its own.
		st, err := f.h.client.AppendStream(ctx)
		if err != nil {
			return err
		}
		if err := st.Send(&pb.AppendStreamRequest{CorrelationId: 1, Events: []*pb.ProvenanceEvent{matrixEvent(tenant, f.unique("matrix:stream-"))}}); err != nil && err != io.EOF {
			return err
		}
		if err := st.CloseSend(); err != nil {
			return err
		}
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		if e := resp.GetError(); e != nil {
			return status.Error(codes.Code(e.GetCode()), e.GetMessage())
		}
		if e := resp.GetResults()[0].GetError(); e != nil {
			return status.Error(codes.Code(e.GetCode()), e.GetMessage())
		}
		if _, err := st.Recv(); err != io.EOF {
			return fmt.Errorf("stream did not end after its one answer: %v", err)
		}
		return nil
	}},
	pb.LogService_GetEntry_FullMethodName: {readOwn, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := f.h.client.GetEntry(ctx, &pb.GetEntryRequest{Index: f.index[tenant]})
		return err
	}},
	pb.LogService_GetCheckpoint_FullMethodName: {proofLog, func(ctx context.Context, f *matrixFixture, _ string) error {
		_, err := f.h.client.GetCheckpoint(ctx, &pb.GetCheckpointRequest{})
		return err
	}},
	pb.LogService_GetInclusionProof_FullMethodName: {proofOwn, func(ctx context.Context, f *matrixFixture, tenant string) error {
		if _, err := f.h.client.GetInclusionProof(ctx, &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: f.index[tenant]}}); err != nil {
			return err
		}
		_, err := f.h.client.GetInclusionProof(ctx, &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: f.hash[tenant]}})
		return err
	}},
	pb.LogService_GetConsistencyProof_FullMethodName: {proofLog, func(ctx context.Context, f *matrixFixture, _ string) error {
		_, err := f.h.client.GetConsistencyProof(ctx, &pb.GetConsistencyProofRequest{FromSize: 1})
		return err
	}},
	pb.LineageService_Trace_FullMethodName: {readOwn, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := pb.NewLineageServiceClient(f.h.conn).Trace(ctx, &pb.TraceRequest{Tenant: tenant, Start: &pb.TraceRequest_EventId{EventId: matrixEventID}, Direction: pb.Direction_DIRECTION_BOTH, Depth: 2})
		return err
	}},
	pb.LineageService_History_FullMethodName: {readOwn, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := pb.NewLineageServiceClient(f.h.conn).History(ctx, &pb.HistoryRequest{Tenant: tenant, Asset: &pb.AssetRef{Uri: "crm://acme/contacts"}})
		return err
	}},
	pb.LineageService_ListRunEvents_FullMethodName: {readOwn, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := pb.NewLineageServiceClient(f.h.conn).ListRunEvents(ctx, &pb.ListRunEventsRequest{Tenant: tenant, RunId: matrixRun})
		return err
	}},
	pb.LineageService_ListWorkflowRuns_FullMethodName: {readOwn, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := pb.NewLineageServiceClient(f.h.conn).ListWorkflowRuns(ctx, &pb.ListWorkflowRunsRequest{Tenant: tenant, WorkflowId: matrixWF})
		return err
	}},
	pb.LineageService_GetIndexDigest_FullMethodName: {proofLog, func(ctx context.Context, f *matrixFixture, _ string) error {
		_, err := pb.NewLineageServiceClient(f.h.conn).GetIndexDigest(ctx, &pb.GetIndexDigestRequest{})
		return err
	}},
	pb.AdminService_CreateTenant_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := f.h.admin.CreateTenant(ctx, &pb.CreateTenantRequest{Name: f.unique(tenant + "-sub")})
		return err
	}},
	pb.AdminService_ListTenants_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, _ string) error {
		_, err := f.h.admin.ListTenants(ctx, &pb.ListTenantsRequest{})
		return err
	}},
	pb.AdminService_SetTenantPolicy_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := f.h.admin.SetTenantPolicy(ctx, &pb.SetTenantPolicyRequest{Tenant: tenant, Policy: &pb.TenantPolicy{}})
		return err
	}},
	pb.AdminService_CreateToken_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := f.h.admin.CreateToken(ctx, &pb.CreateTokenRequest{Name: f.unique("matrix-tok"), Roles: []string{"reader"}, Tenants: []string{tenant}})
		return err
	}},
	pb.AdminService_ListTokens_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, _ string) error {
		_, err := f.h.admin.ListTokens(ctx, &pb.ListTokensRequest{})
		return err
	}},
	pb.AdminService_RevokeToken_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		tok, err := f.h.admin.CreateToken(f.adminCtx, &pb.CreateTokenRequest{Name: f.unique("matrix-rev"), Roles: []string{"reader"}, Tenants: []string{tenant}})
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		_, err = f.h.admin.RevokeToken(ctx, &pb.RevokeTokenRequest{Id: tok.GetToken().GetId()})
		return err
	}},
	pb.AdminService_GrantCertificate_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := f.h.admin.GrantCertificate(ctx, &pb.GrantCertificateRequest{Subject: f.unique("cn-"), Roles: []string{"reader"}, Tenants: []string{tenant}})
		return err
	}},
	pb.AdminService_ListCertificateGrants_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, _ string) error {
		_, err := f.h.admin.ListCertificateGrants(ctx, &pb.ListCertificateGrantsRequest{})
		return err
	}},
	pb.AdminService_RevokeCertificateGrant_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		g, err := f.h.admin.GrantCertificate(f.adminCtx, &pb.GrantCertificateRequest{Subject: f.unique("cn-rev-"), Roles: []string{"reader"}, Tenants: []string{tenant}})
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		_, err = f.h.admin.RevokeCertificateGrant(ctx, &pb.RevokeCertificateGrantRequest{Subject: g.GetGrant().GetSubject()})
		return err
	}},
	pb.AdminService_RegisterKey_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		pub, _, _ := ed25519.GenerateKey(nil)
		_, err := f.h.admin.RegisterKey(ctx, &pb.RegisterKeyRequest{Tenant: tenant, KeyId: f.unique("rk"), PublicKey: pub})
		return err
	}},
	pb.AdminService_RotateKey_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		id, err := f.newKey(tenant)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		pub, _, _ := ed25519.GenerateKey(nil)
		_, err = f.h.admin.RotateKey(ctx, &pb.RotateKeyRequest{Tenant: tenant, KeyId: id, NewKeyId: f.unique("rot"), NewPublicKey: pub})
		return err
	}},
	pb.AdminService_RevokeKey_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		id, err := f.newKey(tenant)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		_, err = f.h.admin.RevokeKey(ctx, &pb.RevokeKeyRequest{Tenant: tenant, KeyId: id, Reason: "matrix"})
		return err
	}},
	pb.AdminService_ListKeys_FullMethodName: {adminOnly, func(ctx context.Context, f *matrixFixture, tenant string) error {
		_, err := f.h.admin.ListKeys(ctx, &pb.ListKeysRequest{Tenant: tenant})
		return err
	}},
}

// matrixEvent is a READ of sample shape in tenant, in run matrixRun.
func matrixEvent(tenant, id string) *pb.ProvenanceEvent {
	return &pb.ProvenanceEvent{SchemaVersion: 1, EventId: id, Tenant: tenant, Operation: pb.Operation_OPERATION_READ,
		EventTime: timestampAt(testNow.Add(-time.Hour)), Actor: &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_WORKFLOW, Id: "wf"},
		Workflow: &pb.Workflow{Platform: "n8n", WorkflowId: matrixWF, RunId: matrixRun},
		Inputs:   []*pb.Asset{{Uri: "crm://acme/contacts"}}}
}

// TestRoleMatrixComplete: every method of every provlog.v1 service (as
// compiled into this binary) and every method the server registers has a
// row in roleMatrix and an entry in server.Policy, and no row is stale.
func TestRoleMatrixComplete(t *testing.T) {
	methods := map[string]bool{}
	protoregistry.GlobalFiles.RangeFilesByPackage("provlog.v1", func(fd protoreflect.FileDescriptor) bool {
		if fd.Package() != "provlog.v1" {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				methods[fmt.Sprintf("/%s/%s", sd.FullName(), sd.Methods().Get(j).Name())] = true
			}
		}
		return true
	})
	h := startMatrixHarness(t).h
	for svc, info := range h.srv.GRPC.GetServiceInfo() {
		if !strings.HasPrefix(svc, "provlog.") {
			continue
		}
		for _, m := range info.Methods {
			methods["/"+svc+"/"+m.Name] = true
		}
	}
	if len(methods) < 20 {
		t.Fatalf("found only %d methods; is the descriptor walk broken?", len(methods))
	}
	for m := range methods {
		if _, ok := roleMatrix[m]; !ok {
			t.Errorf("method %s has no row in roleMatrix", m)
		}
		if _, ok := server.Policy.Methods[m]; !ok {
			t.Errorf("method %s has no entry in server.Policy", m)
		}
	}
	for m := range roleMatrix {
		if !methods[m] {
			t.Errorf("roleMatrix row %s names no method", m)
		}
	}
	for m := range server.Policy.Methods {
		if !methods[m] {
			t.Errorf("server.Policy entry %s names no method", m)
		}
	}
	// Every REST route maps to a method with a row (REST goes through the
	// same gRPC interceptors, so the matrix covers it).
	b, err := os.ReadFile(filepath.Join("..", "..", "proto", "provlog", "v1", "provlog_api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`selector: (provlog\.v1\.\w+)\.(\w+)`).FindAllStringSubmatch(string(b), -1) {
		if _, ok := roleMatrix["/"+m[1]+"/"+m[2]]; !ok {
			t.Errorf("REST rule for %s.%s has no roleMatrix row", m[1], m[2])
		}
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type matrixHarness struct {
	*matrixFixture
	tokens map[auth.Role]string // each role, granted tenant acme (admin: "*")
}

func startMatrixHarness(t *testing.T) *matrixHarness {
	t.Helper()
	var ix *lineage.Index
	h := startAdminHarnessWith(t, func(c *server.Config, dir string) {
		store, err := lineage.OpenPebbleStore(filepath.Join(dir, "lineage"), quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		ix, err = lineage.Open(t.Context(), store, c.Ledger.Reader(), lineage.Options{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		c.Lineage = ix
	})
	f := &matrixFixture{h: h, adminCtx: withToken(t.Context(), adminToken), index: map[string]uint64{}, hash: map[string][]byte{}}
	for _, ten := range []string{"acme", "other"} {
		ev := matrixEvent(ten, matrixEventID)
		r, err := h.client.Append(f.adminCtx, &pb.AppendRequest{Event: ev, Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
		if err != nil {
			t.Fatal(err)
		}
		f.index[ten], f.hash[ten] = r.GetIndex(), r.GetLeafHash()
	}
	// A key event in each tenant too, so that the index holds one.
	for _, ten := range []string{"acme", "other"} {
		if _, err := f.newKey(ten); err != nil {
			t.Fatal(err)
		}
	}
	h.publishedSize(t)
	if err := ix.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	mh := &matrixHarness{matrixFixture: f, tokens: map[auth.Role]string{}}
	for _, r := range auth.AllRoles {
		tenants := []string{"acme"}
		if r == auth.RoleAdmin {
			tenants = []string{auth.AllTenants}
		}
		mh.tokens[r] = h.token(t, "matrix-"+string(r), []string{string(r)}, tenants, "")
	}
	return mh
}

// TestRoleMatrix runs every row for every role, against the caller's own
// tenant (acme) and a foreign one (other), and checks the code.
func TestRoleMatrix(t *testing.T) {
	mh := startMatrixHarness(t)
	names := make([]string, 0, len(roleMatrix))
	for m := range roleMatrix {
		names = append(names, m)
	}
	sort.Strings(names)
	for _, m := range names {
		row := roleMatrix[m]
		for _, role := range auth.AllRoles {
			// The services embed pb.Unimplemented*Server for forward
			// compatibility; no method may fall through to it.
			if w := row.want[role]; w.own == codes.Unimplemented || w.foreign == codes.Unimplemented {
				t.Errorf("%s as %s: the table expects Unimplemented", m, role)
			}
			want, ok := row.want[role]
			if !ok {
				t.Errorf("%s: no expectation for role %s", m, role)
				continue
			}
			for _, c := range []struct {
				side, tenant string
				code         codes.Code
			}{{"own", "acme", want.own}, {"foreign", "other", want.foreign}} {
				err := row.call(withToken(t.Context(), mh.tokens[role]), mh.matrixFixture, c.tenant)
				if got := status.Code(err); got != c.code {
					t.Errorf("%s as %s, %s tenant: %v, want %v", m, role, c.side, err, c.code)
				}
			}
		}
		// Without credentials: always Unauthenticated.
		if err := row.call(t.Context(), mh.matrixFixture, "acme"); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s without a token: %v, want Unauthenticated", m, err)
		}
	}
}

// TestRoleMatrixREST: every REST rule of provlog_api.yaml, called as each
// role the table denies outright (both tenants), is 403, and without a
// token 401: REST reaches the same gRPC interceptors, with the same
// answers.
func TestRoleMatrixREST(t *testing.T) {
	mh := startMatrixHarness(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "proto", "provlog", "v1", "provlog_api.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`(?m)selector: (provlog\.v1\.\w+)\.(\w+)\n\s+(get|post|put|delete|patch): (\S+)`)
	params := strings.NewReplacer("{index}", "0", "{run_id}", matrixRun, "{tenant}", "acme", "{id}", "tok_x", "{key_id}", "k")
	rules := rule.FindAllStringSubmatch(string(b), -1)
	if len(rules) < 20 {
		t.Fatalf("found %d REST rules", len(rules))
	}
	for _, r := range rules {
		method := "/" + r[1] + "/" + r[2]
		row, ok := roleMatrix[method]
		if !ok {
			t.Errorf("REST rule for %s has no roleMatrix row", method)
			continue
		}
		verb, path := strings.ToUpper(r[3]), params.Replace(r[4])
		var body []byte
		if verb != http.MethodGet {
			body = []byte("{}")
		}
		if got := mh.h.rest(t, verb, path, "", body).status; got != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d, want 401", verb, path, got)
		}
		for _, role := range auth.AllRoles {
			if w := row.want[role]; w.own == denied && w.foreign == denied {
				if got := mh.h.rest(t, verb, path, mh.tokens[role], body).status; got != http.StatusForbidden {
					t.Errorf("%s %s as %s: %d, want 403", verb, path, role, got)
				}
			}
		}
	}
}
