package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/provlog/provlog/log/authorship"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Errors of the Store, for the service edge to map to codes. They are
// authorship's, so that key changes and the rest map alike.
var (
	// ErrNotFound: no such tenant, token, grant or key.
	ErrNotFound = authorship.ErrNotFound
	// ErrExists: the name or id is taken.
	ErrExists = authorship.ErrExists
	// ErrState: the object is in the wrong state for the operation.
	ErrState = authorship.ErrState
)

// InvalidError is a request field the Store refuses.
type InvalidError = authorship.InvalidError

func invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TenantPolicy is what a tenant requires of its events.
type TenantPolicy struct {
	// RequireSignature: every event needs a valid submitter signature.
	RequireSignature bool `json:"require_signature,omitzero"`
	// SecondPersonForOverrides: an override needs an approval of its
	// subjects by a different person, already in the log.
	SecondPersonForOverrides bool `json:"second_person_for_overrides,omitzero"`
}

// Tenant is a registered tenant.
type Tenant struct {
	Name    string       `json:"name"`
	Policy  TenantPolicy `json:"policy"`
	Created time.Time    `json:"created"`
}

// Token describes an issued bearer token. Only the hash of its secret is
// kept.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Hash    string    `json:"sha256"` // hex
	Roles   []Role    `json:"roles"`
	Tenants []string  `json:"tenants"`
	Person  string    `json:"person,omitzero"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Revoked time.Time `json:"revoked,omitzero"`
}

// CertGrant gives a client certificate name roles and tenants.
type CertGrant struct {
	Subject string    `json:"subject"`
	Roles   []Role    `json:"roles"`
	Tenants []string  `json:"tenants"`
	Person  string    `json:"person,omitzero"`
	Created time.Time `json:"created"`
}

// storeState is the persisted content of the store file.
type storeState struct {
	Version int                        `json:"version"`
	Tenants map[string]*Tenant         `json:"tenants"`
	Tokens  []*Token                   `json:"tokens"`
	Certs   map[string]*CertGrant      `json:"certificates"`
	Keys    []*authorship.SubmitterKey `json:"submitter_keys"`
	// Pending are key events about to be appended to the log: recorded
	// before the append and removed, with their effect applied to Keys, once
	// the log holds them, so a crash in between loses nothing.
	Pending []PendingKeyEvent `json:"pending_key_events,omitzero"`
}

// PendingKeyEvent is a key event recorded before its append.
type PendingKeyEvent struct {
	Event     json.RawMessage `json:"event"` // protojson
	Submitter string          `json:"submitter"`
}

// Store holds tenants, tokens, certificate grants and submitter keys in one
// JSON document (tokens as SHA-256 hashes only), kept by a Persistence:
// the embedded default is one file of the data dir (mode 0600), replaced
// atomically on every change; under --storage aws it is one row of the
// shared database, changed by compare-and-swap, so that every frontend
// sees the same tenants, tokens, grants and keys. It is an Authenticator
// (bearer tokens) and a CertAuthenticator. It is safe for concurrent use.
//
// With a shared Persistence, a Store learns of changes made by others when
// Refresh is called (Watch calls it every interval, ~500ms in provlogd) and,
// at most every missRefreshEvery, when a bearer token or a submitter key
// is unknown (RefreshOnMiss): so a token or key made through one frontend
// works at once on the others, while a
// revoked one stops working on every frontend within the Watch interval.
type Store struct {
	p   Persistence
	now func() time.Time

	mu     sync.RWMutex
	ver    uint64 // the Persistence version st was read at or saved as
	st     storeState
	keys   *authorship.KeyHistory
	static Tokens              // tokens given with AddStatic (the bootstrap admin)
	hashes [][sha256.Size]byte // hashes[i] is st.Tokens[i].Hash, decoded

	missMu   sync.Mutex
	lastMiss time.Time // of the last Refresh for an unknown token

	conflicts atomic.Int64 // saves lost to another process's, then reapplied
}

// missRefreshEvery bounds the Refreshes made for unknown tokens, so that a
// flood of bad tokens costs the database at most a few cheap queries a
// second.
const missRefreshEvery = 250 * time.Millisecond

// maxSaveAttempts bounds the reload-and-reapply rounds of one change
// against other frontends' concurrent changes.
const maxSaveAttempts = 64

// persistTimeout bounds one read or write of the Persistence.
const persistTimeout = 30 * time.Second

// decodeHashes decodes the token hashes of st.
func decodeHashes(st *storeState) ([][sha256.Size]byte, error) {
	hashes := make([][sha256.Size]byte, len(st.Tokens))
	for i, t := range st.Tokens {
		if n, err := hex.Decode(hashes[i][:], []byte(t.Hash)); err != nil || n != sha256.Size || len(t.Hash) != 2*sha256.Size {
			return nil, fmt.Errorf("token %s: bad sha256 %q", t.ID, t.Hash)
		}
	}
	return hashes, nil
}

// reindex decodes the token hashes. Callers hold mu (or own s).
func (s *Store) reindex() error {
	h, err := decodeHashes(&s.st)
	if err != nil {
		return err
	}
	s.hashes = h
	return nil
}

// StoreFile is the name of the store in the data dir.
const StoreFile = "auth.json"

// OpenStore loads the store at path, or starts an empty one that is
// written on the first change. now is the clock for expiry (time.Now when
// nil).
func OpenStore(path string, now func() time.Time) (*Store, error) {
	return OpenStoreWith(context.Background(), NewFilePersistence(path), now)
}

// OpenStoreWith loads the store kept by p, or starts an empty one that is
// saved on the first change. now is the clock for expiry (time.Now when
// nil). Close closes p.
func OpenStoreWith(ctx context.Context, p Persistence, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	s := &Store{p: p, now: now, keys: authorship.NewKeyHistory()}
	if err := s.load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// where names the persistence in errors.
func (s *Store) where() string {
	if n, ok := s.p.(fmt.Stringer); ok {
		return n.String()
	}
	return "in the database"
}

// decodeState parses a state document; nil is the empty state.
func (s *Store) decodeState(doc []byte) (storeState, *authorship.KeyHistory, [][sha256.Size]byte, error) {
	st := storeState{Version: 1}
	keys := authorship.NewKeyHistory()
	if doc != nil {
		if err := json.Unmarshal(doc, &st); err != nil {
			return st, nil, nil, fmt.Errorf("couldn't parse auth store %s: %w", s.where(), err)
		}
		if st.Version != 1 {
			return st, nil, nil, fmt.Errorf("auth store %s has version %d; this build reads version 1", s.where(), st.Version)
		}
	}
	if st.Tenants == nil {
		st.Tenants = map[string]*Tenant{}
	}
	if st.Certs == nil {
		st.Certs = map[string]*CertGrant{}
	}
	for _, k := range st.Keys {
		if err := keys.Load(k); err != nil {
			return st, nil, nil, fmt.Errorf("auth store %s: %w", s.where(), err)
		}
	}
	hashes, err := decodeHashes(&st)
	if err != nil {
		return st, nil, nil, fmt.Errorf("auth store %s: %w", s.where(), err)
	}
	return st, keys, hashes, nil
}

// load replaces the state with the persisted one. Callers hold mu (or
// own s).
func (s *Store) load(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	doc, ver, err := s.p.Load(ctx)
	if err != nil {
		return err
	}
	st, keys, hashes, err := s.decodeState(doc)
	if err != nil {
		return err
	}
	s.st, s.hashes, s.ver = st, hashes, ver
	s.keys.Replace(keys)
	return nil
}

// Refresh reloads the state if another process sharing the Persistence
// changed it: one cheap version query when nothing changed.
func (s *Store) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, persistTimeout)
	defer cancel()
	v, err := s.p.Version(ctx)
	if err != nil {
		return err
	}
	s.mu.RLock()
	cur := s.ver
	s.mu.RUnlock()
	if v == cur {
		return nil
	}
	doc, ver, err := s.p.Load(ctx)
	if err != nil {
		return err
	}
	st, keys, hashes, err := s.decodeState(doc)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ver <= s.ver {
		return nil // this Store saved or loaded a newer one meanwhile
	}
	s.st, s.hashes, s.ver = st, hashes, ver
	s.keys.Replace(keys)
	return nil
}

// Watch calls Refresh every interval until ctx is done, when the
// Persistence is shared (it does nothing for the file). Failures are
// logged when they start and when they end, not at every tick.
func (s *Store) Watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	if !s.p.Shared() {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.Refresh(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			log.Warn("couldn't refresh the shared auth state; serving the last one read", "err", err)
			failing = true
		case err == nil && failing:
			log.Info("refreshing the shared auth state works again")
			failing = false
		}
	}
}

// Close closes the Persistence.
func (s *Store) Close() error {
	return s.p.Close()
}

// encode is the state document. Callers hold mu.
func (s *Store) encode() ([]byte, error) {
	s.st.Keys = s.keys.All()
	b, err := json.MarshalIndent(&s.st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("couldn't encode auth store: %w", err)
	}
	return append(b, '\n'), nil
}

// update applies f to the state and saves it. If f or saving fails, the
// in-memory state is restored as it was. If another process saved first
// (ErrStateChanged), the state is reloaded and f applied again to it, so
// no change is lost; f must therefore only change the state (and its own
// results), and may run more than once.
func (s *Store) update(f func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), persistTimeout)
	defer cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 1; ; attempt++ {
		before, err := json.Marshal(&s.st)
		if err != nil {
			return fmt.Errorf("couldn't snapshot auth store: %w", err)
		}
		keysBefore := s.keys.Clone()
		if err := f(); err != nil {
			s.restore(before, keysBefore)
			return err
		}
		doc, err := s.encode()
		if err == nil {
			var ver uint64
			ver, err = s.p.Save(ctx, doc, s.ver)
			if err == nil {
				s.ver = ver
				return s.reindex()
			}
		}
		s.restore(before, keysBefore)
		if !errors.Is(err, ErrStateChanged) {
			return err
		}
		s.conflicts.Add(1)
		if attempt == maxSaveAttempts {
			return fmt.Errorf("couldn't save auth store after %d attempts against concurrent changes: %w", attempt, err)
		}
		if err := s.load(ctx); err != nil {
			return fmt.Errorf("couldn't reload auth store after a concurrent change: %w", err)
		}
	}
}

func (s *Store) restore(before []byte, keys *authorship.KeyHistory) {
	var st storeState
	if json.Unmarshal(before, &st) == nil {
		if st.Tenants == nil {
			st.Tenants = map[string]*Tenant{}
		}
		if st.Certs == nil {
			st.Certs = map[string]*CertGrant{}
		}
		s.st = st
	}
	s.keys.Replace(keys)
	_ = s.reindex() // the state it had, which indexed
}

// AddStatic registers a token that is not in the file (the bootstrap admin
// token of admin.token). Only its hash is kept.
func (s *Store) AddStatic(token string, id *Identity) {
	s.static.Add(token, id)
}

// Errors behind ErrUnauthenticated, for the server's logs (never for the
// caller: all three look the same from outside).
var (
	ErrTokenExpired = fmt.Errorf("token expired: %w", ErrUnauthenticated)
	ErrTokenRevoked = fmt.Errorf("token revoked: %w", ErrUnauthenticated)
)

// Authenticate compares the token's hash with every known hash in constant
// time, then refuses a revoked or expired token. An unknown token makes a
// shared Store Refresh (at most every missRefreshEvery) and look again, so
// a token just created through another frontend works at once.
func (s *Store) Authenticate(ctx context.Context, token string) (*Identity, error) {
	if token == "" || len(token) > MaxTokenLen {
		return nil, ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(token))
	id, known, err := s.authenticate(h)
	if !known && s.RefreshOnMiss(ctx) {
		id, _, err = s.authenticate(h)
	}
	return id, err
}

// RefreshOnMiss refreshes a shared Store after a lookup of something that
// another frontend may just have made (a token, a submitter key) failed,
// at most every missRefreshEvery, and reports whether it did: then the
// caller looks again.
func (s *Store) RefreshOnMiss(ctx context.Context) bool {
	if !s.p.Shared() || !s.missRefreshAllowed() {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return s.Refresh(ctx) == nil
}

// missRefreshAllowed reports whether an unknown token may Refresh now.
func (s *Store) missRefreshAllowed() bool {
	s.missMu.Lock()
	defer s.missMu.Unlock()
	now := time.Now()
	if now.Sub(s.lastMiss) < missRefreshEvery {
		return false
	}
	s.lastMiss = now
	return true
}

// authenticate looks h up; known is false when no token has that hash.
func (s *Store) authenticate(h [sha256.Size]byte) (id *Identity, known bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	found := s.static.match(h)
	var tok *Token
	for i, th := range s.hashes {
		if subtle.ConstantTimeCompare(h[:], th[:]) == 1 {
			tok = s.st.Tokens[i]
		}
	}
	if found != nil {
		return found, true, nil
	}
	if tok == nil {
		return nil, false, ErrUnauthenticated
	}
	if !tok.Revoked.IsZero() {
		return nil, true, ErrTokenRevoked
	}
	if !tok.Expires.IsZero() && !s.now().Before(tok.Expires) {
		return nil, true, ErrTokenExpired
	}
	return &Identity{Name: "token:" + tok.Name, Roles: tok.Roles, Tenants: tok.Tenants, Person: tok.Person}, true, nil
}

// AuthenticateCert maps the names of a verified client certificate (see
// CertNames) to the first granted one.
func (s *Store) AuthenticateCert(_ context.Context, names []string) (*Identity, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, n := range names {
		if g, ok := s.st.Certs[n]; ok {
			return &Identity{Name: "cert:" + g.Subject, Roles: g.Roles, Tenants: g.Tenants, Person: g.Person}, nil
		}
	}
	return nil, ErrUnauthenticated
}

var tenantRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// nameRe is a token name or person: printable, no spaces, ≤ 128 bytes.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9._:/@+=-]{1,128}$`)

// CreateTenant registers a tenant.
func (s *Store) CreateTenant(name string, p TenantPolicy) (Tenant, error) {
	if !tenantRe.MatchString(name) {
		return Tenant{}, invalidf("name", "must be 1 to 64 bytes of [a-z0-9._-], starting with a letter or digit")
	}
	var out Tenant
	err := s.update(func() error {
		if _, ok := s.st.Tenants[name]; ok {
			return fmt.Errorf("tenant %q: %w", name, ErrExists)
		}
		t := &Tenant{Name: name, Policy: p, Created: s.now().UTC()}
		s.st.Tenants[name] = t
		out = *t
		return nil
	})
	return out, err
}

// Tenants returns the registered tenants by name.
func (s *Store) Tenants() []Tenant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Tenant, 0, len(s.st.Tenants))
	for _, t := range s.st.Tenants {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// SetPolicy replaces a tenant's policy.
func (s *Store) SetPolicy(name string, p TenantPolicy) (Tenant, error) {
	var out Tenant
	err := s.update(func() error {
		t, ok := s.st.Tenants[name]
		if !ok {
			return fmt.Errorf("tenant %q: %w", name, ErrNotFound)
		}
		t.Policy = p
		out = *t
		return nil
	})
	return out, err
}

// Policy returns a tenant's policy; an unregistered tenant has the empty
// policy.
func (s *Store) Policy(tenant string) TenantPolicy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t, ok := s.st.Tenants[tenant]; ok {
		return t.Policy
	}
	return TenantPolicy{}
}

// checkGrant validates roles, tenants and person of a token or grant.
// Callers hold mu.
func (s *Store) checkGrant(roles []Role, tenants []string, person string) error {
	if len(roles) == 0 {
		return invalidf("roles", "at least one role is required")
	}
	for i, r := range roles {
		if !slices.Contains(AllRoles, r) {
			return invalidf(fmt.Sprintf("roles[%d]", i), "unknown role %q (want appender, reader, auditor or admin)", r)
		}
	}
	if len(tenants) == 0 {
		return invalidf("tenants", "at least one tenant (or \"*\") is required")
	}
	if slices.Contains(roles, RoleAdmin) && !slices.Equal(tenants, []string{AllTenants}) {
		// The admin API is not per tenant: an admin of some tenants could
		// grant itself the others.
		return invalidf("tenants", "the admin role is granted for all tenants only: [\"*\"]")
	}
	for i, t := range tenants {
		if t == AllTenants {
			continue
		}
		if _, ok := s.st.Tenants[t]; !ok {
			return invalidf(fmt.Sprintf("tenants[%d]", i), "tenant %q is not registered (CreateTenant first)", t)
		}
	}
	if person != "" && !nameRe.MatchString(person) {
		return invalidf("person", "must be 1 to 128 bytes of [A-Za-z0-9._:/@+=-]")
	}
	return nil
}

// CreateToken issues a token and returns it with its secret, which is not
// kept.
func (s *Store) CreateToken(name string, roles []Role, tenants []string, person string, expires time.Time) (Token, string, error) {
	if !nameRe.MatchString(name) {
		return Token{}, "", invalidf("name", "must be 1 to 128 bytes of [A-Za-z0-9._:/@+=-]")
	}
	if !expires.IsZero() && !expires.After(s.now()) {
		return Token{}, "", invalidf("expire_time", "must be in the future")
	}
	secret, err := NewToken()
	if err != nil {
		return Token{}, "", err
	}
	idb, err := NewToken()
	if err != nil {
		return Token{}, "", err
	}
	h := sha256.Sum256([]byte(secret))
	var out Token
	err = s.update(func() error {
		if err := s.checkGrant(roles, tenants, person); err != nil {
			return err
		}
		for _, t := range s.st.Tokens {
			if t.Name == name && t.Revoked.IsZero() {
				return fmt.Errorf("token name %q is in use by %s: %w", name, t.ID, ErrExists)
			}
		}
		t := &Token{ID: "tok_" + idb[3:19], Name: name, Hash: hex.EncodeToString(h[:]), Roles: slices.Clone(roles),
			Tenants: slices.Clone(tenants), Person: person, Created: s.now().UTC()}
		if !expires.IsZero() {
			t.Expires = expires.UTC()
		}
		s.st.Tokens = append(s.st.Tokens, t)
		out = *t
		return nil
	})
	if err != nil {
		return Token{}, "", err
	}
	return out, secret, nil
}

// Tokens lists the issued tokens (hashes included; callers must not send
// them out).
func (s *Store) Tokens() []Token {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Token, len(s.st.Tokens))
	for i, t := range s.st.Tokens {
		out[i] = *t
	}
	return out
}

// RevokeToken revokes a token from now on. Revoking twice keeps the first
// revocation time.
func (s *Store) RevokeToken(id string) (Token, error) {
	var out Token
	err := s.update(func() error {
		for _, t := range s.st.Tokens {
			if t.ID == id {
				if t.Revoked.IsZero() {
					t.Revoked = s.now().UTC()
				}
				out = *t
				return nil
			}
		}
		return fmt.Errorf("token %q: %w", id, ErrNotFound)
	})
	return out, err
}

// GrantCert maps a certificate name to roles and tenants, replacing an
// earlier grant of the same name.
func (s *Store) GrantCert(subject string, roles []Role, tenants []string, person string) (CertGrant, error) {
	if subject == "" || len(subject) > 1024 {
		return CertGrant{}, invalidf("subject", "must be 1 to 1024 bytes")
	}
	var out CertGrant
	err := s.update(func() error {
		if err := s.checkGrant(roles, tenants, person); err != nil {
			return err
		}
		g := &CertGrant{Subject: subject, Roles: slices.Clone(roles), Tenants: slices.Clone(tenants), Person: person, Created: s.now().UTC()}
		s.st.Certs[subject] = g
		out = *g
		return nil
	})
	return out, err
}

// CertGrants lists the certificate grants by subject.
func (s *Store) CertGrants() []CertGrant {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]CertGrant, 0, len(s.st.Certs))
	for _, g := range s.st.Certs {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Subject < out[j].Subject })
	return out
}

// RevokeCert removes a certificate grant.
func (s *Store) RevokeCert(subject string) (CertGrant, error) {
	var out CertGrant
	err := s.update(func() error {
		g, ok := s.st.Certs[subject]
		if !ok {
			return fmt.Errorf("certificate grant %q: %w", subject, ErrNotFound)
		}
		delete(s.st.Certs, subject)
		out = *g
		return nil
	})
	return out, err
}

// Keys returns the store's submitter key history. Changes go through
// UpdateKeys so that they are persisted.
func (s *Store) Keys() *authorship.KeyHistory {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys
}

// UpdateKeys applies f to the key history and persists the result; on any
// error nothing changes.
func (s *Store) UpdateKeys(f func(*authorship.KeyHistory) error) error {
	return s.update(func() error { return f(s.keys) })
}

// HasTenant reports whether tenant is registered.
func (s *Store) HasTenant(tenant string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.st.Tenants[tenant]
	return ok
}

// AddPending records a key event before it is appended.
func (s *Store) AddPending(ev *pb.ProvenanceEvent, submitter string) error {
	b, err := protojson.Marshal(ev)
	if err != nil {
		return fmt.Errorf("couldn't encode key event: %w", err)
	}
	return s.update(func() error {
		s.st.Pending = append(s.st.Pending, PendingKeyEvent{Event: b, Submitter: submitter})
		return nil
	})
}

// Pending returns the key events recorded but not yet known to be in the
// log, oldest first.
func (s *Store) Pending() ([]*pb.ProvenanceEvent, []string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	evs := make([]*pb.ProvenanceEvent, len(s.st.Pending))
	subs := make([]string, len(s.st.Pending))
	for i, p := range s.st.Pending {
		evs[i] = &pb.ProvenanceEvent{}
		if err := protojson.Unmarshal(p.Event, evs[i]); err != nil {
			return nil, nil, fmt.Errorf("auth store: pending key event %d: %w", i, err)
		}
		subs[i] = p.Submitter
	}
	return evs, subs, nil
}

// DropPending forgets a pending key event that is known not to be in the
// log.
func (s *Store) DropPending(ev *pb.ProvenanceEvent) error {
	return s.update(func() error {
		for i, p := range s.st.Pending {
			var pe pb.ProvenanceEvent
			if protojson.Unmarshal(p.Event, &pe) == nil && pe.GetTenant() == ev.GetTenant() && pe.GetEventId() == ev.GetEventId() {
				s.st.Pending = slices.Delete(s.st.Pending, i, i+1)
				return nil
			}
		}
		return nil
	})
}

// ApplyPending applies the pending key event with ev's tenant and id, now
// at index in the log, to the key history and removes it from Pending, in
// one persisted step. An event no longer pending that the key history
// already holds at index was finished by another frontend sharing the
// store (its resolvePending): that is success too.
func (s *Store) ApplyPending(ev *pb.ProvenanceEvent, index uint64) error {
	if s.p.Shared() {
		s.mu.RLock()
		done := !s.isPending(ev) && s.keys.Applied(ev, index)
		s.mu.RUnlock()
		if done {
			return nil
		}
	}
	return s.update(func() error {
		for i, p := range s.st.Pending {
			var pe pb.ProvenanceEvent
			if err := protojson.Unmarshal(p.Event, &pe); err != nil {
				return fmt.Errorf("auth store: pending key event %d: %w", i, err)
			}
			if pe.GetTenant() == ev.GetTenant() && pe.GetEventId() == ev.GetEventId() {
				s.st.Pending = slices.Delete(s.st.Pending, i, i+1)
				return s.keys.ApplyEvent(&pe, index)
			}
		}
		if s.p.Shared() && s.keys.Applied(ev, index) {
			return nil
		}
		return fmt.Errorf("pending key event %q of tenant %q: %w", ev.GetEventId(), ev.GetTenant(), ErrNotFound)
	})
}

// isPending reports whether ev's tenant and id are pending. Callers hold
// mu.
func (s *Store) isPending(ev *pb.ProvenanceEvent) bool {
	for _, p := range s.st.Pending {
		var pe pb.ProvenanceEvent
		if protojson.Unmarshal(p.Event, &pe) == nil && pe.GetTenant() == ev.GetTenant() && pe.GetEventId() == ev.GetEventId() {
			return true
		}
	}
	return false
}
