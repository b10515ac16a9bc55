package auth

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/authorship"
	"github.com/provlog/provlog/log/ledger/awstest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// backend makes a fresh place for the state and returns how to open a
// Persistence on it; each call opens a new one (a restart, or another
// frontend when the persistence is shared).
type backend func(t *testing.T) (open func() Persistence)

func TestFilePersistenceConformance(t *testing.T) {
	persistenceConformance(t, func(t *testing.T) func() Persistence {
		path := filepath.Join(t.TempDir(), StoreFile)
		return func() Persistence { return NewFilePersistence(path) }
	})
}

// TestMySQLPersistenceConformance runs the suite on the test MariaDB, one
// database per subtest.
func TestMySQLPersistenceConformance(t *testing.T) {
	awstest.ServerDSN(t) // skip or fail before the suite when absent
	persistenceConformance(t, func(t *testing.T) func() Persistence {
		dsn := awstest.NewDatabase(t)
		return func() Persistence {
			p, err := OpenMySQLPersistence(t.Context(), dsn)
			if err != nil {
				t.Fatalf("OpenMySQLPersistence: %v", err)
			}
			t.Cleanup(func() { p.Close() })
			return p
		}
	})
}

// persistenceConformance is what every Persistence must do, through the
// Store and directly.
func persistenceConformance(t *testing.T, b backend) {
	t.Run("CompareAndSwap", func(t *testing.T) {
		t.Parallel()
		p := b(t)()
		ctx := t.Context()
		if doc, ver, err := p.Load(ctx); err != nil || doc != nil || ver != 0 {
			t.Fatalf("Load of nothing = %q, %d, %v; want nil, 0", doc, ver, err)
		}
		if ver, err := p.Version(ctx); err != nil || ver != 0 {
			t.Fatalf("Version of nothing = %d, %v; want 0", ver, err)
		}
		steps := []struct {
			doc  string
			prev uint64
			want uint64
			err  error
		}{
			{`{"a":1}`, 0, 1, nil},
			{`{"a":2}`, 0, 0, ErrStateChanged},
			{`{"a":2}`, 2, 0, ErrStateChanged},
			{`{"a":2}`, 1, 2, nil},
			{`{"a":3}`, 1, 0, ErrStateChanged},
		}
		for i, s := range steps {
			got, err := p.Save(ctx, []byte(s.doc), s.prev)
			if !errors.Is(err, s.err) || (err == nil) != (s.err == nil) || got != s.want {
				t.Fatalf("step %d: Save(%s, %d) = %d, %v; want %d, %v", i, s.doc, s.prev, got, err, s.want, s.err)
			}
		}
		if doc, ver, err := p.Load(ctx); err != nil || string(doc) != `{"a":2}` || ver != 2 {
			t.Fatalf("Load = %q, %d, %v; want {\"a\":2}, 2", doc, ver, err)
		}
		if ver, err := p.Version(ctx); err != nil || ver != 2 {
			t.Fatalf("Version = %d, %v; want 2", ver, err)
		}
	})
	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		open := b(t)
		s, err := OpenStoreWith(t.Context(), open(), nil)
		if err != nil {
			t.Fatal(err)
		}
		fill(t, s, "r", 1)
		_, secret, err := s.CreateToken("bot", []Role{RoleAppender}, []string{"r-0"}, "", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		// A failed change leaves nothing behind, here or persisted.
		if _, err := s.CreateTenant("r-0", TenantPolicy{}); !errors.Is(err, ErrExists) {
			t.Fatalf("second CreateTenant: %v", err)
		}
		s2, err := OpenStoreWith(t.Context(), open(), nil)
		if err != nil {
			t.Fatal(err)
		}
		same(t, s, s2)
		if id, err := s2.Authenticate(t.Context(), secret); err != nil || id.Name != "token:bot" {
			t.Fatalf("Authenticate after reopening: %v, %v", id, err)
		}
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		// Goroutines changing one Store: no update lost.
		t.Parallel()
		open := b(t)
		s, err := OpenStoreWith(t.Context(), open(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() { fill(t, s, fmt.Sprint("g", g), 5) })
		}
		wg.Wait()
		if n := len(s.Tenants()); n != 20 {
			t.Fatalf("%d tenants, want 20", n)
		}
		s2, err := OpenStoreWith(t.Context(), open(), nil)
		if err != nil {
			t.Fatal(err)
		}
		same(t, s, s2)
	})
	t.Run("Shared", func(t *testing.T) {
		t.Parallel()
		open := b(t)
		pa := open()
		a, err := OpenStoreWith(t.Context(), pa, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !pa.Shared() {
			// The file belongs to one process: nothing to watch.
			done := make(chan struct{})
			go func() { a.Watch(t.Context(), time.Millisecond, nil); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Watch of an unshared store did not return")
			}
			return
		}
		sharedStores(t, a, open)
	})
}

// sharedStores: two Stores on one shared Persistence (two frontends).
func sharedStores(t *testing.T, a *Store, open func() Persistence) {
	ctx := t.Context()
	bs, err := OpenStoreWith(ctx, open(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Both race to change the state: each loses some compare-and-swaps,
	// reloads and applies its change again; nothing is lost.
	var wg sync.WaitGroup
	for i, s := range []*Store{a, bs, a, bs} {
		wg.Go(func() { fill(t, s, fmt.Sprint("s", i), 6) })
	}
	wg.Wait()
	for _, s := range []*Store{a, bs} {
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(s.Tenants()); n != 24 {
			t.Fatalf("%d tenants, want 24: an update was lost", n)
		}
	}
	same(t, a, bs)
	t.Logf("compare-and-swaps lost and reapplied: %d", a.conflicts.Load()+bs.conflicts.Load())

	// A token made through a works at once through b (an unknown token
	// refreshes), and so does a key registered through a.
	tok, secret, err := a.CreateToken("writer", []Role{RoleAppender}, []string{"s0-0"}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	ev := authorship.KeyRegisterEvent("s0-0", "k1", pub, now, now, &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"})
	if err := a.UpdateKeys(func(h *authorship.KeyHistory) error { return h.ApplyEvent(ev, 7) }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(missRefreshEvery) // past the fill's unknown-token refreshes, if any
	if id, err := bs.Authenticate(ctx, secret); err != nil || id.Name != "token:writer" {
		t.Fatalf("b.Authenticate of a's new token: %v, %v", id, err)
	}
	if k, ok := bs.Keys().Get("s0-0", "k1"); !ok || !bytes.Equal(k.Public, pub) {
		t.Fatalf("b does not know a's key: %+v %v", k, ok)
	}
	// A key event pending through a, finished by b (its resolvePending):
	// a's own ApplyPending then succeeds too, and nothing stays pending.
	pub2, _, _ := ed25519.GenerateKey(nil)
	ev2 := authorship.KeyRegisterEvent("s0-0", "k2", pub2, now, now, &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "admin"})
	if err := a.AddPending(ev2, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := bs.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bs.ApplyPending(ev2, 8); err != nil {
		t.Fatalf("b.ApplyPending of a's pending event: %v", err)
	}
	if err := a.ApplyPending(ev2, 8); err != nil {
		t.Fatalf("a.ApplyPending of the event b finished: %v", err)
	}
	if err := a.ApplyPending(authorship.KeyRegisterEvent("s0-0", "k3", pub2, now, now, nil), 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ApplyPending of an event never pending: %v, want ErrNotFound", err)
	}
	for _, s := range []*Store{a, bs} {
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if evs, _, err := s.Pending(); err != nil || len(evs) != 0 {
			t.Fatalf("still pending: %v, %v", evs, err)
		}
	}
	same(t, a, bs)
	// Revoked through b: a refuses it once it has refreshed (Watch).
	if _, err := bs.RevokeToken(tok.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, secret); err != nil {
		t.Fatalf("a before refreshing: %v (it should still have the token)", err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("a after refreshing: %v, want ErrTokenRevoked", err)
	}
	// Unknown tokens refresh at most every missRefreshEvery.
	_, secret2, err := a.CreateToken("second", []Role{RoleReader}, []string{"s0-0"}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bs.missMu.Lock()
	bs.lastMiss = time.Now()
	bs.missMu.Unlock()
	if _, err := bs.Authenticate(ctx, secret2); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("b within the miss interval: %v, want ErrUnauthenticated", err)
	}
	time.Sleep(missRefreshEvery)
	if _, err := bs.Authenticate(ctx, secret2); err != nil {
		t.Fatalf("b after the miss interval: %v", err)
	}
	// So do unknown submitter keys (the signature check calls
	// RefreshOnMiss), sharing the same limit.
	ev4 := authorship.KeyRegisterEvent("s0-0", "k4", pub2, now, now, nil)
	if err := a.UpdateKeys(func(h *authorship.KeyHistory) error { return h.ApplyEvent(ev4, 10) }); err != nil {
		t.Fatal(err)
	}
	if bs.RefreshOnMiss(ctx) {
		t.Fatal("RefreshOnMiss within the miss interval refreshed")
	}
	time.Sleep(missRefreshEvery)
	if !bs.RefreshOnMiss(ctx) {
		t.Fatal("RefreshOnMiss after the miss interval did not refresh")
	}
	if _, ok := bs.Keys().Get("s0-0", "k4"); !ok {
		t.Fatal("b does not know a's key k4 after RefreshOnMiss")
	}
}

// fill creates n tenants prefix-0.. and a certificate grant for each.
func fill(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := s.CreateTenant(name, TenantPolicy{RequireSignature: i%2 == 0}); err != nil {
			t.Errorf("CreateTenant(%s): %v", name, err)
			return
		}
		if _, err := s.GrantCert("cn="+name, []Role{RoleReader}, []string{name}, ""); err != nil {
			t.Errorf("GrantCert(%s): %v", name, err)
			return
		}
	}
}

// same compares the state two Stores show.
func same(t *testing.T, a, b *Store) {
	t.Helper()
	if diff := cmp.Diff(a.Tenants(), b.Tenants()); diff != "" {
		t.Errorf("tenants differ (-a +b):\n%s", diff)
	}
	if diff := cmp.Diff(a.Tokens(), b.Tokens()); diff != "" {
		t.Errorf("tokens differ (-a +b):\n%s", diff)
	}
	if diff := cmp.Diff(a.CertGrants(), b.CertGrants()); diff != "" {
		t.Errorf("certificate grants differ (-a +b):\n%s", diff)
	}
	if diff := cmp.Diff(a.Keys().All(), b.Keys().All()); diff != "" {
		t.Errorf("keys differ (-a +b):\n%s", diff)
	}
}

// TestMySQLPersistenceUnavailable stops the database under a shared Store:
// changes fail with ErrUnavailable and change nothing, known tokens keep
// working from the state read last, and once the database is back changes
// go through again.
func TestMySQLPersistenceUnavailable(t *testing.T) {
	m := awstest.StartMariaDB(t)
	dsn := m.NewDatabase(t)
	p, err := OpenMySQLPersistence(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := OpenStoreWith(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTenant("acme", TenantPolicy{}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := s.CreateToken("bot", []Role{RoleReader}, []string{"acme"}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if _, err := s.CreateTenant("other", TenantPolicy{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CreateTenant with the database down: %v, want ErrUnavailable", err)
	}
	if s.HasTenant("other") {
		t.Fatal("a failed CreateTenant left its tenant behind")
	}
	if err := s.Refresh(t.Context()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Refresh with the database down: %v, want ErrUnavailable", err)
	}
	if _, err := s.Authenticate(t.Context(), secret); err != nil {
		t.Fatalf("a known token with the database down: %v", err)
	}
	if _, err := s.Authenticate(t.Context(), "pl_unknown"); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("an unknown token with the database down: %v", err)
	}
	m.Start()
	if _, err := s.CreateTenant("other", TenantPolicy{}); err != nil {
		t.Fatalf("CreateTenant with the database back: %v", err)
	}
}
