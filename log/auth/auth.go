// Package auth authenticates callers and decides what they may do.
//
// A caller presents a bearer token (gRPC metadata or HTTP header
// "authorization: Bearer TOKEN") or a client certificate verified by the
// server's TLS (mTLS). Tokens are kept only as SHA-256 hashes and compared in
// constant time; the Store persists them (with expiry and revocation),
// tenants and their policies, certificate grants and submitter keys in the
// data dir. An authenticated caller has an Identity: a name, roles, the
// tenants it may act for and, for a person's credential, the person. Every
// gRPC method is mapped to the permission it needs; a method with no mapping
// is refused, so a new method cannot be exposed by accident.
//
// Submitter keys and signatures are log/authorship's; the Store keeps the
// server's copy of the key history.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// Role is a set of permissions granted to an identity.
type Role string

// The roles. Issue-level detail (tenant grants for auditors, token admin)
// builds on these.
const (
	RoleAppender Role = "appender" // append events for its tenants
	RoleReader   Role = "reader"   // read entries and lineage of its tenants
	RoleAuditor  Role = "auditor"  // proofs, bundles, audits across granted tenants
	RoleAdmin    Role = "admin"    // everything
)

// AllRoles lists the roles, for validation and the role-matrix tests.
var AllRoles = []Role{RoleAppender, RoleReader, RoleAuditor, RoleAdmin}

// MaxTokenLen bounds a bearer token; longer values are refused unhashed.
const MaxTokenLen = 512

// Permission is what a method needs.
type Permission int

// Permissions, checked per method.
const (
	PermAppend Permission = iota + 1
	PermRead
	PermProof
	PermAdmin
	// PermAudit: reading the log's own metrics (auditor, admin).
	PermAudit
)

func (p Permission) String() string {
	switch p {
	case PermAppend:
		return "append"
	case PermRead:
		return "read"
	case PermProof:
		return "proof"
	case PermAdmin:
		return "admin"
	case PermAudit:
		return "audit"
	}
	return fmt.Sprintf("permission(%d)", int(p))
}

// AllTenants in Identity.Tenants grants every tenant.
const AllTenants = "*"

// Identity is an authenticated caller.
type Identity struct {
	// Name identifies the caller in leaves and logs ("admin", "token:ci-bot").
	Name    string
	Roles   []Role
	Tenants []string
	// Person is set when the credential belongs to one person: approvals
	// and overrides sent with it must name this person as their actor.
	Person string
}

// Allowed reports whether the identity holds a role granting p.
func (id *Identity) Allowed(p Permission) bool {
	if id == nil {
		return false
	}
	for _, r := range id.Roles {
		switch r {
		case RoleAdmin:
			return true
		case RoleAppender:
			if p == PermAppend {
				return true
			}
		case RoleReader:
			if p == PermRead {
				return true
			}
		case RoleAuditor:
			if p == PermRead || p == PermProof || p == PermAudit {
				return true
			}
		}
	}
	return false
}

// Actor is the identity as the actor of an event the log writes on its
// behalf (key changes): the person, if the credential is a person's, else
// the identity as a service.
func (id *Identity) Actor() *pb.Actor {
	if id.Person != "" {
		return &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_PERSON, Id: id.Person}
	}
	return &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: id.Name}
}

// CanActFor reports whether the identity may act for tenant.
func (id *Identity) CanActFor(tenant string) bool {
	if id == nil {
		return false
	}
	return slices.Contains(id.Tenants, AllTenants) || slices.Contains(id.Tenants, tenant)
}

// ErrUnauthenticated means no credential, or one that is not valid.
var ErrUnauthenticated = errors.New("missing or invalid bearer token")

// Authenticator turns a bearer token into an Identity.
// Implementations must be safe for concurrent use and must not log tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Identity, error)
}

// CertAuthenticator turns the names of a verified client certificate
// (CertNames) into an Identity. Implementations must be safe for concurrent
// use.
type CertAuthenticator interface {
	AuthenticateCert(ctx context.Context, names []string) (*Identity, error)
}

// Tokens is an in-memory Authenticator over hashed bearer tokens.
type Tokens struct {
	mu      sync.RWMutex
	entries []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	id   *Identity
}

// Add registers token for id. Only the token's hash is kept.
func (t *Tokens) Add(token string, id *Identity) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = append(t.entries, tokenEntry{hash: sha256.Sum256([]byte(token)), id: id})
}

// Authenticate compares the token's hash with every registered hash in
// constant time, so neither the match position nor a partial match leaks.
func (t *Tokens) Authenticate(_ context.Context, token string) (*Identity, error) {
	if token == "" {
		return nil, ErrUnauthenticated
	}
	if id := t.match(sha256.Sum256([]byte(token))); id != nil {
		return id, nil
	}
	return nil, ErrUnauthenticated
}

// match returns the identity whose token hashes to h, or nil, comparing
// with every entry in constant time.
func (t *Tokens) match(h [sha256.Size]byte) *Identity {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found *Identity
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(h[:], e.hash[:]) == 1 {
			found = e.id
		}
	}
	return found
}

// NewToken returns a fresh random bearer token (256 bits, base64url).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("couldn't read randomness: %w", err)
	}
	return "pl_" + base64.RawURLEncoding.EncodeToString(b), nil
}

// BearerToken extracts the token from an "authorization" value; ok is false
// when the value is not a bearer credential.
func BearerToken(v string) (string, bool) {
	const prefix = "bearer "
	if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(v[len(prefix):])
	return tok, tok != ""
}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the authenticated identity, or nil.
func FromContext(ctx context.Context) *Identity {
	id, _ := ctx.Value(ctxKey{}).(*Identity)
	return id
}
