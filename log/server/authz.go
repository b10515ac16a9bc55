package server

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// authorChecks checks what an event claims about who wrote it, against the
// authenticated identity, the tenant's submitter keys and its policy.
type authorChecks struct {
	store  *auth.Store // nil: no keys, no policies
	ledger *ledger.Ledger
}

func (a *authorChecks) keys() *authorship.KeyHistory {
	if a.store == nil {
		return nil
	}
	return a.store.Keys()
}

func (a *authorChecks) policy(tenant string) auth.TenantPolicy {
	if a.store == nil {
		return auth.TenantPolicy{}
	}
	return a.store.Policy(tenant)
}

// check runs after Validate and the tenant check. field is the event's
// path in the request ("event", "events[3]").
func (a *authorChecks) check(ctx context.Context, id *auth.Identity, ev *pb.ProvenanceEvent, field string) error {
	op := ev.GetOperation()
	if authorship.IsKeyOperation(op) {
		return status.Errorf(codes.PermissionDenied, "%s.operation: %s events are written by AdminService only", field, op)
	}
	if err := a.checkSignature(ev, field); err != nil {
		return err
	}
	if op == pb.Operation_OPERATION_APPROVAL || op == pb.Operation_OPERATION_OVERRIDE {
		if err := checkPerson(id, ev, field); err != nil {
			return err
		}
		if op == pb.Operation_OPERATION_OVERRIDE && a.policy(ev.GetTenant()).SecondPersonForOverrides {
			return a.checkSecondPerson(ctx, ev, field)
		}
	}
	return nil
}

func (a *authorChecks) checkSignature(ev *pb.ProvenanceEvent, field string) error {
	signed := ev.GetSignature().GetKeyId() != "" || len(ev.GetSignature().GetSignature()) != 0
	if !signed && !a.policy(ev.GetTenant()).RequireSignature {
		return nil
	}
	kh := a.keys()
	if kh == nil {
		kh = authorship.NewKeyHistory()
	}
	err := kh.Verify(ev)
	if errors.Is(err, authorship.ErrUnknownKey) && a.store != nil && a.store.RefreshOnMiss(context.Background()) {
		// A key just registered through another frontend sharing the store.
		err = kh.Verify(ev)
	}
	if errors.Is(err, authorship.ErrKeyNotValid) && a.ledger != nil {
		// A retry of an event appended while its key was valid (the key
		// was revoked since): let the log answer it as a duplicate. A
		// different body under that id is a conflict; nothing is appended
		// either way.
		if _, ok, lerr := a.ledger.LookupEvent(ev.GetTenant(), ev.GetEventId()); lerr == nil && ok {
			return nil
		}
	}
	var se *authorship.SignatureError
	if errors.As(err, &se) {
		return &event.FieldError{Field: prefixField(field, se.Field), Reason: se.Detail}
	}
	return err
}

func prefixField(field, sub string) string {
	if field == "event" {
		return sub
	}
	return field + "." + sub
}

// checkPerson: an approval or override names as its actor the person the
// credential belongs to. An admin credential that is no person's may
// record one for someone (imports, the bootstrap token); the leaf's
// submitter field then says which admin it was.
func checkPerson(id *auth.Identity, ev *pb.ProvenanceEvent, field string) error {
	if id.Person == "" {
		if slices.Contains(id.Roles, auth.RoleAdmin) {
			return nil
		}
		return status.Errorf(codes.PermissionDenied, "%s.operation: %s must be sent with the credential of the person acting (this one, %q, is no person's)", field, ev.GetOperation(), id.Name)
	}
	if ev.GetActor().GetId() != id.Person {
		return status.Errorf(codes.PermissionDenied, "%s: actor.id %q is not the authenticated person %q", prefixField(field, "actor.id"), ev.GetActor().GetId(), id.Person)
	}
	return nil
}

// checkSecondPerson: an override names, among its subjects, an approval of
// the same tenant by another person, published in the log, that covers
// every other subject of the override.
func (a *authorChecks) checkSecondPerson(ctx context.Context, ev *pb.ProvenanceEvent, field string) error {
	f := prefixField(field, "subject_event_ids")
	subjects := ev.GetSubjectEventIds()
	for _, sid := range subjects {
		idx, ok, err := a.ledger.LookupEvent(ev.GetTenant(), sid)
		if err != nil {
			return fmt.Errorf("looking up subject %q: %w", sid, err)
		}
		if !ok {
			continue
		}
		leaf, err := a.ledger.Entry(ctx, idx)
		if errors.Is(err, ledger.ErrNotFound) {
			return status.Errorf(codes.FailedPrecondition, "%s: subject %q (index %d) is not published yet; retry once it is", f, sid, idx)
		}
		if err != nil {
			return err
		}
		entry, err := event.DecodeLeaf(leaf)
		if err != nil {
			return fmt.Errorf("leaf %d does not decode: %w", idx, err)
		}
		ap := entry.GetEvent()
		if ap.GetOperation() != pb.Operation_OPERATION_APPROVAL || ap.GetActor().GetId() == ev.GetActor().GetId() {
			continue
		}
		covered := true
		for _, other := range subjects {
			if other != sid && !slices.Contains(ap.GetSubjectEventIds(), other) {
				covered = false
				break
			}
		}
		if covered {
			return nil
		}
	}
	return status.Errorf(codes.FailedPrecondition, "%s: tenant %q requires a second person for overrides: name an approval, by someone other than %q, of this override's other subjects", f, ev.GetTenant(), ev.GetActor().GetId())
}

// proofTenantCheck: a proof of a leaf of a tenant the caller is not granted
// is NotFound, like a leaf that is not there.
func proofTenantCheck(ctx context.Context, leaf []byte) error {
	entry, err := event.DecodeLeaf(leaf)
	if err != nil {
		return fmt.Errorf("leaf does not decode: %w", err)
	}
	if !auth.FromContext(ctx).CanActFor(entry.GetEvent().GetTenant()) {
		return ledger.ErrNotFound
	}
	return nil
}
