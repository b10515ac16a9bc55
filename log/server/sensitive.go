package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/vault"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// sensitive is the server side of sensitive values: sealing them into the
// vault before a leaf is built, and showing each caller what its role may
// see of them on reads. A nil vault means the log takes no sensitive
// values.
type sensitive struct {
	vault  *vault.Vault
	policy *vault.Policy
	log    *slog.Logger
}

// pendingSeal is one event whose sensitive values are to be sealed.
type pendingSeal struct {
	ev    *pb.ProvenanceEvent // the copy that will be appended
	field string              // "event" or "events[i]", for errors
}

// prepare returns the event to append: ev itself when nothing in it is
// sensitive, otherwise a copy with the tenant policy's sensitive fields
// moved into its sensitive values, which seal then fills in. ev was
// validated.
func (s *sensitive) prepare(ev *pb.ProvenanceEvent, field string) (*pb.ProvenanceEvent, bool, error) {
	fields := s.policy.SensitiveFields(ev.GetTenant())
	moved := false
	for path := range fields {
		m, k, _ := vault.SplitFieldPath(path)
		if _, ok := pick(ev, m)[k]; ok {
			moved = true
		}
	}
	if len(ev.GetSensitive()) == 0 && !moved {
		return ev, false, nil
	}
	if s.vault == nil {
		return nil, false, status.Errorf(codes.FailedPrecondition, "%s.sensitive: this log has no vault for sensitive values (provlogd --vault-master-key)", field)
	}
	out := proto.Clone(ev).(*pb.ProvenanceEvent)
	for _, path := range slices.Sorted(maps.Keys(fields)) {
		m, k, _ := vault.SplitFieldPath(path)
		mp := pick(out, m)
		v, ok := mp[k]
		if !ok {
			continue
		}
		for _, sv := range out.Sensitive {
			if sv.GetName() == path {
				return nil, false, &event.FieldError{Field: field + ".sensitive", Reason: fmt.Sprintf("name %q is also a field the tenant policy marks sensitive", path)}
			}
		}
		delete(mp, k)
		out.Sensitive = append(out.Sensitive, &pb.SensitiveValue{Name: path, Classification: fields[path], Value: v})
	}
	return out, true, nil
}

func pick(ev *pb.ProvenanceEvent, m string) map[string]string {
	if m == "environment" {
		return ev.GetEnvironment()
	}
	return ev.GetExtensions()
}

// seal moves the values of the prepared events into the vault, in one
// synced write, and puts key ids and commitments in their place. It returns
// each event's openings, for its submitter's Append response.
func (s *sensitive) seal(evs []*pb.ProvenanceEvent) ([][]*pb.SensitiveOpening, error) {
	reqs := make([]vault.Request, len(evs))
	for i, ev := range evs {
		r := vault.Request{Tenant: ev.GetTenant(), EventID: ev.GetEventId(), Values: make([]vault.Plain, len(ev.GetSensitive()))}
		for j, sv := range ev.GetSensitive() {
			r.Values[j] = vault.Plain{Name: sv.GetName(), Classification: sv.GetClassification(), Value: []byte(sv.GetValue())}
		}
		reqs[i] = r
	}
	sealed, err := s.vault.SealBatch(reqs)
	if err != nil {
		return nil, fmt.Errorf("couldn't seal sensitive values: %w", err)
	}
	openings := make([][]*pb.SensitiveOpening, len(evs))
	for i, ev := range evs {
		openings[i] = make([]*pb.SensitiveOpening, len(ev.GetSensitive()))
		for j, sv := range ev.GetSensitive() {
			sv.Value, sv.KeyId, sv.Commitment = "", sealed[i][j].KeyID, sealed[i][j].Commitment[:]
			openings[i][j] = &pb.SensitiveOpening{Name: sv.GetName(), Salt: sealed[i][j].Salt}
		}
	}
	return openings, nil
}

// reveal shows the sensitive values of a leaf's event as the caller may see
// them: in clear with the salt that opens the commitment, redacted, or
// erased.
func (s *sensitive) reveal(ctx context.Context, e *pb.ProvenanceEvent) []*pb.SensitiveReveal {
	if len(e.GetSensitive()) == 0 {
		return nil
	}
	var roles []string
	if id := auth.FromContext(ctx); id != nil {
		for _, r := range id.Roles {
			roles = append(roles, string(r))
		}
	}
	out := make([]*pb.SensitiveReveal, len(e.GetSensitive()))
	for i, sv := range e.GetSensitive() {
		r := &pb.SensitiveReveal{Name: sv.GetName(), Classification: sv.GetClassification(), KeyId: sv.GetKeyId(), Commitment: sv.GetCommitment()}
		out[i] = r
		class := sv.GetClassification()
		if !s.policy.Reveals(e.GetTenant(), class, roles) {
			r.Status, r.Display = pb.SensitiveStatus_SENSITIVE_STATUS_REDACTED, "[REDACTED: "+class+"]"
			continue
		}
		if s.vault == nil || len(sv.GetCommitment()) != 32 {
			r.Status, r.Display = pb.SensitiveStatus_SENSITIVE_STATUS_UNAVAILABLE, "[UNAVAILABLE: "+class+"]"
			continue
		}
		o, err := s.vault.Reveal(e.GetTenant(), e.GetEventId(), vault.Sealed{
			Name: sv.GetName(), Classification: class, KeyID: sv.GetKeyId(), Commitment: [32]byte(sv.GetCommitment()),
		})
		var ee *vault.ErasedError
		switch {
		case errors.As(err, &ee):
			r.Status = pb.SensitiveStatus_SENSITIVE_STATUS_SHREDDED
			if ee.Action == vault.ActionArchive {
				r.Status = pb.SensitiveStatus_SENSITIVE_STATUS_ARCHIVED
			}
			r.ErasedTime, r.Policy = timestamppb.New(ee.At), ee.Policy
			r.Display = fmt.Sprintf("[ERASED: %s, %s at %s under policy %s]", class, ee.Action.Past(), ee.At.UTC().Format(time.RFC3339), ee.Policy)
		case err != nil:
			s.log.ErrorContext(ctx, "sensitive value unavailable", "tenant", e.GetTenant(), "event_id", e.GetEventId(), "name", sv.GetName(), "err", err)
			r.Status, r.Display = pb.SensitiveStatus_SENSITIVE_STATUS_UNAVAILABLE, "[UNAVAILABLE: "+class+"]"
		default:
			r.Status, r.Value, r.Salt, r.Display = pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED, string(o.Value), o.Salt, string(o.Value)
		}
	}
	return out
}

// annotateTrace adds to each activity node of a trace the sensitive values
// of its event, as the caller may see them, and marks the node masked when
// any of them is hidden.
func (s *sensitive) annotateTrace(ctx context.Context, resp *pb.TraceResponse) {
	leaves := make(map[uint64][]byte)
	for _, l := range resp.GetProofs().GetLeaves() {
		leaves[l.GetIndex()] = l.GetLeaf()
	}
	for _, n := range resp.GetNodes() {
		if n.GetKind() != pb.NodeKind_NODE_KIND_ACTIVITY {
			continue
		}
		le, err := event.DecodeLeaf(leaves[n.GetLeafIndex()])
		if err != nil {
			continue
		}
		n.Sensitive = s.reveal(ctx, le.GetEvent())
		for _, r := range n.Sensitive {
			if r.GetStatus() != pb.SensitiveStatus_SENSITIVE_STATUS_REVEALED {
				n.Masked = true
			}
		}
	}
}

// RetentionSubmitter is the submitter of the erasure events the log
// appends.
const RetentionSubmitter = "provlogd/retention"

// RunRetention applies the policy's retention rules to the vault, then
// records every erasure not yet in the log as an event, in its tenant:
// a WRITE by the service provlogd/retention of the asset
// provlog-vault://TENANT/CLASSIFICATION/GENERATION (the data key), with
// the action, policy and number of values in its extensions. The event
// time is the erasure time, so re-running after a crash appends a
// duplicate, not a second event.
func RunRetention(ctx context.Context, l *ledger.Ledger, v *vault.Vault, p *vault.Policy, log *slog.Logger) error {
	if _, err := v.ApplyRetention(ctx, p.Rules()); err != nil {
		return fmt.Errorf("retention: %w", err)
	}
	var subs []ledger.Submission
	var keys []string
	for _, e := range v.Erasures() {
		if e.Logged {
			continue
		}
		ev := ErasureEvent(e)
		if err := event.Validate(ev, e.At); err != nil {
			return fmt.Errorf("erasure event for %s: %w", e.KeyID, err)
		}
		subs = append(subs, ledger.Submission{Event: ev, Submitter: RetentionSubmitter})
		keys = append(keys, e.KeyID)
	}
	if len(subs) == 0 {
		return nil
	}
	for i, r := range l.Append(ctx, subs) {
		if r.Err != nil {
			return fmt.Errorf("couldn't log the erasure of %s: %w", keys[i], r.Err)
		}
		if err := v.MarkLogged(keys[i], r.Index); err != nil {
			return err
		}
		log.InfoContext(ctx, "erasure logged", "key", keys[i], "index", r.Index)
	}
	return nil
}

// ErasureEvent is the event recording an erasure.
func ErasureEvent(e vault.Erasure) *pb.ProvenanceEvent {
	return &pb.ProvenanceEvent{
		SchemaVersion: event.SchemaVersion,
		EventId:       "vault-erasure:" + e.KeyID,
		Tenant:        e.Tenant,
		Operation:     pb.Operation_OPERATION_WRITE,
		EventTime:     timestamppb.New(e.At),
		Actor:         &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: RetentionSubmitter},
		Workflow:      &pb.Workflow{Platform: "provlog", WorkflowId: "vault-retention", RunId: "vault-retention"},
		Outputs:       []*pb.Asset{{Uri: "provlog-vault://" + e.KeyID, Classification: e.Classification}},
		Rationale:     fmt.Sprintf("retention policy %s: %d values %s", e.Policy, e.Values, e.Action.Past()),
		Extensions: map[string]string{
			"provlog.erasure.action": string(e.Action),
			"provlog.erasure.policy": e.Policy,
			"provlog.erasure.key_id": e.KeyID,
			"provlog.erasure.values": fmt.Sprint(e.Values),
		},
	}
}
