package vault

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/provlog/provlog/log/event"
)

// Errors returned by the vault.
var (
	// ErrNotFound means the vault holds no value for that commitment.
	ErrNotFound = errors.New("vault: no such value")
	// ErrMismatch means a stored value does not open its commitment: the
	// vault was tampered with or corrupted.
	ErrMismatch = errors.New("vault: value does not match its commitment")
)

// ErasedError says a value is no longer readable because a retention
// policy archived or shredded it.
type ErasedError struct {
	KeyID  string
	Action Action
	Policy string
	At     time.Time
}

func (e *ErasedError) Error() string {
	return fmt.Sprintf("value erased (%s) at %s under policy %s", e.Action, e.At.UTC().Format(time.RFC3339), e.Policy)
}

// Config configures a Vault.
type Config struct {
	// Dir holds the keyring, the value store (Dir/db) and the archive
	// (Dir/archive).
	Dir string
	// Keys wraps the data keys.
	Keys KeyManager
	// RotateEvery is the age at which a data key stops taking new writes
	// (a new generation takes over); 24h when 0. Retention counts from
	// then, so it also bounds how late past its policy a value is erased.
	RotateEvery time.Duration
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
}

// Vault stores sensitive values encrypted, outside the log. It is safe for
// concurrent use.
type Vault struct {
	cfg Config
	db  *pebble.DB

	mu    sync.Mutex // guards kr and aeads, serialises keyring writes
	kr    *keyring
	aeads map[string]cipher.AEAD

	seed  maphash.Seed
	locks [64]sync.Mutex // per (tenant, event id), for Seal's get-or-create
}

// vaultCacheSize bounds the value store's block cache: memory does not grow
// with the number of values.
const vaultCacheSize = 32 << 20

var checkPlaintext = []byte("provlog vault master key check v1")

// Open opens, or creates, the vault in cfg.Dir. Every data key is
// unwrapped now, so a wrong master key fails here (ErrWrongMasterKey), not
// at the first read.
func Open(cfg Config) (*Vault, error) {
	if cfg.Keys == nil {
		return nil, errors.New("vault: Keys is required")
	}
	if cfg.RotateEvery <= 0 {
		cfg.RotateEvery = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create vault directory: %w", err)
	}
	kr, ok, err := readKeyring(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		check, err := cfg.Keys.Wrap(checkPlaintext, []byte("check"))
		if err != nil {
			return nil, fmt.Errorf("couldn't wrap the vault check value: %w", err)
		}
		kr = &keyring{Version: 1, MasterKeyID: cfg.Keys.ID(), Check: check}
		if err := writeKeyring(cfg.Dir, kr); err != nil {
			return nil, err
		}
	}
	aeads, err := unwrapAll(kr, cfg.Keys)
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(vaultCacheSize)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{Logger: pebbleLogger{cfg.Logger}, Cache: cache}
	for i := range opts.Levels {
		// Seal looks up every new event's marker: absent, almost always.
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(filepath.Join(cfg.Dir, "db"), opts)
	if err != nil {
		return nil, fmt.Errorf("couldn't open vault store: %w", err)
	}
	v := &Vault{cfg: cfg, db: db, kr: kr, aeads: aeads, seed: maphash.MakeSeed()}
	// Finish any erasure a crash interrupted: the keyring says erased, some
	// ciphertexts may remain.
	for _, k := range kr.Keys {
		if k.State == stateShredded || k.State == stateArchived {
			if _, err := v.dropValues(k.ID); err != nil {
				db.Close()
				return nil, err
			}
		}
	}
	return v, nil
}

// unwrapAll checks the master key against the keyring and unwraps every
// data key still held.
func unwrapAll(kr *keyring, km KeyManager) (map[string]cipher.AEAD, error) {
	if kr.MasterKeyID != km.ID() {
		return nil, fmt.Errorf("%w: the keyring is wrapped under %s, the key given is %s", ErrWrongMasterKey, kr.MasterKeyID, km.ID())
	}
	if pt, err := km.Unwrap(kr.Check, []byte("check")); err != nil || !bytes.Equal(pt, checkPlaintext) {
		return nil, fmt.Errorf("%w: the keyring check value does not unwrap", ErrWrongMasterKey)
	}
	aeads := make(map[string]cipher.AEAD)
	for _, k := range kr.Keys {
		if k.Wrapped == nil {
			continue
		}
		dk, err := km.Unwrap(k.Wrapped, keyAAD(k.ID))
		if err != nil {
			return nil, fmt.Errorf("%w: data key %s does not unwrap", ErrWrongMasterKey, k.ID)
		}
		aead, err := newGCM(dk)
		if err != nil {
			return nil, err
		}
		aeads[k.ID] = aead
	}
	return aeads, nil
}

// Close closes the value store.
func (v *Vault) Close() error {
	if err := v.db.Close(); err != nil {
		return fmt.Errorf("couldn't close vault store: %w", err)
	}
	return nil
}

func keyAAD(id string) []byte { return []byte("provlog vault data key v1\n" + id) }

// Plain is a sensitive value as submitted.
type Plain struct {
	Name           string
	Classification string
	Value          []byte
}

// Sealed is what the leaf holds for a sensitive value.
type Sealed struct {
	Name           string
	Classification string
	KeyID          string
	Commitment     [32]byte
	// Salt opens Commitment with the submitted value: the submitter may
	// have it (it sent the value), nobody else.
	Salt []byte
}

// Seal encrypts each value under the current data key of its tenant and
// classification, with a fresh random salt, stores it, and returns what the
// leaf holds instead.
//
// Idempotency: if (tenant, eventID) already has a stored value with the
// same name, classification and plaintext (a retry, or a re-sent event),
// Seal returns its commitment again rather than a new one, so the re-sent
// event encodes to the same bytes and the log sees a duplicate. Stored
// values are never overwritten: a different value under the same event id
// gets a new record, and the log refuses the event as a conflict. Values
// are synced to disk before Seal returns, so the log never commits to a
// value the vault could lose.
func (v *Vault) Seal(tenant, eventID string, vals []Plain) ([]Sealed, error) {
	out, err := v.SealBatch([]Request{{Tenant: tenant, EventID: eventID, Values: vals}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// Request is the sensitive values of one event, for SealBatch.
type Request struct {
	Tenant, EventID string
	Values          []Plain
}

// SealBatch is Seal for many events, with one synced write for all.
func (v *Vault) SealBatch(reqs []Request) ([][]Sealed, error) {
	// Lock every stripe involved, in ascending order, so that two batches
	// cannot deadlock.
	var stripes []int
	for _, r := range reqs {
		stripes = append(stripes, int(maphash.String(v.seed, r.Tenant+"\x00"+r.EventID)%uint64(len(v.locks))))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	for _, i := range stripes {
		v.locks[i].Lock()
	}
	defer func() {
		for _, i := range stripes {
			v.locks[i].Unlock()
		}
	}()
	// An indexed batch: a later request for the same event sees what an
	// earlier one wrote.
	b := v.db.NewIndexedBatch()
	defer b.Close()
	out := make([][]Sealed, len(reqs))
	for j, r := range reqs {
		existing, err := v.existing(b, r.Tenant, r.EventID, r.Values)
		if err != nil {
			return nil, err
		}
		out[j] = make([]Sealed, len(r.Values))
		for i, p := range r.Values {
			if s, ok := existing[i]; ok {
				out[j][i] = s
				continue
			}
			keyID, aead, err := v.currentKey(r.Tenant, p.Classification)
			if err != nil {
				return nil, err
			}
			salt := make([]byte, event.CommitmentSaltSize)
			rand.Read(salt)
			c := event.Commitment(salt, p.Value)
			ct, err := seal(aead, append(salt, p.Value...), valueAAD(r.Tenant, r.EventID, p.Name, p.Classification, keyID))
			if err != nil {
				return nil, err
			}
			vk := valueKey(r.Tenant, r.EventID, p.Name, c)
			if err := b.Set(vk, encodeRecord(p.Classification, keyID, ct), nil); err != nil {
				return nil, fmt.Errorf("vault: %w", err)
			}
			if err := b.Set(byKeyKey(keyID, vk), nil, nil); err != nil {
				return nil, fmt.Errorf("vault: %w", err)
			}
			out[j][i] = Sealed{Name: p.Name, Classification: p.Classification, KeyID: keyID, Commitment: c, Salt: salt}
		}
		if len(existing) < len(r.Values) {
			if err := b.Set(markerKey(r.Tenant, r.EventID), nil, nil); err != nil {
				return nil, fmt.Errorf("vault: %w", err)
			}
		}
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return nil, fmt.Errorf("couldn't store sensitive values: %w", err)
		}
	}
	return out, nil
}

// existing finds, for each submitted value, a stored value of the same
// event with the same name, classification and plaintext.
func (v *Vault) existing(b *pebble.Batch, tenant, eventID string, vals []Plain) (map[int]Sealed, error) {
	// A point lookup of the event's marker first: bloom filters answer it
	// for a new event without reading the disk, where a prefix scan would.
	_, closer, err := b.Get(markerKey(tenant, eventID))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	closer.Close()
	prefix := eventPrefix(tenant, eventID)
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("vault: %w", err)
	}
	defer it.Close()
	found := make(map[int]Sealed)
	for it.First(); it.Valid(); it.Next() {
		name, c, ok := splitValueKey(it.Key()[len(prefix):])
		if !ok {
			return nil, fmt.Errorf("vault: corrupt value key %q", it.Key())
		}
		for i, p := range vals {
			if _, done := found[i]; done || p.Name != name {
				continue
			}
			class, keyID, ct, err := decodeRecord(it.Value())
			if err != nil {
				return nil, err
			}
			if class != p.Classification {
				continue
			}
			pt, err := v.decrypt(keyID, ct, valueAAD(tenant, eventID, name, class, keyID))
			if err != nil {
				continue // erased or unreadable: cannot be the same value
			}
			if subtle.ConstantTimeCompare(pt[event.CommitmentSaltSize:], p.Value) == 1 {
				found[i] = Sealed{Name: name, Classification: class, KeyID: keyID, Commitment: c, Salt: bytes.Clone(pt[:event.CommitmentSaltSize])}
			}
		}
	}
	return found, it.Error()
}

func (v *Vault) decrypt(keyID string, ct, aad []byte) ([]byte, error) {
	v.mu.Lock()
	aead, ok := v.aeads[keyID]
	v.mu.Unlock()
	if !ok {
		return nil, ErrNotFound
	}
	pt, err := open(aead, ct, aad)
	if err != nil || len(pt) < event.CommitmentSaltSize {
		return nil, fmt.Errorf("%w: %s", ErrMismatch, "ciphertext does not authenticate")
	}
	return pt, nil
}

// Opening is a revealed value and the salt that opens its commitment.
type Opening struct {
	Value []byte
	Salt  []byte
}

// Reveal returns the value a leaf committed to, and its salt. It checks the
// opening against the commitment before returning it. A value erased by a
// retention policy gives an *ErasedError saying when and under which
// policy.
func (v *Vault) Reveal(tenant, eventID string, s Sealed) (Opening, error) {
	if err := v.erased(s.KeyID); err != nil {
		return Opening{}, err
	}
	val, closer, err := v.db.Get(valueKey(tenant, eventID, s.Name, s.Commitment))
	if errors.Is(err, pebble.ErrNotFound) {
		return Opening{}, ErrNotFound
	}
	if err != nil {
		return Opening{}, fmt.Errorf("couldn't read vault: %w", err)
	}
	rec := append([]byte(nil), val...)
	closer.Close()
	class, keyID, ct, err := decodeRecord(rec)
	if err != nil {
		return Opening{}, err
	}
	if class != s.Classification || keyID != s.KeyID {
		return Opening{}, ErrMismatch
	}
	pt, err := v.decrypt(keyID, ct, valueAAD(tenant, eventID, s.Name, class, keyID))
	if err != nil {
		if e := v.erased(s.KeyID); e != nil {
			return Opening{}, e // erased since the first check
		}
		return Opening{}, err
	}
	o := Opening{Salt: pt[:event.CommitmentSaltSize], Value: pt[event.CommitmentSaltSize:]}
	if !event.VerifyCommitment(s.Commitment[:], o.Salt, o.Value) {
		return Opening{}, ErrMismatch
	}
	return o, nil
}

// erased returns an *ErasedError if keyID was archived or shredded.
func (v *Vault) erased(keyID string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, k := range v.kr.Keys {
		if k.ID == keyID && k.ErasedAt != nil {
			return &ErasedError{KeyID: k.ID, Action: actionOf(k.State), Policy: k.Policy, At: *k.ErasedAt}
		}
	}
	return nil
}

// currentKey returns the data key new writes of (tenant, classification)
// use, making a new generation when there is none or it is older than
// RotateEvery.
func (v *Vault) currentKey(tenant, class string) (string, cipher.AEAD, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.cfg.Now()
	if k := v.activeKey(tenant, class); k != nil && now.Sub(k.Created) < v.cfg.RotateEvery {
		return k.ID, v.aeads[k.ID], nil
	}
	k, err := v.newKeyLocked(tenant, class, now)
	if err != nil {
		return "", nil, err
	}
	return k.ID, v.aeads[k.ID], nil
}

func (v *Vault) activeKey(tenant, class string) *keyRecord {
	for _, k := range v.kr.Keys {
		if k.Tenant == tenant && k.Classification == class && k.State == stateActive {
			return k
		}
	}
	return nil
}

// newKeyLocked makes the next generation of (tenant, class) the active
// key, retiring the current one, and writes the keyring. v.mu is held.
func (v *Vault) newKeyLocked(tenant, class string, now time.Time) (*keyRecord, error) {
	gen := 1
	for _, k := range v.kr.Keys {
		if k.Tenant == tenant && k.Classification == class && k.Generation >= gen {
			gen = k.Generation + 1
		}
	}
	id := tenant + "/" + class + "/" + strconv.Itoa(gen)
	dk := make([]byte, 32)
	rand.Read(dk)
	wrapped, err := v.cfg.Keys.Wrap(dk, keyAAD(id))
	if err != nil {
		return nil, fmt.Errorf("couldn't wrap data key %s: %w", id, err)
	}
	aead, err := newGCM(dk)
	if err != nil {
		return nil, err
	}
	next := *v.kr
	next.Keys = make([]*keyRecord, 0, len(v.kr.Keys)+1)
	var retired *keyRecord
	for _, k := range v.kr.Keys {
		if k.Tenant == tenant && k.Classification == class && k.State == stateActive {
			c := *k
			c.State, c.Retired = stateRetired, &now
			retired = &c
			k = &c
		}
		next.Keys = append(next.Keys, k)
	}
	rec := &keyRecord{ID: id, Tenant: tenant, Classification: class, Generation: gen, Created: now, State: stateActive, Wrapped: wrapped}
	next.Keys = append(next.Keys, rec)
	if err := writeKeyring(v.cfg.Dir, &next); err != nil {
		return nil, err
	}
	v.kr = &next
	v.aeads[id] = aead
	if retired != nil {
		v.cfg.Logger.Info("vault data key rotated", "retired", retired.ID, "active", id)
	}
	return rec, nil
}

// RotateDataKey makes a new data key take over new writes of (tenant,
// classification) now; the previous one still decrypts what it sealed. It
// returns the new key's id.
func (v *Vault) RotateDataKey(tenant, class string) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, err := v.newKeyLocked(tenant, class, v.cfg.Now())
	if err != nil {
		return "", err
	}
	return k.ID, nil
}

// RotateMasterKey re-wraps every data key under next and makes it the
// vault's master key. Ciphertexts and the log are not touched: only the
// keyring is rewritten (atomically). After it returns, Open needs next.
func (v *Vault) RotateMasterKey(next KeyManager) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	nk := *v.kr
	nk.MasterKeyID = next.ID()
	check, err := next.Wrap(checkPlaintext, []byte("check"))
	if err != nil {
		return fmt.Errorf("couldn't wrap the check value under the new master key: %w", err)
	}
	nk.Check = check
	nk.Keys = make([]*keyRecord, len(v.kr.Keys))
	for i, k := range v.kr.Keys {
		c := *k
		if k.Wrapped != nil {
			dk, err := v.cfg.Keys.Unwrap(k.Wrapped, keyAAD(k.ID))
			if err != nil {
				return fmt.Errorf("couldn't unwrap data key %s: %w", k.ID, err)
			}
			if c.Wrapped, err = next.Wrap(dk, keyAAD(k.ID)); err != nil {
				return fmt.Errorf("couldn't re-wrap data key %s: %w", k.ID, err)
			}
		}
		nk.Keys[i] = &c
	}
	if err := writeKeyring(v.cfg.Dir, &nk); err != nil {
		return err
	}
	v.kr, v.cfg.Keys = &nk, next
	v.cfg.Logger.Info("vault master key rotated", "master_key", next.ID(), "data_keys", len(nk.Keys))
	return nil
}

// Store layout (pebble, Dir/db):
//
//	"v" tenant 0x00 event_id 0x00 name 0x00 commitment(32)
//	    -> 0x01 | len(class) class | len(key id) key id | nonce | ciphertext
//	"k" key id 0x00 <the "v" key>  -> empty  (values by data key, for erasure)
//	"e" tenant 0x00 event_id       -> empty  (the event has values)
//
// The ciphertext is AES-256-GCM of salt(32) || value under the data key,
// with associated data binding it to its tenant, event, name,
// classification and key id, so a ciphertext moved to another place does
// not decrypt.

func eventPrefix(tenant, eventID string) []byte {
	return []byte("v" + tenant + "\x00" + eventID + "\x00")
}

func valueKey(tenant, eventID, name string, c [32]byte) []byte {
	k := eventPrefix(tenant, eventID)
	k = append(k, name...)
	k = append(k, 0)
	return append(k, c[:]...)
}

func splitValueKey(rest []byte) (string, [32]byte, bool) {
	if len(rest) < 33 || rest[len(rest)-33] != 0 {
		return "", [32]byte{}, false
	}
	return string(rest[:len(rest)-33]), [32]byte(rest[len(rest)-32:]), true
}

func markerKey(tenant, eventID string) []byte { return []byte("e" + tenant + "\x00" + eventID) }

func byKeyPrefix(keyID string) []byte { return []byte("k" + keyID + "\x00") }

func byKeyKey(keyID string, vk []byte) []byte { return append(byKeyPrefix(keyID), vk...) }

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

func valueAAD(tenant, eventID, name, class, keyID string) []byte {
	b := []byte("provlog vault value v1\n")
	for _, s := range []string{tenant, eventID, name, class, keyID} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func encodeRecord(class, keyID string, ct []byte) []byte {
	b := []byte{1, byte(len(class))}
	b = append(b, class...)
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	return append(b, ct...)
}

func decodeRecord(b []byte) (class, keyID string, ct []byte, err error) {
	bad := errors.New("vault: corrupt value record")
	if len(b) < 2 || b[0] != 1 {
		return "", "", nil, bad
	}
	n := int(b[1])
	if len(b) < 2+n+1 {
		return "", "", nil, bad
	}
	class = string(b[2 : 2+n])
	b = b[2+n:]
	m := int(b[0])
	if len(b) < 1+m {
		return "", "", nil, bad
	}
	return class, string(b[1 : 1+m]), b[1+m:], nil
}

type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("vault store", "msg", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("vault store", "msg", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error("vault store fatal", "msg", fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
