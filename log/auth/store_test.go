package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func openTestStore(t *testing.T, dir string, clk *fakeClock) *Store {
	t.Helper()
	s, err := OpenStore(filepath.Join(dir, StoreFile), clk.now)
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	return s
}

func TestStoreTokens(t *testing.T) {
	dir := t.TempDir()
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	s := openTestStore(t, dir, clk)
	ctx := context.Background()
	if _, err := s.CreateTenant("acme", TenantPolicy{RequireSignature: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant("acme", TenantPolicy{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second CreateTenant: %v, want ErrExists", err)
	}
	forever, foreverSecret, err := s.CreateToken("ci-bot", []Role{RoleAppender}, []string{"acme"}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, shortSecret, err := s.CreateToken("temp", []Role{RoleReader}, []string{"acme"}, "jane@acme.example", clk.t.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	revoked, revokedSecret, err := s.CreateToken("leaked", []Role{RoleAdmin}, []string{AllTenants}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeToken(revoked.ID); err != nil {
		t.Fatal(err)
	}

	check := func(s *Store, label string) {
		t.Helper()
		id, err := s.Authenticate(ctx, foreverSecret)
		if err != nil {
			t.Fatalf("%s: ci-bot: %v", label, err)
		}
		if diff := cmp.Diff(&Identity{Name: "token:ci-bot", Roles: []Role{RoleAppender}, Tenants: []string{"acme"}}, id); diff != "" {
			t.Errorf("%s: identity (-want +got):\n%s", label, diff)
		}
		if id, err := s.Authenticate(ctx, shortSecret); err != nil || id.Person != "jane@acme.example" {
			t.Errorf("%s: temp before expiry: %v, %v", label, id, err)
		}
		if _, err := s.Authenticate(ctx, revokedSecret); !errors.Is(err, ErrTokenRevoked) || !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: revoked token: %v, want ErrTokenRevoked", label, err)
		}
		if _, err := s.Authenticate(ctx, foreverSecret+"x"); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: wrong token: %v", label, err)
		}
		if _, err := s.Authenticate(ctx, ""); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: empty token: %v", label, err)
		}
	}
	check(s, "live")

	// Persisted: hashes only, mode 0600, same answers after reopening.
	b, err := os.ReadFile(filepath.Join(dir, StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range []string{foreverSecret, shortSecret, revokedSecret} {
		if strings.Contains(string(b), sec) || strings.Contains(string(b), sec[3:]) {
			t.Fatal("store file holds a token secret")
		}
	}
	st, _ := os.Stat(filepath.Join(dir, StoreFile))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("store mode %#o, want 0600", st.Mode().Perm())
	}
	s2 := openTestStore(t, dir, clk)
	check(s2, "reopened")
	if got := s2.Policy("acme"); !got.RequireSignature {
		t.Errorf("policy after reopen: %+v", got)
	}

	// Expiry: at the expiry instant the token is refused.
	clk.t = clk.t.Add(time.Hour)
	if _, err := s2.Authenticate(ctx, shortSecret); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("expired token: %v, want ErrTokenExpired", err)
	}
	if _, err := s2.Authenticate(ctx, foreverSecret); err != nil {
		t.Errorf("token without expiry: %v", err)
	}
	_ = forever

	// A group-readable store is refused.
	if err := os.Chmod(filepath.Join(dir, StoreFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(filepath.Join(dir, StoreFile), nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable store: %v", err)
	}
}

func TestStoreGrantValidation(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	s := openTestStore(t, t.TempDir(), clk)
	if _, err := s.CreateTenant("acme", TenantPolicy{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tokName string
		roles         []Role
		tenants       []string
		person        string
		expires       time.Time
		field         string
	}{
		{"bad name", "has space", []Role{RoleReader}, []string{"acme"}, "", time.Time{}, "name"},
		{"no roles", "a", nil, []string{"acme"}, "", time.Time{}, "roles"},
		{"unknown role", "a", []Role{"root"}, []string{"acme"}, "", time.Time{}, "roles[0]"},
		{"no tenants", "a", []Role{RoleReader}, nil, "", time.Time{}, "tenants"},
		{"unregistered tenant", "a", []Role{RoleReader}, []string{"acme", "globex"}, "", time.Time{}, "tenants[1]"},
		{"bad person", "a", []Role{RoleReader}, []string{"acme"}, "j d", time.Time{}, "person"},
		{"expired at birth", "a", []Role{RoleReader}, []string{"acme"}, "", clk.t, "expire_time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.CreateToken(tc.tokName, tc.roles, tc.tenants, tc.person, tc.expires)
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != tc.field {
				t.Fatalf("CreateToken: %v, want InvalidError on %s", err, tc.field)
			}
		})
	}
	if len(s.Tokens()) != 0 {
		t.Errorf("refused tokens were kept: %v", s.Tokens())
	}
}

func TestStoreCerts(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s := openTestStore(t, dir, clk)
	if _, err := s.CreateTenant("acme", TenantPolicy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GrantCert("spiffe://acme.example/ns/etl/sa/n8n", []Role{RoleAppender}, []string{"acme"}, ""); err != nil {
		t.Fatal(err)
	}
	id, err := openTestStore(t, dir, clk).AuthenticateCert(context.Background(), []string{"n8n.acme.example", "spiffe://acme.example/ns/etl/sa/n8n"})
	if err != nil || id.Name != "cert:spiffe://acme.example/ns/etl/sa/n8n" {
		t.Fatalf("AuthenticateCert: %v, %v", id, err)
	}
	if _, err := s.AuthenticateCert(context.Background(), []string{"other"}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("ungranted cert: %v", err)
	}
	if _, err := s.RevokeCert("spiffe://acme.example/ns/etl/sa/n8n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateCert(context.Background(), []string{"spiffe://acme.example/ns/etl/sa/n8n"}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("revoked grant: %v", err)
	}
}

// signedEvent is a RUN_START of tenant acme at time at, signed by priv.
func signedEvent(t testing.TB, id string, at time.Time, keyID string, priv ed25519.PrivateKey) *pb.ProvenanceEvent {
	t.Helper()
	ev := &pb.ProvenanceEvent{SchemaVersion: 1, EventId: id, Tenant: "acme", Operation: pb.Operation_OPERATION_RUN_START,
		EventTime: timestamppb.New(at), Actor: &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_WORKFLOW, Id: "wf"},
		Workflow: &pb.Workflow{Platform: "airflow", RunId: "r1"}}
	if err := Sign(ev, keyID, priv); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestKeyHistoryVerify(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	pub1, priv1, _ := ed25519.GenerateKey(nil)
	pub2, priv2, _ := ed25519.GenerateKey(nil)
	admin := &Identity{Name: "admin", Roles: []Role{RoleAdmin}, Tenants: []string{AllTenants}}
	// The key events, as the admin service writes them to the log.
	events := []*pb.ProvenanceEvent{
		KeyRegisterEvent("acme", "k1", pub1, t0, t0, admin),
		KeyRotateEvent("acme", "k1", "k2", pub2, t0.Add(10*time.Hour), admin),
		KeyRevokeEvent("acme", "k2", t0.Add(20*time.Hour), t0.Add(21*time.Hour), "laptop stolen", admin),
	}
	h := NewKeyHistory()
	for i, ev := range events {
		if err := h.ApplyEvent(ev, uint64(i)); err != nil {
			t.Fatalf("ApplyEvent %d: %v", i, err)
		}
	}
	k1, _ := h.Get("acme", "k1")
	k2, _ := h.Get("acme", "k2")
	if k1.State != KeyRotated || k1.ReplacedBy != "k2" || !k1.ValidUntil.Equal(t0.Add(10*time.Hour)) {
		t.Errorf("k1 = %+v", k1)
	}
	if k2.State != KeyRevoked || !k2.ValidUntil.Equal(t0.Add(20*time.Hour)) || !cmp.Equal(k2.Events, []uint64{1, 2}) {
		t.Errorf("k2 = %+v", k2)
	}

	forged := signedEvent(t, "e-forged", t0.Add(time.Hour), "k1", priv1)
	forged.Workflow.RunId = "r2" // changed after signing
	otherTenant := signedEvent(t, "e-other", t0.Add(time.Hour), "k1", priv1)
	otherTenant.Tenant = "globex"
	if err := Sign(otherTenant, "k1", priv1); err != nil {
		t.Fatal(err)
	}
	unsigned := signedEvent(t, "e-unsigned", t0.Add(time.Hour), "k1", priv1)
	unsigned.Signature = nil
	for _, tc := range []struct {
		name    string
		ev      *pb.ProvenanceEvent
		wantErr error
		field   string
	}{
		{"k1 in its time", signedEvent(t, "e1", t0.Add(time.Hour), "k1", priv1), nil, ""},
		{"k1 before registration", signedEvent(t, "e2", t0.Add(-time.Second), "k1", priv1), ErrKeyNotValid, "signature.key_id"},
		{"k1 after rotation", signedEvent(t, "e3", t0.Add(10*time.Hour), "k1", priv1), ErrKeyNotValid, "signature.key_id"},
		{"k2 after rotation, before revocation", signedEvent(t, "e4", t0.Add(15*time.Hour), "k2", priv2), nil, ""},
		{"k2 after revocation", signedEvent(t, "e5", t0.Add(20*time.Hour), "k2", priv2), ErrKeyNotValid, "signature.key_id"},
		{"k2 key, k1 id", signedEvent(t, "e6", t0.Add(time.Hour), "k1", priv2), ErrBadSignature, "signature.signature"},
		{"forged", forged, ErrBadSignature, "signature.signature"},
		{"other tenant", otherTenant, ErrUnknownKey, "signature.key_id"},
		{"unknown key", signedEvent(t, "e7", t0.Add(time.Hour), "k9", priv1), ErrUnknownKey, "signature.key_id"},
		{"unsigned", unsigned, ErrSignatureNeeded, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := h.Verify(tc.ev)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify: %v, want %v", err, tc.wantErr)
			}
			var se *SignatureError
			if tc.wantErr != nil && (!errors.As(err, &se) || se.Field != tc.field) {
				t.Errorf("Verify: %v, want field %s", err, tc.field)
			}
		})
	}

	// The same history through the store, persisted and reloaded.
	dir := t.TempDir()
	s := openTestStore(t, dir, &fakeClock{t: t0})
	for i, ev := range events {
		if err := s.UpdateKeys(func(h *KeyHistory) error { return h.ApplyEvent(ev, uint64(i)) }); err != nil {
			t.Fatal(err)
		}
	}
	// A failed update changes nothing, in memory or on disk.
	if err := s.UpdateKeys(func(h *KeyHistory) error { return h.ApplyEvent(events[0], 9) }); !errors.Is(err, ErrExists) {
		t.Fatalf("re-registering k1: %v", err)
	}
	s2 := openTestStore(t, dir, &fakeClock{t: t0})
	if diff := cmp.Diff(h.all(), s2.Keys().all()); diff != "" {
		t.Errorf("reloaded key history differs (-replayed +reloaded):\n%s", diff)
	}
	if diff := cmp.Diff(h.all(), s.Keys().all()); diff != "" {
		t.Errorf("live key history differs after a failed update (-replayed +live):\n%s", diff)
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	for _, in := range []string{
		hex.EncodeToString(pub), base64.StdEncoding.EncodeToString(pub), base64.RawURLEncoding.EncodeToString(pub),
		" " + hex.EncodeToString(pub) + "\n",
	} {
		got, err := ParsePublicKey(in)
		if err != nil || !pub.Equal(got) {
			t.Errorf("ParsePublicKey(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", hex.EncodeToString(pub[:31]), base64.StdEncoding.EncodeToString(append(pub, 0))} {
		if k, err := ParsePublicKey(in); err == nil {
			t.Errorf("ParsePublicKey(%q) = %x, want an error", in, k)
		}
	}
}
