// Package authorship verifies who wrote an event: submitter signatures
// (Ed25519, over event.SigningPayload) checked with the key of the event's
// tenant valid at the event's time, and the key history itself, which the
// log records as key events (KEYS.md). It depends on log/event and the
// protos only, so auditors can link it to re-verify authorship from the
// log without trusting the server.
package authorship

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Key states.
const (
	KeyActive  = "active"
	KeyRotated = "rotated"
	KeyRevoked = "revoked"
)

// SubmitterKey is a tenant's Ed25519 key and its validity: an event whose
// event_time t satisfies ValidFrom <= t < ValidUntil (ValidUntil zero: no
// end) verifies with it.
type SubmitterKey struct {
	Tenant     string            `json:"tenant"`
	ID         string            `json:"key_id"`
	Public     ed25519.PublicKey `json:"public_key"`
	ValidFrom  time.Time         `json:"valid_from"`
	ValidUntil time.Time         `json:"valid_until,omitzero"`
	State      string            `json:"state"`
	ReplacedBy string            `json:"replaced_by,omitzero"`
	// Events are the log indexes of the key events about this key.
	Events []uint64 `json:"event_indexes,omitzero"`
}

// keyIDRe is the syntax of a key id: the event id syntax, short enough to
// fit in a key event's id.
var keyIDRe = regexp.MustCompile(`^[A-Za-z0-9._:@+=/-]{1,96}$`)

// Errors of key changes.
var (
	// ErrNotFound: no such key.
	ErrNotFound = errors.New("not found")
	// ErrExists: the key id is taken.
	ErrExists = errors.New("already exists")
	// ErrState: the key is in the wrong state for the change.
	ErrState = errors.New("wrong state")
)

// InvalidError is a request field a key change refuses.
type InvalidError struct{ Field, Reason string }

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

func invalidf(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Signature errors. Each is wrapped in a *SignatureError naming the field.
var (
	ErrUnknownKey      = errors.New("no such key for the tenant")
	ErrKeyNotValid     = errors.New("key is not valid at the event's time")
	ErrBadSignature    = errors.New("signature does not verify")
	ErrSignatureNeeded = errors.New("the tenant's policy requires a submitter signature")
)

// SignatureError says why an event's signature was refused.
type SignatureError struct {
	Field  string // "signature.key_id", "signature.signature", "signature"
	Detail string
	Err    error
}

func (e *SignatureError) Error() string { return e.Field + ": " + e.Detail }
func (e *SignatureError) Unwrap() error { return e.Err }

// KeyHistory is every submitter key of every tenant with its validity. It is
// built either by the Store (from admin calls) or, by anyone, from the key
// events of the log (ApplyEvent), and then verifies event signatures with
// the key valid at each event's time. It is safe for concurrent use.
type KeyHistory struct {
	mu   sync.RWMutex
	keys map[string]*SubmitterKey // keyRef(tenant, id)
}

// NewKeyHistory returns an empty history.
func NewKeyHistory() *KeyHistory { return &KeyHistory{keys: map[string]*SubmitterKey{}} }

func keyRef(tenant, id string) string { return tenant + "\x00" + id }

// Load adds a key as it was saved (by a store).
func (h *KeyHistory) Load(k *SubmitterKey) error {
	if len(k.Public) != ed25519.PublicKeySize {
		return fmt.Errorf("key %s/%s: public key is %d bytes", k.Tenant, k.ID, len(k.Public))
	}
	h.keys[keyRef(k.Tenant, k.ID)] = k
	return nil
}

// All returns every key, by tenant and id. The keys are the history's own:
// do not modify them.
func (h *KeyHistory) All() []*SubmitterKey {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := slices.Collect(maps.Values(h.keys))
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tenant != out[j].Tenant {
			return out[i].Tenant < out[j].Tenant
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Clone returns a deep copy.
func (h *KeyHistory) Clone() *KeyHistory {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c := NewKeyHistory()
	for r, k := range h.keys {
		kc := *k
		kc.Events = slices.Clone(k.Events)
		c.keys[r] = &kc
	}
	return c
}

// Replace makes h hold o's keys (a store undoing a failed change).
func (h *KeyHistory) Replace(o *KeyHistory) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys = o.keys
}

// Get returns a copy of a key.
func (h *KeyHistory) Get(tenant, id string) (SubmitterKey, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, ok := h.keys[keyRef(tenant, id)]
	if !ok {
		return SubmitterKey{}, false
	}
	c := *k
	c.Events = slices.Clone(k.Events)
	return c, true
}

// Tenant returns a tenant's keys by id.
func (h *KeyHistory) Tenant(tenant string) []SubmitterKey {
	var out []SubmitterKey
	for _, k := range h.All() {
		if k.Tenant == tenant {
			out = append(out, *k)
		}
	}
	return out
}

// CheckRegister reports whether a key can be registered, without doing it.
func (h *KeyHistory) CheckRegister(tenant, id string, pub []byte) error {
	if !keyIDRe.MatchString(id) {
		return invalidf("key_id", "must be 1 to 96 bytes of [A-Za-z0-9._:@+=/-]")
	}
	if len(pub) != ed25519.PublicKeySize {
		return invalidf("public_key", "must be a 32-byte Ed25519 public key, got %d bytes", len(pub))
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if _, ok := h.keys[keyRef(tenant, id)]; ok {
		return fmt.Errorf("key %q of tenant %q: %w", id, tenant, ErrExists)
	}
	return nil
}

// Register adds an active key valid from validFrom, recorded by the key
// event at index.
func (h *KeyHistory) Register(tenant, id string, pub []byte, validFrom time.Time, index uint64) error {
	if err := h.CheckRegister(tenant, id, pub); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keys[keyRef(tenant, id)] = &SubmitterKey{Tenant: tenant, ID: id, Public: slices.Clone(pub), ValidFrom: validFrom.UTC(), State: KeyActive, Events: []uint64{index}}
	return nil
}

// CheckRotate reports whether old can be replaced by newID.
func (h *KeyHistory) CheckRotate(tenant, old, newID string, pub []byte) error {
	h.mu.RLock()
	k, ok := h.keys[keyRef(tenant, old)]
	h.mu.RUnlock()
	if !ok {
		return fmt.Errorf("key %q of tenant %q: %w", old, tenant, ErrNotFound)
	}
	if k.State != KeyActive {
		return fmt.Errorf("key %q is %s, only an active key can be rotated: %w", old, k.State, ErrState)
	}
	if err := h.CheckRegister(tenant, newID, pub); err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			ie.Field = "new_" + ie.Field
		}
		return err
	}
	return nil
}

// Rotate ends old at `at` and registers newID from `at`.
func (h *KeyHistory) Rotate(tenant, old, newID string, pub []byte, at time.Time, index uint64) error {
	if err := h.CheckRotate(tenant, old, newID, pub); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.keys[keyRef(tenant, old)]
	k.ValidUntil, k.State, k.ReplacedBy = at.UTC(), KeyRotated, newID
	k.Events = append(k.Events, index)
	h.keys[keyRef(tenant, newID)] = &SubmitterKey{Tenant: tenant, ID: newID, Public: slices.Clone(pub), ValidFrom: at.UTC(), State: KeyActive, Events: []uint64{index}}
	return nil
}

// CheckRevoke reports whether id can be revoked.
func (h *KeyHistory) CheckRevoke(tenant, id string) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, ok := h.keys[keyRef(tenant, id)]
	if !ok {
		return fmt.Errorf("key %q of tenant %q: %w", id, tenant, ErrNotFound)
	}
	if k.State == KeyRevoked {
		return fmt.Errorf("key %q is already revoked: %w", id, ErrState)
	}
	return nil
}

// Revoke ends id's validity at `at` (or keeps an earlier end a rotation
// set).
func (h *KeyHistory) Revoke(tenant, id string, at time.Time, index uint64) error {
	if err := h.CheckRevoke(tenant, id); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.keys[keyRef(tenant, id)]
	if k.ValidUntil.IsZero() || at.Before(k.ValidUntil) {
		k.ValidUntil = at.UTC()
	}
	k.State = KeyRevoked
	k.Events = append(k.Events, index)
	return nil
}

// Applied reports whether the key event ev is in h at leaf index: the key
// it names records that index. Stores shared by several frontends use it
// to see that another frontend already applied a key event.
func (h *KeyHistory) Applied(ev *pb.ProvenanceEvent, index uint64) bool {
	if !IsKeyOperation(ev.GetOperation()) {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	k, ok := h.keys[keyRef(ev.GetTenant(), ev.GetExtensions()[extKeyID])]
	return ok && slices.Contains(k.Events, index)
}

// Verify checks ev's submitter signature with the key of ev's tenant that
// signature.key_id names, which must be valid at ev's event_time. An event
// without a signature is refused with ErrSignatureNeeded.
func (h *KeyHistory) Verify(ev *pb.ProvenanceEvent) error {
	sig := ev.GetSignature()
	if sig.GetKeyId() == "" && len(sig.GetSignature()) == 0 {
		return &SignatureError{Field: "signature", Detail: "missing", Err: ErrSignatureNeeded}
	}
	if len(sig.GetSignature()) != ed25519.SignatureSize {
		return &SignatureError{Field: "signature.signature", Detail: fmt.Sprintf("must be %d bytes, got %d", ed25519.SignatureSize, len(sig.GetSignature())), Err: ErrBadSignature}
	}
	k, ok := h.Get(ev.GetTenant(), sig.GetKeyId())
	if !ok {
		return &SignatureError{Field: "signature.key_id", Detail: fmt.Sprintf("key %q is not registered for tenant %q", sig.GetKeyId(), ev.GetTenant()), Err: ErrUnknownKey}
	}
	t := ev.GetEventTime().AsTime()
	if t.Before(k.ValidFrom) || (!k.ValidUntil.IsZero() && !t.Before(k.ValidUntil)) {
		until := "now"
		if !k.ValidUntil.IsZero() {
			until = k.ValidUntil.Format(time.RFC3339Nano)
		}
		return &SignatureError{Field: "signature.key_id", Detail: fmt.Sprintf("key %q (%s) is valid for event times in [%s, %s), not at %s",
			k.ID, k.State, k.ValidFrom.Format(time.RFC3339Nano), until, t.Format(time.RFC3339Nano)), Err: ErrKeyNotValid}
	}
	msg, err := event.SigningPayload(ev)
	if err != nil {
		return fmt.Errorf("building signing payload: %w", err)
	}
	if !ed25519.Verify(k.Public, msg, sig.GetSignature()) {
		return &SignatureError{Field: "signature.signature", Detail: fmt.Sprintf("does not verify with key %q over the event's signing payload", k.ID), Err: ErrBadSignature}
	}
	return nil
}

// Sign sets ev's signature: Ed25519 by priv over event.SigningPayload, under
// keyID. For submitters and tests.
func Sign(ev *pb.ProvenanceEvent, keyID string, priv ed25519.PrivateKey) error {
	ev.Signature = nil
	msg, err := event.SigningPayload(ev)
	if err != nil {
		return err
	}
	ev.Signature = &pb.SubmitterSignature{KeyId: keyID, Signature: ed25519.Sign(priv, msg)}
	return nil
}

// Key events. KEYS.md documents this representation.
const (
	keyEventPlatform = "provlog"
	keyEventRun      = "provlog.keys"
	extKeyID         = "provlog.key.id"
	extKeyPublic     = "provlog.key.ed25519"
	extValidFrom     = "provlog.key.valid_from"
	extValidUntil    = "provlog.key.valid_until"
	extReplaces      = "provlog.key.replaces"
)

// IsKeyOperation reports whether op is one of the key-history operations
// that only the log itself writes.
func IsKeyOperation(op pb.Operation) bool {
	return op == pb.Operation_OPERATION_KEY_REGISTER || op == pb.Operation_OPERATION_KEY_ROTATE || op == pb.Operation_OPERATION_KEY_REVOKE
}

// KeyAssetURI names a key as a lineage asset: "provlog-key:TENANT/KEY_ID".
func KeyAssetURI(tenant, id string) string { return "provlog-key:" + tenant + "/" + id }

func keyAsset(tenant, id string, pub []byte) *pb.Asset {
	a := &pb.Asset{Uri: KeyAssetURI(tenant, id)}
	if pub != nil {
		d := sha256.Sum256(pub)
		a.Digest = "sha256:" + hex.EncodeToString(d[:])
	}
	return a
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// KeyRegisterEvent is the event recording that `by` (the admin acting: a
// PERSON, or the SERVICE identity) registered a key.
func KeyRegisterEvent(tenant, id string, pub []byte, validFrom, now time.Time, by *pb.Actor) *pb.ProvenanceEvent {
	return &pb.ProvenanceEvent{
		SchemaVersion: event.SchemaVersion, EventId: "provlog.key/" + id + "/register", Tenant: tenant,
		Operation: pb.Operation_OPERATION_KEY_REGISTER, EventTime: timestamppb.New(now), Actor: by,
		Workflow: &pb.Workflow{Platform: keyEventPlatform, RunId: keyEventRun},
		Outputs:  []*pb.Asset{keyAsset(tenant, id, pub)},
		Extensions: map[string]string{extKeyID: id, extKeyPublic: base64.StdEncoding.EncodeToString(pub),
			extValidFrom: ts(validFrom)},
	}
}

// KeyRotateEvent records that `by` replaced key old by newID at `at`.
func KeyRotateEvent(tenant, old, newID string, pub []byte, at time.Time, by *pb.Actor) *pb.ProvenanceEvent {
	return &pb.ProvenanceEvent{
		SchemaVersion: event.SchemaVersion, EventId: "provlog.key/" + old + "/rotate", Tenant: tenant,
		Operation: pb.Operation_OPERATION_KEY_ROTATE, EventTime: timestamppb.New(at), Actor: by,
		Workflow: &pb.Workflow{Platform: keyEventPlatform, RunId: keyEventRun},
		Inputs:   []*pb.Asset{keyAsset(tenant, old, nil)},
		Outputs:  []*pb.Asset{keyAsset(tenant, newID, pub)},
		Extensions: map[string]string{extKeyID: newID, extKeyPublic: base64.StdEncoding.EncodeToString(pub),
			extValidFrom: ts(at), extReplaces: old},
	}
}

// KeyRevokeEvent records that `by` revoked key id from `at` on, for reason.
func KeyRevokeEvent(tenant, id string, at, now time.Time, reason string, by *pb.Actor) *pb.ProvenanceEvent {
	return &pb.ProvenanceEvent{
		SchemaVersion: event.SchemaVersion, EventId: "provlog.key/" + id + "/revoke", Tenant: tenant,
		Operation: pb.Operation_OPERATION_KEY_REVOKE, EventTime: timestamppb.New(now), Actor: by,
		Workflow:   &pb.Workflow{Platform: keyEventPlatform, RunId: keyEventRun},
		Outputs:    []*pb.Asset{keyAsset(tenant, id, nil)},
		Rationale:  reason,
		Extensions: map[string]string{extKeyID: id, extValidUntil: ts(at)},
	}
}

// ApplyEvent replays one key event of the log, at leaf index, into h. Other
// events are ignored. A key event that does not parse, or that contradicts
// the history (a second registration of a key id), is an error: the log
// only holds key events the log itself wrote.
func (h *KeyHistory) ApplyEvent(ev *pb.ProvenanceEvent, index uint64) error {
	if !IsKeyOperation(ev.GetOperation()) {
		return nil
	}
	x := ev.GetExtensions()
	id := x[extKeyID]
	parseTime := func(k string) (time.Time, error) {
		t, err := time.Parse(time.RFC3339Nano, x[k])
		if err != nil {
			return time.Time{}, fmt.Errorf("key event %d: extension %s: %w", index, k, err)
		}
		return t, nil
	}
	parsePub := func() ([]byte, error) {
		pub, err := base64.StdEncoding.DecodeString(x[extKeyPublic])
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key event %d: extension %s is not a base64 Ed25519 public key", index, extKeyPublic)
		}
		return pub, nil
	}
	switch ev.GetOperation() {
	case pb.Operation_OPERATION_KEY_REGISTER:
		pub, err := parsePub()
		if err != nil {
			return err
		}
		from, err := parseTime(extValidFrom)
		if err != nil {
			return err
		}
		return h.Register(ev.GetTenant(), id, pub, from, index)
	case pb.Operation_OPERATION_KEY_ROTATE:
		pub, err := parsePub()
		if err != nil {
			return err
		}
		at, err := parseTime(extValidFrom)
		if err != nil {
			return err
		}
		return h.Rotate(ev.GetTenant(), x[extReplaces], id, pub, at, index)
	default:
		at, err := parseTime(extValidUntil)
		if err != nil {
			return err
		}
		return h.Revoke(ev.GetTenant(), id, at, index)
	}
}

// ParsePublicKey reads an Ed25519 public key given as 64 hex digits, as
// standard or URL-safe base64 (padded or not), or as a C2SP signed-note
// verifier key "NAME+HASH+BASE64" of type Ed25519 (what provctl keys
// generate submitter writes).
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return b, nil
		}
	}
	if strings.Count(s, "+") >= 2 { // NAME+HASH+KEY; KEY may hold "+" too
		if _, err := note.NewVerifier(s); err != nil {
			return nil, fmt.Errorf("not a signed-note verifier key: %w", err)
		}
		raw, _ := base64.StdEncoding.DecodeString(strings.SplitN(s, "+", 3)[2])
		if len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x01 {
			return nil, errors.New("not an Ed25519 signed-note verifier key")
		}
		return ed25519.PublicKey(raw[1:]), nil
	}
	return nil, errors.New("not a 32-byte Ed25519 public key in hex or base64, nor a signed-note verifier key")
}
