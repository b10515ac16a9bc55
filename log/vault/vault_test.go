package vault

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func masterKey(t *testing.T, dir, name string) *FileKeyManager {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := CreateMasterKeyFile(p); err != nil {
		t.Fatal(err)
	}
	km, err := LoadMasterKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return km
}

func openVault(t *testing.T, dir string, km KeyManager, c *clock) *Vault {
	t.Helper()
	v, err := Open(Config{Dir: dir, Keys: km, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)} }

func TestSealReveal(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	v := openVault(t, filepath.Join(dir, "vault"), masterKey(t, dir, "master.key"), c)
	defer v.Close()
	vals := []Plain{
		{Name: "contact.email", Classification: "pii", Value: []byte("alice@example.com")},
		{Name: "contact.phone", Classification: "pii", Value: []byte("+33 6 12 34 56 78")},
		{Name: "deal.amount", Classification: "confidential", Value: []byte("1250000")},
	}
	sealed, err := v.Seal("acme", "evt-1", vals)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range sealed {
		if s.Name != vals[i].Name || s.Classification != vals[i].Classification {
			t.Errorf("sealed[%d] = %+v", i, s)
		}
		o, err := v.Reveal("acme", "evt-1", s)
		if err != nil {
			t.Fatalf("Reveal %s: %v", s.Name, err)
		}
		if !bytes.Equal(o.Value, vals[i].Value) {
			t.Errorf("Reveal %s = %q, want %q", s.Name, o.Value, vals[i].Value)
		}
		// Whoever holds value and salt can check the commitment; another
		// value or salt does not open it.
		if !event.VerifyCommitment(s.Commitment[:], o.Salt, vals[i].Value) {
			t.Errorf("%s: commitment does not verify", s.Name)
		}
		if event.VerifyCommitment(s.Commitment[:], o.Salt, []byte("bob@example.com")) {
			t.Errorf("%s: commitment opens to another value", s.Name)
		}
	}
	if sealed[0].KeyID != "acme/pii/1" || sealed[2].KeyID != "acme/confidential/1" {
		t.Errorf("key ids %s, %s", sealed[0].KeyID, sealed[2].KeyID)
	}
	// Two equal values in different events get different commitments:
	// the log does not show which records share a value.
	other, err := v.Seal("acme", "evt-2", vals[:1])
	if err != nil {
		t.Fatal(err)
	}
	if other[0].Commitment == sealed[0].Commitment {
		t.Error("equal values in two events have equal commitments")
	}
	// The same commitment under another event, tenant or name reveals
	// nothing.
	for _, tc := range []struct{ tenant, id string }{{"acme", "evt-2"}, {"globex", "evt-1"}} {
		if _, err := v.Reveal(tc.tenant, tc.id, sealed[0]); !errors.Is(err, ErrNotFound) {
			t.Errorf("Reveal(%s, %s) of another event's value: %v, want ErrNotFound", tc.tenant, tc.id, err)
		}
	}
}

func TestSealIdempotent(t *testing.T) {
	dir := t.TempDir()
	v := openVault(t, filepath.Join(dir, "vault"), masterKey(t, dir, "master.key"), newClock())
	defer v.Close()
	vals := []Plain{{Name: "a", Classification: "pii", Value: []byte("v1")}, {Name: "b", Classification: "pii", Value: []byte("v2")}}
	first, err := v.Seal("acme", "evt-1", vals)
	if err != nil {
		t.Fatal(err)
	}
	// The salt returned to the submitter opens the commitment.
	for i, f := range first {
		if !event.VerifyCommitment(f.Commitment[:], f.Salt, vals[i].Value) {
			t.Errorf("%s: the salt does not open the commitment", vals[i].Name)
		}
	}
	// Concurrent and later re-sends commit to the same bytes.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			again, err := v.Seal("acme", "evt-1", vals)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range again {
				if again[i].Commitment != first[i].Commitment || again[i].KeyID != first[i].KeyID || !bytes.Equal(again[i].Salt, first[i].Salt) {
					t.Errorf("re-sent %s: %x, first %x", vals[i].Name, again[i].Commitment, first[i].Commitment)
				}
			}
		})
	}
	wg.Wait()
	// A different value under the same event id gets a new commitment and
	// does not overwrite the first.
	changed, err := v.Seal("acme", "evt-1", []Plain{{Name: "a", Classification: "pii", Value: []byte("other")}})
	if err != nil {
		t.Fatal(err)
	}
	if changed[0].Commitment == first[0].Commitment {
		t.Fatal("a different value got the same commitment")
	}
	o, err := v.Reveal("acme", "evt-1", first[0])
	if err != nil || string(o.Value) != "v1" {
		t.Fatalf("first value after a conflicting seal: %q, %v", o.Value, err)
	}
}

func TestFirstAppendConcurrent(t *testing.T) {
	dir := t.TempDir()
	v := openVault(t, filepath.Join(dir, "vault"), masterKey(t, dir, "master.key"), newClock())
	defer v.Close()
	vals := []Plain{{Name: "a", Classification: "pii", Value: []byte("v1")}}
	res := make([]Sealed, 8)
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			s, err := v.Seal("acme", "evt-new", vals)
			if err != nil {
				t.Error(err)
				return
			}
			res[i] = s[0]
		})
	}
	wg.Wait()
	for i := range res {
		if !reflect.DeepEqual(res[i], res[0]) {
			t.Fatalf("concurrent first seals differ: %+v vs %+v", res[i], res[0])
		}
	}
}

func TestMasterKeyRotation(t *testing.T) {
	dir := t.TempDir()
	vdir := filepath.Join(dir, "vault")
	c := newClock()
	oldKey := masterKey(t, dir, "old.key")
	v := openVault(t, vdir, oldKey, c)
	var sealed []Sealed
	for _, tenant := range []string{"acme", "globex"} {
		s, err := v.Seal(tenant, "evt-1", []Plain{{Name: "email", Classification: "pii", Value: []byte(tenant + "-secret")}})
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s...)
	}
	if _, err := v.RotateDataKey("acme", "pii"); err != nil {
		t.Fatal(err)
	}
	s, err := v.Seal("acme", "evt-2", []Plain{{Name: "email", Classification: "pii", Value: []byte("acme-secret-2")}})
	if err != nil {
		t.Fatal(err)
	}
	sealed = append(sealed, s...)
	if s[0].KeyID != "acme/pii/2" {
		t.Errorf("after data key rotation, new writes use %s, want acme/pii/2", s[0].KeyID)
	}
	storeBefore := dump(t, v)

	newKey := masterKey(t, dir, "new.key")
	if err := v.RotateMasterKey(newKey); err != nil {
		t.Fatal(err)
	}
	// Only the keyring changed: the value store holds the same bytes.
	if after := dump(t, v); !maps.EqualFunc(storeBefore, after, bytes.Equal) || len(after) == 0 {
		t.Error("master key rotation touched the value store")
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	// The old master key now fails at Open, loudly.
	if _, err := Open(Config{Dir: vdir, Keys: oldKey, Now: c.now}); !errors.Is(err, ErrWrongMasterKey) {
		t.Fatalf("Open with the old master key: %v, want ErrWrongMasterKey", err)
	}
	v = openVault(t, vdir, newKey, c)
	defer v.Close()
	want := []string{"acme-secret", "globex-secret", "acme-secret-2"}
	tenants := []string{"acme", "globex", "acme"}
	ids := []string{"evt-1", "evt-1", "evt-2"}
	for i, s := range sealed {
		o, err := v.Reveal(tenants[i], ids[i], s)
		if err != nil || string(o.Value) != want[i] {
			t.Errorf("after rotation, %s: %q, %v; want %q", s.KeyID, o.Value, err, want[i])
		}
	}
}

// dump reads every key and value of the store.
func dump(t *testing.T, v *Vault) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	err := v.st.Scan(t.Context(), nil, func(k, val []byte) error {
		out[string(k)] = bytes.Clone(val)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWrongMasterKeyFailsAtOpen(t *testing.T) {
	for _, withData := range []bool{false, true} {
		dir := t.TempDir()
		vdir := filepath.Join(dir, "vault")
		v := openVault(t, vdir, masterKey(t, dir, "right.key"), newClock())
		if withData {
			if _, err := v.Seal("acme", "e", []Plain{{Name: "n", Classification: "pii", Value: []byte("x")}}); err != nil {
				t.Fatal(err)
			}
		}
		v.Close()
		wrong := masterKey(t, dir, "wrong.key")
		if _, err := Open(Config{Dir: vdir, Keys: wrong}); !errors.Is(err, ErrWrongMasterKey) {
			t.Errorf("withData=%v: Open with a wrong key: %v, want ErrWrongMasterKey", withData, err)
		}
		// A key manager claiming the right id but holding another key is
		// caught by the check value.
		if _, err := Open(Config{Dir: vdir, Keys: liar{wrong, v.cfg.Keys.ID()}}); !errors.Is(err, ErrWrongMasterKey) {
			t.Errorf("withData=%v: Open with a lying key manager: %v, want ErrWrongMasterKey", withData, err)
		}
	}
}

type liar struct {
	KeyManager
	id string
}

func (l liar) ID() string { return l.id }

func TestMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := CreateMasterKeyFile(p); err != nil {
		t.Fatal(err)
	}
	if err := CreateMasterKeyFile(p); err == nil {
		t.Error("CreateMasterKeyFile overwrote an existing key")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v", fi.Mode().Perm())
	}
	os.Chmod(p, 0o644)
	if _, err := LoadMasterKeyFile(p); err == nil {
		t.Error("a world-readable key file was accepted")
	}
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte("not hex\n"), 0o600)
	if _, err := LoadMasterKeyFile(p); err == nil {
		t.Error("a malformed key file was accepted")
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	vdir := filepath.Join(dir, "vault")
	c := newClock()
	km := masterKey(t, dir, "master.key")
	v := openVault(t, vdir, km, c)
	seal := func(tenant, id, class, val string) Sealed {
		t.Helper()
		s, err := v.Seal(tenant, id, []Plain{{Name: "f", Classification: class, Value: []byte(val)}})
		if err != nil {
			t.Fatal(err)
		}
		return s[0]
	}
	acmeOld := seal("acme", "e1", "pii", "ACME-OLD-PII-VALUE")
	acmeConf := seal("acme", "e2", "confidential", "ACME-OLD-CONF-VALUE")
	globex := seal("globex", "e1", "pii", "GLOBEX-PII-VALUE")
	c.add(25 * time.Hour) // the first keys retire; new writes get generation 2
	acmeNew := seal("acme", "e3", "pii", "ACME-NEW-PII-VALUE")
	if acmeNew.KeyID != "acme/pii/2" {
		t.Fatalf("after RotateEvery, key %s", acmeNew.KeyID)
	}
	rules := []Rule{
		{Tenant: "acme", Classification: "pii", After: 2 * 24 * time.Hour, Action: ActionShred},
		{Tenant: "acme", Classification: "confidential", After: 2 * 24 * time.Hour, Action: ActionArchive},
	}
	// Not due yet.
	if es, err := v.ApplyRetention(t.Context(), rules); err != nil || len(es) != 0 {
		t.Fatalf("early retention: %v, %v", es, err)
	}
	c.add(2 * 24 * time.Hour)
	es, err := v.ApplyRetention(t.Context(), rules)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Action{}
	for _, e := range es {
		got[e.KeyID] = e.Action
		if e.Values != 1 || e.Logged {
			t.Errorf("erasure %+v", e)
		}
	}
	if len(got) != 2 || got["acme/pii/1"] != ActionShred || got["acme/confidential/1"] != ActionArchive {
		t.Fatalf("erasures %+v", es)
	}
	v.Close()
	v = openVault(t, vdir, km, c)
	defer v.Close()
	for _, tc := range []struct {
		s      Sealed
		action Action
	}{{acmeOld, ActionShred}, {acmeConf, ActionArchive}} {
		_, err := v.Reveal("acme", map[string]string{"acme/pii/1": "e1", "acme/confidential/1": "e2"}[tc.s.KeyID], tc.s)
		var ee *ErasedError
		if !errors.As(err, &ee) || ee.Action != tc.action || ee.Policy == "" || !ee.At.Equal(c.now()) {
			t.Errorf("Reveal of %s after retention: %v", tc.s.KeyID, err)
		}
	}
	// Newer acme values (acme/pii/2 retired 1 day later than /1... not yet
	// due) and other tenants are untouched.
	for _, tc := range []struct {
		tenant, id string
		s          Sealed
		want       string
	}{{"acme", "e3", acmeNew, "ACME-NEW-PII-VALUE"}, {"globex", "e1", globex, "GLOBEX-PII-VALUE"}} {
		if o, err := v.Reveal(tc.tenant, tc.id, tc.s); err != nil || string(o.Value) != tc.want {
			t.Errorf("Reveal %s: %q, %v", tc.s.KeyID, o.Value, err)
		}
	}
	if err := v.MarkLogged("acme/pii/1", 42); err != nil {
		t.Fatal(err)
	}
	for _, e := range v.Erasures() {
		if e.KeyID == "acme/pii/1" && (!e.Logged || e.LogIndex != 42) {
			t.Errorf("after MarkLogged: %+v", e)
		}
	}
	// The shredded key is gone from the keyring; the archived one is kept
	// and its ciphertext is in the archive.
	kr, _, err := readKeyring(vdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kr.Keys {
		if (k.ID == "acme/pii/1") != (k.Wrapped == nil) {
			t.Errorf("key %s state %s wrapped=%v", k.ID, k.State, k.Wrapped != nil)
		}
	}
	if _, err := os.Stat(filepath.Join(vdir, "archive", "acme%2Fconfidential%2F1.values")); err != nil {
		t.Errorf("archive: %v", err)
	}
	// No plaintext anywhere in the vault.
	filepath.WalkDir(vdir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range []string{"ACME-OLD-PII-VALUE", "ACME-OLD-CONF-VALUE", "GLOBEX-PII-VALUE", "ACME-NEW-PII-VALUE"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %s in clear", p, s)
			}
		}
		return nil
	})
}

func TestRuleName(t *testing.T) {
	r := Rule{Tenant: "acme", Classification: "pii", After: 30 * 24 * time.Hour, Action: ActionShred}
	if got := r.Name(); got != "acme/pii:shred-after-30d" {
		t.Errorf("Name() = %q", got)
	}
}

// TestSealBatchSameEvent: one batch holding the same event twice (a
// client retrying inside a batch) commits to the same values once.
func TestSealBatchSameEvent(t *testing.T) {
	dir := t.TempDir()
	v := openVault(t, filepath.Join(dir, "vault"), masterKey(t, dir, "master.key"), newClock())
	defer v.Close()
	vals := []Plain{{Name: "a", Classification: "pii", Value: []byte("x")}}
	out, err := v.SealBatch([]Request{{"acme", "e1", vals}, {"acme", "e2", vals}, {"acme", "e1", vals}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out[0][0], out[2][0]) || out[0][0].Commitment == out[1][0].Commitment {
		t.Errorf("batch seals: %+v", out)
	}
	n, err := v.countValues("acme/pii/1")
	if err != nil || n != 2 {
		t.Errorf("%d values stored (%v), want 2", n, err)
	}
}
