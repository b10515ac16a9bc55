package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// adminService implements provlog.v1.AdminService on an auth.Store. Key
// changes are appended to the log as key events before the store records
// them, so that the log holds the whole key history.
type adminService struct {
	pb.UnimplementedAdminServiceServer
	store  *auth.Store
	ledger *ledger.Ledger
	log    *slog.Logger
	now    func() time.Time

	keyMu sync.Mutex // one key change at a time: check, append, record
}

// adminErr maps store errors to statuses.
func (s *adminService) adminErr(ctx context.Context, op string, err error) error {
	var ie *auth.InvalidError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return invalid(ie.Field, ie.Reason)
	case errors.Is(err, auth.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, auth.ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, auth.ErrState):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, auth.ErrUnavailable):
		s.log.ErrorContext(ctx, "admin state unavailable", "op", op, "err", err)
		return status.Errorf(codes.Unavailable, "%s: the admin state's database is unavailable; nothing changed; retry", op)
	}
	return toStatus(ctx, s.log, op, err)
}

func tsOrNil(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tenantProto(t auth.Tenant) *pb.Tenant {
	return &pb.Tenant{Name: t.Name, CreateTime: tsOrNil(t.Created), Policy: &pb.TenantPolicy{
		RequireSignature: t.Policy.RequireSignature, SecondPersonForOverrides: t.Policy.SecondPersonForOverrides}}
}

func policyOf(p *pb.TenantPolicy) auth.TenantPolicy {
	return auth.TenantPolicy{RequireSignature: p.GetRequireSignature(), SecondPersonForOverrides: p.GetSecondPersonForOverrides()}
}

func rolesOf(rs []string) []auth.Role {
	out := make([]auth.Role, len(rs))
	for i, r := range rs {
		out[i] = auth.Role(r)
	}
	return out
}

func roleStrings(rs []auth.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

func tokenProto(t auth.Token) *pb.Token {
	return &pb.Token{Id: t.ID, Name: t.Name, Roles: roleStrings(t.Roles), Tenants: t.Tenants, Person: t.Person,
		CreateTime: tsOrNil(t.Created), ExpireTime: tsOrNil(t.Expires), RevokeTime: tsOrNil(t.Revoked)}
}

func grantProto(g auth.CertGrant) *pb.CertificateGrant {
	return &pb.CertificateGrant{Subject: g.Subject, Roles: roleStrings(g.Roles), Tenants: g.Tenants, Person: g.Person, CreateTime: tsOrNil(g.Created)}
}

func keyProto(k authorship.SubmitterKey) *pb.SubmitterKey {
	return &pb.SubmitterKey{Tenant: k.Tenant, KeyId: k.ID, PublicKey: k.Public, ValidFrom: tsOrNil(k.ValidFrom),
		ValidUntil: tsOrNil(k.ValidUntil), State: k.State, ReplacedBy: k.ReplacedBy, EventIndexes: k.Events}
}

func (s *adminService) CreateTenant(ctx context.Context, req *pb.CreateTenantRequest) (*pb.CreateTenantResponse, error) {
	t, err := s.store.CreateTenant(req.GetName(), policyOf(req.GetPolicy()))
	if err != nil {
		return nil, s.adminErr(ctx, "CreateTenant", err)
	}
	s.log.InfoContext(ctx, "tenant created", "tenant", t.Name, "by", auth.FromContext(ctx).Name)
	return &pb.CreateTenantResponse{Tenant: tenantProto(t)}, nil
}

func (s *adminService) ListTenants(ctx context.Context, _ *pb.ListTenantsRequest) (*pb.ListTenantsResponse, error) {
	resp := &pb.ListTenantsResponse{}
	for _, t := range s.store.Tenants() {
		resp.Tenants = append(resp.Tenants, tenantProto(t))
	}
	return resp, nil
}

func (s *adminService) SetTenantPolicy(ctx context.Context, req *pb.SetTenantPolicyRequest) (*pb.SetTenantPolicyResponse, error) {
	if req.GetTenant() == "" {
		return nil, invalid("tenant", "required")
	}
	t, err := s.store.SetPolicy(req.GetTenant(), policyOf(req.GetPolicy()))
	if err != nil {
		return nil, s.adminErr(ctx, "SetTenantPolicy", err)
	}
	s.log.InfoContext(ctx, "tenant policy set", "tenant", t.Name, "require_signature", t.Policy.RequireSignature,
		"second_person_for_overrides", t.Policy.SecondPersonForOverrides, "by", auth.FromContext(ctx).Name)
	return &pb.SetTenantPolicyResponse{Tenant: tenantProto(t)}, nil
}

func (s *adminService) CreateToken(ctx context.Context, req *pb.CreateTokenRequest) (*pb.CreateTokenResponse, error) {
	var exp time.Time
	if req.GetExpireTime() != nil {
		if err := req.GetExpireTime().CheckValid(); err != nil {
			return nil, invalid("expire_time", err.Error())
		}
		exp = req.GetExpireTime().AsTime()
	}
	t, secret, err := s.store.CreateToken(req.GetName(), rolesOf(req.GetRoles()), req.GetTenants(), req.GetPerson(), exp)
	if err != nil {
		return nil, s.adminErr(ctx, "CreateToken", err)
	}
	s.log.InfoContext(ctx, "token created", "token_id", t.ID, "name", t.Name, "roles", roleStrings(t.Roles), "tenants", t.Tenants, "by", auth.FromContext(ctx).Name)
	return &pb.CreateTokenResponse{Token: tokenProto(t), Secret: secret}, nil
}

func (s *adminService) ListTokens(ctx context.Context, _ *pb.ListTokensRequest) (*pb.ListTokensResponse, error) {
	resp := &pb.ListTokensResponse{}
	for _, t := range s.store.Tokens() {
		resp.Tokens = append(resp.Tokens, tokenProto(t))
	}
	return resp, nil
}

func (s *adminService) RevokeToken(ctx context.Context, req *pb.RevokeTokenRequest) (*pb.RevokeTokenResponse, error) {
	if req.GetId() == "" {
		return nil, invalid("id", "required")
	}
	t, err := s.store.RevokeToken(req.GetId())
	if err != nil {
		return nil, s.adminErr(ctx, "RevokeToken", err)
	}
	s.log.InfoContext(ctx, "token revoked", "token_id", t.ID, "name", t.Name, "by", auth.FromContext(ctx).Name)
	return &pb.RevokeTokenResponse{Token: tokenProto(t)}, nil
}

func (s *adminService) GrantCertificate(ctx context.Context, req *pb.GrantCertificateRequest) (*pb.GrantCertificateResponse, error) {
	g, err := s.store.GrantCert(req.GetSubject(), rolesOf(req.GetRoles()), req.GetTenants(), req.GetPerson())
	if err != nil {
		return nil, s.adminErr(ctx, "GrantCertificate", err)
	}
	s.log.InfoContext(ctx, "certificate granted", "subject", g.Subject, "roles", roleStrings(g.Roles), "tenants", g.Tenants, "by", auth.FromContext(ctx).Name)
	return &pb.GrantCertificateResponse{Grant: grantProto(g)}, nil
}

func (s *adminService) ListCertificateGrants(ctx context.Context, _ *pb.ListCertificateGrantsRequest) (*pb.ListCertificateGrantsResponse, error) {
	resp := &pb.ListCertificateGrantsResponse{}
	for _, g := range s.store.CertGrants() {
		resp.Grants = append(resp.Grants, grantProto(g))
	}
	return resp, nil
}

func (s *adminService) RevokeCertificateGrant(ctx context.Context, req *pb.RevokeCertificateGrantRequest) (*pb.RevokeCertificateGrantResponse, error) {
	if req.GetSubject() == "" {
		return nil, invalid("subject", "required")
	}
	g, err := s.store.RevokeCert(req.GetSubject())
	if err != nil {
		return nil, s.adminErr(ctx, "RevokeCertificateGrant", err)
	}
	s.log.InfoContext(ctx, "certificate grant revoked", "subject", g.Subject, "by", auth.FromContext(ctx).Name)
	return &pb.RevokeCertificateGrantResponse{Grant: grantProto(g)}, nil
}

// keyTenant checks the tenant of a key request: required and registered.
func (s *adminService) keyTenant(tenant string) error {
	if tenant == "" {
		return invalid("tenant", "required")
	}
	if !s.store.HasTenant(tenant) {
		return status.Errorf(codes.NotFound, "tenant %q is not registered", tenant)
	}
	return nil
}

// commitKeyEvent makes a key change: it records ev as pending in the store,
// appends it to the log, then applies it to the key history and drops it
// from pending in one step. A crash after the append leaves it pending:
// resolvePending finishes it at the next start or key change.
func (s *adminService) commitKeyEvent(ctx context.Context, ev *pb.ProvenanceEvent) (uint64, error) {
	if err := event.Validate(ev, s.now()); err != nil {
		return 0, fmt.Errorf("key event does not validate: %w", err)
	}
	submitter := auth.FromContext(ctx).Name
	if err := s.store.AddPending(ev, submitter); err != nil {
		return 0, err
	}
	idx, err := s.appendKeyEvent(ctx, ev, submitter)
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, ledger.ErrPushback) || errors.Is(err, ledger.ErrClosed) || status.Code(err) == codes.Aborted) {
			// Not sequenced (Aborted: the log holds another event under
			// its id, as when two frontends sharing the store make the
			// same key change at once): forget it, the caller retries.
			if derr := s.store.DropPending(ev); derr != nil {
				s.log.ErrorContext(ctx, "couldn't drop a pending key event", "event_id", ev.GetEventId(), "err", derr)
			}
		}
		return 0, err
	}
	return idx, s.store.ApplyPending(ev, idx)
}

// resolvePending appends (again: the log deduplicates) and applies every
// key event left pending by an interrupted key change. Callers hold keyMu,
// or run before serving.
func (s *adminService) resolvePending(ctx context.Context) error {
	// Frontends sharing the store: see what the others finished or
	// dropped, not an event another dropped after a conflict.
	if err := s.store.Refresh(ctx); err != nil {
		return err
	}
	evs, subs, err := s.store.Pending()
	if err != nil {
		return err
	}
	for i, ev := range evs {
		idx, err := s.appendKeyEvent(ctx, ev, subs[i])
		if err != nil {
			return fmt.Errorf("finishing pending key event %q: %w", ev.GetEventId(), err)
		}
		if err := s.store.ApplyPending(ev, idx); err != nil {
			return fmt.Errorf("applying pending key event %q: %w", ev.GetEventId(), err)
		}
		s.log.InfoContext(ctx, "finished an interrupted key change", "tenant", ev.GetTenant(), "event_id", ev.GetEventId(), "index", idx)
	}
	return nil
}

// appendKeyEvent appends a key event and waits until it is sequenced.
func (s *adminService) appendKeyEvent(ctx context.Context, ev *pb.ProvenanceEvent, submitter string) (uint64, error) {
	r := s.ledger.Append(ctx, []ledger.Submission{{Event: ev, Submitter: submitter}})[0]
	var ce *ledger.ConflictError
	if errors.As(r.Err, &ce) {
		// The log holds a different event under this key event's id: the
		// store lost a change the log has.
		return 0, status.Errorf(codes.Aborted, "the log already holds a different key event %q at index %d: the same key change was made at once through another frontend, or the key store (auth.json) is behind the log", ev.GetEventId(), ce.Index)
	}
	if r.Err != nil {
		return 0, r.Err
	}
	return r.Index, nil
}

func (s *adminService) RegisterKey(ctx context.Context, req *pb.RegisterKeyRequest) (*pb.RegisterKeyResponse, error) {
	if err := s.keyTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	now := s.now()
	from := now
	if req.GetValidFrom() != nil {
		if err := req.GetValidFrom().CheckValid(); err != nil {
			return nil, invalid("valid_from", err.Error())
		}
		from = req.GetValidFrom().AsTime()
		if from.After(now.Add(time.Hour)) {
			return nil, invalid("valid_from", "must not be more than 1h in the future")
		}
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if err := s.resolvePending(ctx); err != nil {
		return nil, s.adminErr(ctx, "key change", err)
	}
	kh := s.store.Keys()
	if err := kh.CheckRegister(req.GetTenant(), req.GetKeyId(), req.GetPublicKey()); err != nil {
		return nil, s.adminErr(ctx, "RegisterKey", err)
	}
	ev := authorship.KeyRegisterEvent(req.GetTenant(), req.GetKeyId(), req.GetPublicKey(), from, now, auth.FromContext(ctx).Actor())
	idx, err := s.commitKeyEvent(ctx, ev)
	if err != nil {
		return nil, s.adminErr(ctx, "RegisterKey", err)
	}
	k, _ := s.store.Keys().Get(req.GetTenant(), req.GetKeyId())
	s.log.InfoContext(ctx, "submitter key registered", "tenant", k.Tenant, "key_id", k.ID, "index", idx, "by", auth.FromContext(ctx).Name)
	return &pb.RegisterKeyResponse{Key: keyProto(k)}, nil
}

func (s *adminService) RotateKey(ctx context.Context, req *pb.RotateKeyRequest) (*pb.RotateKeyResponse, error) {
	if err := s.keyTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if err := s.resolvePending(ctx); err != nil {
		return nil, s.adminErr(ctx, "key change", err)
	}
	if err := s.store.Keys().CheckRotate(req.GetTenant(), req.GetKeyId(), req.GetNewKeyId(), req.GetNewPublicKey()); err != nil {
		return nil, s.adminErr(ctx, "RotateKey", err)
	}
	ev := authorship.KeyRotateEvent(req.GetTenant(), req.GetKeyId(), req.GetNewKeyId(), req.GetNewPublicKey(), s.now(), auth.FromContext(ctx).Actor())
	idx, err := s.commitKeyEvent(ctx, ev)
	if err != nil {
		return nil, s.adminErr(ctx, "RotateKey", err)
	}
	k, _ := s.store.Keys().Get(req.GetTenant(), req.GetNewKeyId())
	s.log.InfoContext(ctx, "submitter key rotated", "tenant", k.Tenant, "old_key_id", req.GetKeyId(), "key_id", k.ID, "index", idx, "by", auth.FromContext(ctx).Name)
	return &pb.RotateKeyResponse{Key: keyProto(k)}, nil
}

func (s *adminService) RevokeKey(ctx context.Context, req *pb.RevokeKeyRequest) (*pb.RevokeKeyResponse, error) {
	if err := s.keyTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	now := s.now()
	at := now
	if req.GetRevokeTime() != nil {
		if err := req.GetRevokeTime().CheckValid(); err != nil {
			return nil, invalid("revoke_time", err.Error())
		}
		at = req.GetRevokeTime().AsTime()
		if at.After(now) {
			return nil, invalid("revoke_time", "must not be in the future")
		}
	}
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if err := s.resolvePending(ctx); err != nil {
		return nil, s.adminErr(ctx, "key change", err)
	}
	if err := s.store.Keys().CheckRevoke(req.GetTenant(), req.GetKeyId()); err != nil {
		return nil, s.adminErr(ctx, "RevokeKey", err)
	}
	ev := authorship.KeyRevokeEvent(req.GetTenant(), req.GetKeyId(), at, now, req.GetReason(), auth.FromContext(ctx).Actor())
	idx, err := s.commitKeyEvent(ctx, ev)
	if err != nil {
		var fe *event.FieldError
		if errors.As(err, &fe) && fe.Field == "rationale" {
			return nil, invalid("reason", fe.Reason)
		}
		return nil, s.adminErr(ctx, "RevokeKey", err)
	}
	k, _ := s.store.Keys().Get(req.GetTenant(), req.GetKeyId())
	s.log.InfoContext(ctx, "submitter key revoked", "tenant", k.Tenant, "key_id", k.ID, "valid_until", k.ValidUntil, "index", idx, "by", auth.FromContext(ctx).Name)
	return &pb.RevokeKeyResponse{Key: keyProto(k)}, nil
}

func (s *adminService) ListKeys(ctx context.Context, req *pb.ListKeysRequest) (*pb.ListKeysResponse, error) {
	if err := s.keyTenant(req.GetTenant()); err != nil {
		return nil, err
	}
	resp := &pb.ListKeysResponse{}
	for _, k := range s.store.Keys().Tenant(req.GetTenant()) {
		resp.Keys = append(resp.Keys, keyProto(k))
	}
	return resp, nil
}
