// Package vaulttest is the conformance suite every vault.Store
// implementation runs, so that the embedded store and the MySQL store
// behave the same under the vault.
package vaulttest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/provlog/provlog/log/vault"
)

// Opener opens the store called name: a new, empty one the first time a
// name is used within t, the same one (with what was written to it) again,
// after it was closed or, for a store several processes share, while it is
// still open. The opener cleans up after t.
type Opener func(t *testing.T, name string) vault.Store

// StoreConformance checks a Store implementation against the contract
// documented on vault.Store, and a Vault over it.
func StoreConformance(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"GetMissing", testGetMissing},
		{"WriteGet", testWriteGet},
		{"Scan", testScan},
		{"ScanPaging", testScanPaging},
		{"WriteOrder", testWriteOrder},
		{"Insert", testInsert},
		{"Keyring", testKeyring},
		{"KeyringRace", testKeyringRace},
		{"Durable", testDurable},
		{"Vault", testVault},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// SharedConformance checks what a store several processes share must
// also do: two vaults open on it at once (as two frontends) see each
// other's data keys, values and erasures.
func SharedConformance(t *testing.T, open Opener) {
	t.Run("InsertRace", func(t *testing.T) { testInsertRace(t, open) })
	t.Run("TwoVaults", func(t *testing.T) { testTwoVaults(t, open) })
	t.Run("TwoVaultsSealOneEvent", func(t *testing.T) { testSealRace(t, open) })
}

func write(t *testing.T, s vault.Store, ops ...vault.Op) {
	t.Helper()
	if err := s.Write(t.Context(), ops); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func set(k, v string) vault.Op {
	return vault.Op{Kind: vault.OpSet, Key: []byte(k), Value: []byte(v)}
}

func get(t *testing.T, s vault.Store, k string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(t.Context(), []byte(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return string(v), ok
}

type kv struct{ K, V string }

func scan(t *testing.T, s vault.Store, prefix string) []kv {
	t.Helper()
	var out []kv
	var p []byte
	if prefix != "" {
		p = []byte(prefix)
	}
	err := s.Scan(t.Context(), p, func(k, v []byte) error {
		out = append(out, kv{string(k), string(v)})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	return out
}

func testGetMissing(t *testing.T, open Opener) {
	s := open(t, "s")
	if v, ok := get(t, s, "nope"); ok {
		t.Fatalf("Get of a missing key = %q, true", v)
	}
	if got := scan(t, s, "v"); len(got) != 0 {
		t.Fatalf("Scan of an empty store: %v", got)
	}
}

func testWriteGet(t *testing.T, open Opener) {
	s := open(t, "s")
	big := string(bytes.Repeat([]byte{0xab}, 70<<10))
	write(t, s, set("a", "1"), vault.Op{Kind: vault.OpSet, Key: []byte("empty")}, set("big", big), set("\x00\xff\x01", "bin"))
	for k, want := range map[string]string{"a": "1", "empty": "", "big": big, "\x00\xff\x01": "bin"} {
		if got, ok := get(t, s, k); !ok || got != want {
			t.Errorf("Get(%q) = %d bytes, %v; want %d bytes", k, len(got), ok, len(want))
		}
	}
	// The caller owns what Get returns.
	v, _, _ := s.Get(t.Context(), []byte("a"))
	v[0] = 'x'
	if got, _ := get(t, s, "a"); got != "1" {
		t.Errorf("changing Get's result changed the store: %q", got)
	}
}

func testScan(t *testing.T, open Opener) {
	s := open(t, "s")
	write(t, s, set("va\x00b", "1"), set("va\x00a", "2"), set("va\xff", "3"), set("vb", "4"), set("v", "5"), set("k1", "6"), set("w", "7"), set("va\x00\xff\xff", "8"))
	for _, tc := range []struct {
		prefix string
		want   []kv
	}{
		{"va", []kv{{"va\x00a", "2"}, {"va\x00b", "1"}, {"va\x00\xff\xff", "8"}, {"va\xff", "3"}}},
		{"va\x00", []kv{{"va\x00a", "2"}, {"va\x00b", "1"}, {"va\x00\xff\xff", "8"}}},
		{"v", []kv{{"v", "5"}, {"va\x00a", "2"}, {"va\x00b", "1"}, {"va\x00\xff\xff", "8"}, {"va\xff", "3"}, {"vb", "4"}}},
		{"va\xff", []kv{{"va\xff", "3"}}},
		{"x", nil},
		{"", []kv{{"k1", "6"}, {"v", "5"}, {"va\x00a", "2"}, {"va\x00b", "1"}, {"va\x00\xff\xff", "8"}, {"va\xff", "3"}, {"vb", "4"}, {"w", "7"}}},
	} {
		if diff := cmp.Diff(tc.want, scan(t, s, tc.prefix)); diff != "" {
			t.Errorf("Scan(%q) (-want +got):\n%s", tc.prefix, diff)
		}
	}
	// A callback's error stops the scan and is returned.
	stop := errors.New("stop")
	n := 0
	err := s.Scan(t.Context(), []byte("v"), func(k, v []byte) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Scan with a failing callback: %v after %d calls", err, n)
	}
}

func testScanPaging(t *testing.T, open Opener) {
	s := open(t, "s")
	var ops []vault.Op
	for i := range 700 {
		ops = append(ops, set(fmt.Sprintf("p%04d", i), fmt.Sprint(i)))
	}
	write(t, s, ops...)
	// The callback reads the store while it scans (the vault's archive
	// does).
	i := 0
	err := s.Scan(t.Context(), []byte("p"), func(k, v []byte) error {
		if want := fmt.Sprintf("p%04d", i); string(k) != want {
			return fmt.Errorf("key %d is %q, want %q", i, k, want)
		}
		if got, ok, err := s.Get(t.Context(), k); err != nil || !ok || !bytes.Equal(got, v) {
			return fmt.Errorf("Get(%q) inside Scan: %q %v %v", k, got, ok, err)
		}
		i++
		return nil
	})
	if err != nil || i != 700 {
		t.Fatalf("Scan: %v after %d keys", err, i)
	}
}

func testWriteOrder(t *testing.T, open Opener) {
	s := open(t, "s")
	write(t, s, set("a", "1"), set("b", "1"), set("c", "1"), set("d", "1"))
	write(t, s,
		set("a", "2"),
		vault.Op{Kind: vault.OpDelete, Key: []byte("a")}, // set then delete: gone
		vault.Op{Kind: vault.OpDelete, Key: []byte("b")},
		set("b", "3"), // delete then set: there
		vault.Op{Kind: vault.OpDeleteRange, Key: []byte("c"), End: []byte("d")},
		set("e", "1"),
		vault.Op{Kind: vault.OpDelete, Key: []byte("missing")},
	)
	want := []kv{{"b", "3"}, {"d", "1"}, {"e", "1"}}
	if diff := cmp.Diff(want, scan(t, s, "")); diff != "" {
		t.Errorf("after the batch (-want +got):\n%s", diff)
	}
	if err := s.Write(t.Context(), nil); err != nil {
		t.Errorf("empty Write: %v", err)
	}
}

func testInsert(t *testing.T, open Opener) {
	s := open(t, "s")
	ins := func(k, v string) vault.Op { return vault.Op{Kind: vault.OpInsert, Key: []byte(k), Value: []byte(v)} }
	write(t, s, ins("m1", "a"), set("x", "1"))
	if err := s.Write(t.Context(), []vault.Op{set("y", "1"), ins("m1", "b"), set("z", "1")}); !errors.Is(err, vault.ErrExists) {
		t.Fatalf("inserting a stored key: %v, want ErrExists", err)
	}
	if err := s.Write(t.Context(), []vault.Op{ins("m2", "a"), ins("m2", "b")}); !errors.Is(err, vault.ErrExists) {
		t.Fatalf("inserting a key twice in one write: %v, want ErrExists", err)
	}
	want := []kv{{"m1", "a"}, {"x", "1"}}
	if diff := cmp.Diff(want, scan(t, s, "")); diff != "" {
		t.Errorf("a failed insert changed the store (-want +got):\n%s", diff)
	}
}

// testInsertRace: shared stores only, two handles inserting one key.
func testInsertRace(t *testing.T, open Opener) {
	s1, s2 := open(t, "race"), open(t, "race")
	for round := range 20 {
		key := []byte(fmt.Sprintf("marker-%d", round))
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i, s := range []vault.Store{s1, s2, s1, s2} {
			wg.Go(func() {
				err := s.Write(t.Context(), []vault.Op{
					{Kind: vault.OpSet, Key: fmt.Appendf(nil, "value-%d-%d", round, i), Value: []byte("v")},
					{Kind: vault.OpInsert, Key: key},
				})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, vault.ErrExists):
					t.Errorf("Write: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d inserts of one key succeeded, want 1", round, wins.Load())
		}
	}
	// Each losing write left nothing behind.
	n := 0
	if err := s1.Scan(t.Context(), []byte("value-"), func(_, _ []byte) error { n++; return nil }); err != nil || n != 20 {
		t.Fatalf("%d values stored (%v), want one per round", n, err)
	}
}

func testKeyring(t *testing.T, open Opener) {
	s := open(t, "s")
	ctx := t.Context()
	if _, _, ok, err := s.ReadKeyring(ctx); ok || err != nil {
		t.Fatalf("ReadKeyring of a new store: ok=%v err=%v", ok, err)
	}
	if v, err := s.KeyringVersion(ctx); v != 0 || err != nil {
		t.Fatalf("KeyringVersion of a new store: %d %v", v, err)
	}
	v1, err := s.WriteKeyring(ctx, []byte(`{"n":1}`), 0)
	if err != nil || v1 == 0 {
		t.Fatalf("first WriteKeyring: %d %v", v1, err)
	}
	if _, err := s.WriteKeyring(ctx, []byte(`{"n":"again"}`), 0); !errors.Is(err, vault.ErrKeyringChanged) {
		t.Fatalf("second first WriteKeyring: %v, want ErrKeyringChanged", err)
	}
	v2, err := s.WriteKeyring(ctx, []byte(`{"n":2}`), v1)
	if err != nil || v2 == v1 || v2 == 0 {
		t.Fatalf("WriteKeyring over %d: %d %v", v1, v2, err)
	}
	if _, err := s.WriteKeyring(ctx, []byte(`{"n":"stale"}`), v1); !errors.Is(err, vault.ErrKeyringChanged) {
		t.Fatalf("WriteKeyring over a stale version: %v, want ErrKeyringChanged", err)
	}
	doc, v, ok, err := s.ReadKeyring(ctx)
	if err != nil || !ok || v != v2 || string(doc) != `{"n":2}` {
		t.Fatalf("ReadKeyring = %q %d %v %v, want {\"n\":2} at %d", doc, v, ok, err, v2)
	}
	if v, err := s.KeyringVersion(ctx); v != v2 || err != nil {
		t.Fatalf("KeyringVersion = %d %v, want %d", v, err, v2)
	}
}

// testKeyringRace: writers racing from the same version, exactly one
// wins each round.
func testKeyringRace(t *testing.T, open Opener) {
	s := open(t, "s")
	ctx := t.Context()
	ver, err := s.WriteKeyring(ctx, []byte("0"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		var wins atomic.Int32
		var winner atomic.Uint64
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				v, err := s.WriteKeyring(ctx, fmt.Appendf(nil, "%d/%d", round, g), ver)
				switch {
				case err == nil:
					wins.Add(1)
					winner.Store(v)
				case !errors.Is(err, vault.ErrKeyringChanged):
					t.Errorf("WriteKeyring: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writers won, want 1", round, wins.Load())
		}
		ver = winner.Load()
	}
}

func testDurable(t *testing.T, open Opener) {
	s := open(t, "d")
	write(t, s, set("v1", "x"), set("v2", "y"))
	v, err := s.WriteKeyring(t.Context(), []byte("kr"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, "d")
	if diff := cmp.Diff([]kv{{"v1", "x"}, {"v2", "y"}}, scan(t, s, "v")); diff != "" {
		t.Errorf("after reopening (-want +got):\n%s", diff)
	}
	doc, ver, ok, err := s.ReadKeyring(t.Context())
	if err != nil || !ok || string(doc) != "kr" || ver != v {
		t.Errorf("keyring after reopening: %q %d %v %v", doc, ver, ok, err)
	}
}

func masterKey(t *testing.T) vault.KeyManager {
	t.Helper()
	k := make([]byte, 32)
	rand.Read(k)
	km, err := vault.NewFileKeyManager(k)
	if err != nil {
		t.Fatal(err)
	}
	return km
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openVault(t *testing.T, open Opener, name string, km vault.KeyManager, c *clock) *vault.Vault {
	t.Helper()
	v, err := vault.Open(vault.Config{Dir: filepath.Join(t.TempDir(), "vault"), Store: open(t, name), Keys: km, RotateEvery: time.Hour, Now: c.Now})
	if err != nil {
		t.Fatalf("vault.Open: %v", err)
	}
	return v
}

func reveal(t *testing.T, v *vault.Vault, tenant, id string, s vault.Sealed, want string) {
	t.Helper()
	o, err := v.Reveal(tenant, id, s)
	if err != nil || string(o.Value) != want || !bytes.Equal(o.Salt, s.Salt) {
		t.Fatalf("Reveal(%s, %s, %s) = %q, %v; want %q", tenant, id, s.Name, o.Value, err, want)
	}
}

// testVault runs a Vault over the store: seal, idempotent reseal, reveal
// after reopening, a wrong master key refused, shredding.
func testVault(t *testing.T, open Opener) {
	km := masterKey(t)
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st := open(t, "v")
	v, err := vault.Open(vault.Config{Dir: t.TempDir(), Store: st, Keys: km, RotateEvery: time.Hour, Now: c.Now})
	if err != nil {
		t.Fatalf("vault.Open: %v", err)
	}
	vals := []vault.Plain{{Name: "email", Classification: "pii", Value: []byte("a@example.com")}, {Name: "amount", Classification: "confidential", Value: []byte("42")}}
	sealed, err := v.Seal("acme", "ev-1", vals)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	again, err := v.Seal("acme", "ev-1", vals)
	if err != nil || !cmp.Equal(sealed, again) {
		t.Fatalf("resealing the same values: %v, %v; want the same commitments", again, err)
	}
	// The store sees ciphertexts only.
	for _, p := range scan(t, st, "") {
		for _, val := range vals {
			if strings.Contains(p.K+p.V, string(val.Value)) {
				t.Fatalf("the store holds %q in clear under %q", val.Value, p.K)
			}
		}
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Open(vault.Config{Dir: t.TempDir(), Store: open(t, "v"), Keys: masterKey(t)}); !errors.Is(err, vault.ErrWrongMasterKey) {
		t.Fatalf("Open with another master key: %v, want ErrWrongMasterKey", err)
	}
	v = openVault(t, open, "v", km, c)
	defer v.Close()
	reveal(t, v, "acme", "ev-1", sealed[0], "a@example.com")
	reveal(t, v, "acme", "ev-1", sealed[1], "42")
	c.add(2 * time.Hour) // past RotateEvery: the keys retire
	rules := []vault.Rule{{Tenant: "acme", Classification: "pii", After: time.Hour, Action: vault.ActionShred}}
	if _, err := v.ApplyRetention(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	erased, err := v.ApplyRetention(t.Context(), rules)
	if err != nil || len(erased) != 1 || erased[0].Values != 1 {
		t.Fatalf("ApplyRetention = %+v, %v; want one shred of one value", erased, err)
	}
	var ee *vault.ErasedError
	if _, err := v.Reveal("acme", "ev-1", sealed[0]); !errors.As(err, &ee) {
		t.Fatalf("Reveal of a shredded value: %v, want *ErasedError", err)
	}
	reveal(t, v, "acme", "ev-1", sealed[1], "42")
}

// testTwoVaults opens two vaults on one shared store at once.
func testTwoVaults(t *testing.T, open Opener) {
	km := masterKey(t)
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := openVault(t, open, "shared", km, c)
	defer a.Close()
	b := openVault(t, open, "shared", km, c)
	defer b.Close()
	pii := func(s string) []vault.Plain {
		return []vault.Plain{{Name: "email", Classification: "pii", Value: []byte(s)}}
	}
	sa, err := a.Seal("acme", "ev-a", pii("a@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	// b reveals what a sealed, under the data key a made.
	reveal(t, b, "acme", "ev-a", sa[0], "a@example.com")
	// b seals under a's key: no second generation.
	sb, err := b.Seal("acme", "ev-b", pii("b@example.com"))
	if err != nil || sb[0].KeyID != sa[0].KeyID {
		t.Fatalf("b sealed under %q (%v), a under %q: want one data key", sb[0].KeyID, err, sa[0].KeyID)
	}
	// b resealing a's event is idempotent.
	if again, err := b.Seal("acme", "ev-a", pii("a@example.com")); err != nil || again[0].Commitment != sa[0].Commitment {
		t.Fatalf("b resealing ev-a: %v; want a's commitment", err)
	}
	// Both make keys for new classes at once: each class gets one key
	// both vaults use.
	var wg sync.WaitGroup
	got := make([][]vault.Sealed, 8)
	for i := range got {
		v := []*vault.Vault{a, b}[i%2]
		wg.Go(func() {
			s, err := v.Seal("acme", fmt.Sprintf("ev-c%d", i), []vault.Plain{{Name: "x", Classification: fmt.Sprintf("class%d", i/4), Value: []byte{byte(i)}}})
			if err != nil {
				t.Errorf("Seal %d: %v", i, err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, s := range got {
		if s[0].KeyID != got[i/4*4][0].KeyID {
			t.Errorf("seal %d under %s, seal %d under %s: one class, two keys", i, s[0].KeyID, i/4*4, got[i/4*4][0].KeyID)
		}
		reveal(t, []*vault.Vault{b, a}[i%2], "acme", fmt.Sprintf("ev-c%d", i), s[0], string([]byte{byte(i)}))
	}
	// a shreds; b can no longer reveal.
	c.add(2 * time.Hour)
	if _, err := a.ApplyRetention(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	c.add(2 * time.Hour)
	erased, err := a.ApplyRetention(t.Context(), []vault.Rule{{Tenant: "acme", Classification: "pii", After: time.Hour, Action: vault.ActionShred}})
	if err != nil || len(erased) != 1 || erased[0].Values != 2 {
		t.Fatalf("ApplyRetention = %+v, %v; want one shred of two values", erased, err)
	}
	var ee *vault.ErasedError
	if _, err := b.Reveal("acme", "ev-b", sb[0]); !errors.As(err, &ee) {
		t.Fatalf("b revealing a value a shredded: %v, want *ErasedError", err)
	}
	if len(b.Erasures()) != 1 {
		t.Fatalf("b's erasures: %+v", b.Erasures())
	}
}

// testSealRace: two vaults seal the same event at once, as when a client
// retries an append on another frontend: both get the same commitment,
// so the log sees one event, not a conflict.
func testSealRace(t *testing.T, open Opener) {
	km := masterKey(t)
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := openVault(t, open, "sealrace", km, c)
	defer a.Close()
	b := openVault(t, open, "sealrace", km, c)
	defer b.Close()
	if _, err := a.Seal("acme", "warm-up", []vault.Plain{{Name: "x", Classification: "pii", Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		id := fmt.Sprintf("ev-%d", round)
		vals := []vault.Plain{{Name: "email", Classification: "pii", Value: []byte(id + "@example.com")}}
		got := make([][]vault.Sealed, 2)
		var wg sync.WaitGroup
		for i, v := range []*vault.Vault{a, b} {
			wg.Go(func() {
				s, err := v.Seal("acme", id, vals)
				if err != nil {
					t.Errorf("Seal: %v", err)
				}
				got[i] = s
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if got[0][0].Commitment != got[1][0].Commitment {
			t.Fatalf("round %d: the two vaults committed to the same value differently", round)
		}
	}
}
