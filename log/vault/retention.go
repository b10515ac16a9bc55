package vault

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/provlog/provlog/internal/atomicfile"
)

// Action is what a retention rule does to values past their retention.
type Action string

// Retention actions.
const (
	// ActionShred destroys the data key: the values are unrecoverable.
	ActionShred Action = "shred"
	// ActionArchive moves the ciphertexts to the archive store
	// (Dir/archive); the key is kept, so an operator can restore them.
	ActionArchive Action = "archive"
)

// Past is the action's past participle: "shredded", "archived".
func (a Action) Past() string {
	switch a {
	case ActionShred:
		return "shredded"
	case ActionArchive:
		return "archived"
	}
	return string(a) + "ed"
}

func actionOf(state string) Action {
	if state == stateArchived {
		return ActionArchive
	}
	return ActionShred
}

// Rule is a retention policy for one tenant and classification.
type Rule struct {
	Tenant         string
	Classification string
	// After is how long values are kept, counted from when their data key
	// stopped taking new writes.
	After  time.Duration
	Action Action
}

// Name identifies the rule in erasure records and log events, e.g.
// "acme/pii:shred-after-30d".
func (r Rule) Name() string {
	d := strconv.FormatInt(int64(r.After/(24*time.Hour)), 10) + "d"
	if r.After%(24*time.Hour) != 0 {
		d = r.After.String()
	}
	return r.Tenant + "/" + r.Classification + ":" + string(r.Action) + "-after-" + d
}

// Erasure is one data key whose values a rule archived or shredded.
type Erasure struct {
	KeyID          string
	Tenant         string
	Classification string
	Action         Action
	Policy         string
	At             time.Time
	// Values is how many values the key held when erased.
	Values int
	// Logged is set once the erasure is recorded in the log, at LogIndex.
	Logged   bool
	LogIndex uint64
}

// ApplyRetention retires data keys older than RotateEvery, then archives
// or shreds every retired key whose tenant and classification have a rule
// and whose retirement is older than the rule's After. It returns the
// erasures it made. The keyring is written before any ciphertext is
// deleted: once a shred is recorded the key is gone, whatever happens next.
func (v *Vault) ApplyRetention(ctx context.Context, rules []Rule) ([]Erasure, error) {
	now := v.cfg.Now()
	if err := v.retireOld(now); err != nil {
		return nil, err
	}
	var out []Erasure
	for _, r := range rules {
		for _, id := range v.dueKeys(r, now) {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			e, err := v.erase(ctx, id, r, now)
			if err != nil {
				return out, err
			}
			v.cfg.Logger.Info("vault values erased", "key", e.KeyID, "action", e.Action, "policy", e.Policy, "values", e.Values)
			out = append(out, e)
		}
	}
	return out, nil
}

func (v *Vault) retireOld(now time.Time) error {
	if err := v.refresh(); err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := v.retireOldLocked(now)
		if errors.Is(err, ErrKeyringChanged) && attempt < keyringRetries {
			continue
		}
		return err
	}
}

func (v *Vault) retireOldLocked(now time.Time) error {
	next := *v.kr
	next.Keys = make([]*keyRecord, len(v.kr.Keys))
	changed := false
	for i, k := range v.kr.Keys {
		if k.State == stateActive && now.Sub(k.Created) >= v.cfg.RotateEvery {
			c := *k
			c.State, c.Retired = stateRetired, &now
			k, changed = &c, true
		}
		next.Keys[i] = k
	}
	if !changed {
		return nil
	}
	return v.putKeyringLocked(&next)
}

func (v *Vault) dueKeys(r Rule, now time.Time) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var ids []string
	for _, k := range v.kr.Keys {
		if k.Tenant == r.Tenant && k.Classification == r.Classification && k.State == stateRetired && !now.Before(k.Retired.Add(r.After)) {
			ids = append(ids, k.ID)
		}
	}
	return ids
}

func (v *Vault) erase(ctx context.Context, id string, r Rule, now time.Time) (Erasure, error) {
	n, err := v.countValues(id)
	if err != nil {
		return Erasure{}, err
	}
	if r.Action == ActionArchive {
		if err := v.archive(id); err != nil {
			return Erasure{}, err
		}
	}
	var e Erasure
	err = v.updateKey(id, func(k *keyRecord) {
		if k.ErasedAt != nil {
			// Another process sharing the store erased it first.
			e = erasureOf(k)
			return
		}
		k.State = stateShredded
		if r.Action == ActionArchive {
			k.State = stateArchived
		} else {
			k.Wrapped = nil
		}
		k.ErasedAt, k.Policy, k.Values = &now, r.Name(), n
		e = erasureOf(k)
	})
	if err != nil {
		return Erasure{}, err
	}
	if r.Action == ActionShred {
		v.mu.Lock()
		delete(v.aeads, id)
		v.mu.Unlock()
	}
	if _, err := v.dropValues(id); err != nil {
		return Erasure{}, err
	}
	return e, nil
}

func erasureOf(k *keyRecord) Erasure {
	return Erasure{KeyID: k.ID, Tenant: k.Tenant, Classification: k.Classification, Action: actionOf(k.State),
		Policy: k.Policy, At: *k.ErasedAt, Values: k.Values, Logged: k.Logged, LogIndex: k.LogIndex}
}

// updateKey applies f to a copy of key id and writes the keyring.
func (v *Vault) updateKey(id string, f func(*keyRecord)) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for attempt := 0; ; attempt++ {
		err := v.updateKeyLocked(id, f)
		if errors.Is(err, ErrKeyringChanged) && attempt < keyringRetries {
			continue
		}
		return err
	}
}

func (v *Vault) updateKeyLocked(id string, f func(*keyRecord)) error {
	next := *v.kr
	next.Keys = make([]*keyRecord, len(v.kr.Keys))
	found := false
	for i, k := range v.kr.Keys {
		if k.ID == id {
			c := *k
			f(&c)
			k, found = &c, true
		}
		next.Keys[i] = k
	}
	if !found {
		return fmt.Errorf("vault: no data key %s", id)
	}
	return v.putKeyringLocked(&next)
}

// Erasures lists every erasure made so far, logged or not.
func (v *Vault) Erasures() []Erasure {
	if err := v.refresh(); err != nil {
		v.cfg.Logger.Warn("vault: couldn't reload the keyring; listing the one held", "err", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []Erasure
	for _, k := range v.kr.Keys {
		if k.ErasedAt != nil {
			out = append(out, erasureOf(k))
		}
	}
	return out
}

// MarkLogged records that the erasure of key id is in the log at index.
func (v *Vault) MarkLogged(id string, index uint64) error {
	return v.updateKey(id, func(k *keyRecord) { k.Logged, k.LogIndex = true, index })
}

func (v *Vault) countValues(id string) (int, error) {
	n := 0
	err := v.st.Scan(context.Background(), byKeyPrefix(id), func(_, _ []byte) error { n++; return nil })
	return n, err
}

// archive appends every value of key id, as stored (encrypted), to
// Dir/archive/<key id>.values and syncs it: records of a 4-byte length
// and the store key, then a 4-byte length and the stored record.
func (v *Vault) archive(id string) error {
	dir := filepath.Join(v.cfg.Dir, "archive")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("couldn't create vault archive: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, url.PathEscape(id)+".values"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't create vault archive: %w", err)
	}
	defer f.Close()
	p := byKeyPrefix(id)
	ctx := context.Background()
	var buf []byte
	err = v.st.Scan(ctx, p, func(key, _ []byte) error {
		vk := key[len(p):]
		rec, ok, err := v.st.Get(ctx, vk)
		if err != nil || !ok {
			return fmt.Errorf("couldn't read value to archive: %w (present: %v)", err, ok)
		}
		buf = binary.BigEndian.AppendUint32(buf[:0], uint32(len(vk)))
		buf = append(buf, vk...)
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(rec)))
		buf = append(buf, rec...)
		if _, err := f.Write(buf); err != nil {
			return fmt.Errorf("couldn't write vault archive: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("couldn't sync vault archive: %w", err)
	}
	return atomicfile.SyncDir(dir)
}

// dropValues deletes every stored value of key id and compacts the ranges
// they were in, so the ciphertexts leave the store's files too.
func (v *Vault) dropValues(id string) (int, error) {
	p := byKeyPrefix(id)
	ctx := context.Background()
	var ops []Op
	n := 0
	var lo, hi []byte
	err := v.st.Scan(ctx, p, func(key, _ []byte) error {
		vk := append([]byte(nil), key[len(p):]...)
		if lo == nil || string(vk) < string(lo) {
			lo = vk
		}
		if string(vk) > string(hi) {
			hi = vk
		}
		ops = append(ops, Op{Kind: OpDelete, Key: vk})
		n++
		return nil
	})
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, nil
	}
	ops = append(ops, Op{Kind: OpDeleteRange, Key: p, End: prefixEnd(p)})
	if err := v.st.Write(ctx, ops); err != nil {
		return 0, fmt.Errorf("couldn't delete erased values: %w", err)
	}
	if err := v.st.Reclaim(ctx, lo, append(hi, 0)); err != nil {
		return 0, err
	}
	if err := v.st.Reclaim(ctx, p, prefixEnd(p)); err != nil {
		return 0, err
	}
	return n, nil
}

// KeyInfo describes one data key, without its material.
type KeyInfo struct {
	ID, Tenant, Classification, State string
	Generation                        int
	Created                           time.Time
}

// Keys lists the data keys.
func (v *Vault) Keys() []KeyInfo {
	if err := v.refresh(); err != nil {
		v.cfg.Logger.Warn("vault: couldn't reload the keyring; listing the one held", "err", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]KeyInfo, len(v.kr.Keys))
	for i, k := range v.kr.Keys {
		out[i] = KeyInfo{ID: k.ID, Tenant: k.Tenant, Classification: k.Classification, State: k.State, Generation: k.Generation, Created: k.Created}
	}
	return out
}
