package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strconv"
	"time"

	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The kinds of events -events chooses.
const (
	kindPlain     = "plain"
	kindSigned    = "signed"
	kindSensitive = "sensitive"
)

// eventKind is what the events carry besides their synthetic shape.
type eventKind struct {
	name string // kindPlain, kindSigned or kindSensitive
	// Signed events: the submitter key (registered for benchTenant) that
	// signs each event, and its id.
	keyID string
	key   ed25519.PrivateKey
}

// sensitiveClasses are the classifications of the sensitive values each
// -events sensitive event carries: three, as in log/server's
// BenchmarkAppendSensitive.
var sensitiveClasses = [...]string{"pii", "pii", "confidential"}

// dress makes event n of the generator's kind out of ev: it adds the
// sensitive values, or signs it. Signing is Ed25519 over the event's signing
// payload, as a submitter would (authorship.Sign).
func (g *generator) dress(ev *provlogv1.ProvenanceEvent, n uint64) *provlogv1.ProvenanceEvent {
	switch g.kind.name {
	case kindSensitive:
		seq := strconv.FormatUint(n, 10)
		for j, class := range sensitiveClasses {
			ev.Sensitive = append(ev.Sensitive, &provlogv1.SensitiveValue{
				Name:           "bench.field-" + strconv.Itoa(j),
				Classification: class,
				Value:          "value " + strconv.Itoa(j) + " of event " + seq + ": alice." + seq + "@example.com",
			})
		}
	case kindSigned:
		// Sign fails only for an event that does not encode, which the
		// generator's tests rule out; the log would refuse it anyway.
		_ = authorship.Sign(ev, g.kind.keyID, g.kind.key)
	}
	return ev
}

// sealedCopy is ev as the log commits to it: each sensitive value replaced
// by a data key id of the vault's form (tenant/classification/generation)
// and a commitment. The baseline appends leaves of these, so its leaves are
// as long as provlogd's.
func sealedCopy(ev *provlogv1.ProvenanceEvent) *provlogv1.ProvenanceEvent {
	out := proto.Clone(ev).(*provlogv1.ProvenanceEvent)
	for _, sv := range out.Sensitive {
		salt := sha256.Sum256([]byte(sv.GetName() + "\x00" + out.GetEventId()))
		c := event.Commitment(salt[:event.CommitmentSaltSize], []byte(sv.GetValue()))
		sv.Value, sv.KeyId, sv.Commitment = "", out.GetTenant()+"/"+sv.GetClassification()+"/1", c[:]
	}
	return out
}

// registerSigningKey makes a fresh Ed25519 submitter key and registers it
// for benchTenant through AdminService, as `provctl keys register` does
// (creating the tenant first if needed: keys belong to registered
// tenants). The token must be an admin's. The key is valid from a minute
// ago, so that clock skew between provbench and provlogd cannot make the
// first events predate it.
func registerSigningKey(ctx context.Context, conn grpc.ClientConnInterface, keyID string) (ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("couldn't generate a submitter key: %w", err)
	}
	admin := provlogv1.NewAdminServiceClient(conn)
	if _, err := admin.CreateTenant(ctx, &provlogv1.CreateTenantRequest{Name: benchTenant}); err != nil && status.Code(err) != codes.AlreadyExists {
		return nil, fmt.Errorf("couldn't create tenant %q for -events signed (needs an admin token): %w", benchTenant, err)
	}
	if _, err := admin.RegisterKey(ctx, &provlogv1.RegisterKeyRequest{
		Tenant: benchTenant, KeyId: keyID, PublicKey: pub,
		ValidFrom: timestamppb.New(time.Now().Add(-time.Minute)),
	}); err != nil {
		return nil, fmt.Errorf("couldn't register submitter key %q for -events signed (needs an admin token): %w", keyID, err)
	}
	return priv, nil
}
