package vault

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
	// Dir holds the archive (Dir/archive) and, unless Store is set, the
	// keyring and the value store (OpenPebbleStore).
	Dir string
	// Store, when set, keeps the keyring and the values instead of Dir
	// (OpenMySQLStore: shared by the frontends of one database). The
	// vault closes it.
	Store Store
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
	st  Store

	mu    sync.Mutex // guards kr, krVer and aeads, serialises keyring writes
	kr    *keyring
	krVer uint64 // the Store's version of kr
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
	st := cfg.Store
	if st == nil {
		var err error
		if st, err = OpenPebbleStore(cfg.Dir, cfg.Logger); err != nil {
			return nil, err
		}
	}
	v := &Vault{cfg: cfg, st: st, seed: maphash.MakeSeed()}
	if err := v.openKeyring(); err != nil {
		st.Close()
		return nil, err
	}
	// Finish any erasure a crash interrupted: the keyring says erased, some
	// ciphertexts may remain.
	for _, k := range v.kr.Keys {
		if k.State == stateShredded || k.State == stateArchived {
			if _, err := v.dropValues(k.ID); err != nil {
				st.Close()
				return nil, err
			}
		}
	}
	return v, nil
}

// openKeyring reads the keyring, or writes a new one when there is none.
func (v *Vault) openKeyring() error {
	ctx := context.Background()
	for range 5 {
		doc, ver, ok, err := v.st.ReadKeyring(ctx)
		if err != nil {
			return err
		}
		if ok {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.loadLocked(doc, ver)
		}
		check, err := v.cfg.Keys.Wrap(checkPlaintext, []byte("check"))
		if err != nil {
			return fmt.Errorf("couldn't wrap the vault check value: %w", err)
		}
		kr := &keyring{Version: 1, MasterKeyID: v.cfg.Keys.ID(), Check: check}
		doc, err = encodeKeyring(kr)
		if err != nil {
			return err
		}
		ver, err = v.st.WriteKeyring(ctx, doc, 0)
		if errors.Is(err, ErrKeyringChanged) {
			continue // another process made it first: read theirs
		}
		if err != nil {
			return err
		}
		v.kr, v.krVer, v.aeads = kr, ver, map[string]cipher.AEAD{}
		return nil
	}
	return errors.New("vault: the keyring kept changing while it was opened")
}

// loadLocked decodes doc, checks the master key against it and unwraps
// every data key, then makes it the vault's keyring. v.mu is held.
func (v *Vault) loadLocked(doc []byte, ver uint64) error {
	kr, err := decodeKeyring(doc)
	if err != nil {
		return err
	}
	aeads, err := unwrapAll(kr, v.cfg.Keys)
	if err != nil {
		return err
	}
	v.kr, v.krVer, v.aeads = kr, ver, aeads
	return nil
}

// reloadLocked reads the keyring the Store holds now. v.mu is held.
func (v *Vault) reloadLocked() error {
	doc, ver, ok, err := v.st.ReadKeyring(context.Background())
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("vault: the keyring is gone from the store")
	}
	return v.loadLocked(doc, ver)
}

// refresh reloads the keyring when another process sharing the Store
// changed it: keys it made, rotated or erased.
func (v *Vault) refresh() error {
	ver, err := v.st.KeyringVersion(context.Background())
	if err != nil {
		return fmt.Errorf("couldn't read the vault keyring's version: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if ver == v.krVer {
		return nil
	}
	return v.reloadLocked()
}

// putKeyringLocked writes next as the keyring if nobody changed it since
// v.kr was read, and makes it v.kr. When somebody did, it reloads v.kr and
// returns ErrKeyringChanged: build next again from v.kr. v.mu is held.
func (v *Vault) putKeyringLocked(next *keyring) error {
	doc, err := encodeKeyring(next)
	if err != nil {
		return err
	}
	ver, err := v.st.WriteKeyring(context.Background(), doc, v.krVer)
	if errors.Is(err, ErrKeyringChanged) {
		if rerr := v.reloadLocked(); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if err != nil {
		return err
	}
	v.kr, v.krVer = next, ver
	return nil
}

// keyringRetries bounds how often a keyring change is rebuilt after
// another process changed the keyring first.
const keyringRetries = 8

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
func (v *Vault) Close() error { return v.st.Close() }

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
	ctx := context.Background()
	if err := v.refresh(); err != nil {
		return nil, err
	}
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
	// The stripes serialise this process's seals of one event; ErrExists
	// says another process sharing the store sealed one of these events
	// meanwhile: look again, and find its values.
	for attempt := 0; ; attempt++ {
		out, err := v.sealBatch(ctx, reqs)
		if errors.Is(err, ErrExists) && attempt < keyringRetries {
			continue
		}
		return out, err
	}
}

// sealBatch is one try of SealBatch, with the stripes locked.
func (v *Vault) sealBatch(ctx context.Context, reqs []Request) ([][]Sealed, error) {
	// pending is what this batch writes: a later request for the same
	// event sees what an earlier one wrote.
	var ops []Op
	pending := map[string][]byte{}
	set := func(k, val []byte) {
		ops = append(ops, Op{Kind: OpSet, Key: k, Value: val})
		pending[string(k)] = val
	}
	out := make([][]Sealed, len(reqs))
	for j, r := range reqs {
		existing, marked, err := v.existing(ctx, pending, r.Tenant, r.EventID, r.Values)
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
			set(vk, encodeRecord(p.Classification, keyID, ct))
			set(byKeyKey(keyID, vk), nil)
			out[j][i] = Sealed{Name: p.Name, Classification: p.Classification, KeyID: keyID, Commitment: c, Salt: salt}
		}
		if !marked {
			// The first values of the event: the marker is inserted, and
			// fails the write if another process inserted it first.
			mk := markerKey(r.Tenant, r.EventID)
			ops = append(ops, Op{Kind: OpInsert, Key: mk})
			pending[string(mk)] = nil
		}
	}
	if len(ops) > 0 {
		if err := v.st.Write(ctx, ops); err != nil {
			if errors.Is(err, ErrExists) {
				return nil, err
			}
			return nil, fmt.Errorf("couldn't store sensitive values: %w", err)
		}
	}
	return out, nil
}

// existing finds, for each submitted value, a stored value of the same
// event with the same name, classification and plaintext, in the store or
// in pending (what the batch being built writes). marked says the event's
// marker is there: it has values.
func (v *Vault) existing(ctx context.Context, pending map[string][]byte, tenant, eventID string, vals []Plain) (found map[int]Sealed, marked bool, err error) {
	// A point lookup of the event's marker first: the embedded store's
	// bloom filters answer it for a new event without reading the disk,
	// where a prefix scan would.
	mk := markerKey(tenant, eventID)
	_, inBatch := pending[string(mk)]
	_, stored, err := v.st.Get(ctx, mk)
	if err != nil {
		return nil, false, fmt.Errorf("vault: %w", err)
	}
	if !stored && !inBatch {
		return nil, false, nil
	}
	prefix := eventPrefix(tenant, eventID)
	found = make(map[int]Sealed)
	visit := func(key, val []byte) error {
		name, c, ok := splitValueKey(key[len(prefix):])
		if !ok {
			return fmt.Errorf("vault: corrupt value key %q", key)
		}
		for i, p := range vals {
			if _, done := found[i]; done || p.Name != name {
				continue
			}
			class, keyID, ct, err := decodeRecord(val)
			if err != nil {
				return err
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
		return nil
	}
	if stored {
		if err := v.st.Scan(ctx, prefix, visit); err != nil {
			return nil, false, err
		}
	}
	if inBatch {
		for k, val := range pending {
			if strings.HasPrefix(k, string(prefix)) {
				if err := visit([]byte(k), val); err != nil {
					return nil, false, err
				}
			}
		}
	}
	return found, true, nil
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
	if err := v.refresh(); err != nil {
		return Opening{}, err
	}
	if err := v.erased(s.KeyID); err != nil {
		return Opening{}, err
	}
	rec, ok, err := v.st.Get(context.Background(), valueKey(tenant, eventID, s.Name, s.Commitment))
	if err != nil {
		return Opening{}, err
	}
	if !ok {
		return Opening{}, ErrNotFound
	}
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
	for attempt := 0; ; attempt++ {
		// After a conflict, v.kr is what another process wrote: it may
		// hold the key this one was about to make.
		if k := v.activeKey(tenant, class); k != nil && now.Sub(k.Created) < v.cfg.RotateEvery {
			return k.ID, v.aeads[k.ID], nil
		}
		k, err := v.newKeyLocked(tenant, class, now)
		if errors.Is(err, ErrKeyringChanged) && attempt < keyringRetries {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return k.ID, v.aeads[k.ID], nil
	}
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
	if err := v.putKeyringLocked(&next); err != nil {
		return nil, err
	}
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
	for attempt := 0; ; attempt++ {
		k, err := v.newKeyLocked(tenant, class, v.cfg.Now())
		if errors.Is(err, ErrKeyringChanged) && attempt < keyringRetries {
			continue
		}
		if err != nil {
			return "", err
		}
		return k.ID, nil
	}
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
	// Another process's change in between fails this one: run it again.
	if err := v.putKeyringLocked(&nk); err != nil {
		return err
	}
	v.cfg.Keys = next
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
