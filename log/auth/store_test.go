package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/authorship"
	pb "github.com/provlog/provlog/proto/provlog/v1"
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

// TestStoreKeys: the key history through the store, persisted and
// reloaded, equals the one replayed from the key events; a failed change
// leaves it as it was.
func TestStoreKeys(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	pub1, _, _ := ed25519.GenerateKey(nil)
	pub2, _, _ := ed25519.GenerateKey(nil)
	admin := &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"}
	events := []*pb.ProvenanceEvent{
		authorship.KeyRegisterEvent("acme", "k1", pub1, t0, t0, admin),
		authorship.KeyRotateEvent("acme", "k1", "k2", pub2, t0.Add(10*time.Hour), admin),
		authorship.KeyRevokeEvent("acme", "k2", t0.Add(20*time.Hour), t0.Add(21*time.Hour), "laptop stolen", admin),
	}
	h := authorship.NewKeyHistory()
	for i, ev := range events {
		if err := h.ApplyEvent(ev, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The same history through the store, persisted and reloaded.
	dir := t.TempDir()
	s := openTestStore(t, dir, &fakeClock{t: t0})
	for i, ev := range events {
		if err := s.UpdateKeys(func(h *authorship.KeyHistory) error { return h.ApplyEvent(ev, uint64(i)) }); err != nil {
			t.Fatal(err)
		}
	}
	// A failed update changes nothing, in memory or on disk.
	if err := s.UpdateKeys(func(h *authorship.KeyHistory) error { return h.ApplyEvent(events[0], 9) }); !errors.Is(err, ErrExists) {
		t.Fatalf("re-registering k1: %v", err)
	}
	s2 := openTestStore(t, dir, &fakeClock{t: t0})
	if diff := cmp.Diff(h.All(), s2.Keys().All()); diff != "" {
		t.Errorf("reloaded key history differs (-replayed +reloaded):\n%s", diff)
	}
	if diff := cmp.Diff(h.All(), s.Keys().All()); diff != "" {
		t.Errorf("live key history differs after a failed update (-replayed +live):\n%s", diff)
	}
}
