package ledger

import "hash/maphash"

// LookupEvent returns the index of the event (tenant, eventID) when it is
// sequenced in the log (published or not); ok is false when it is not.
func (l *Ledger) LookupEvent(tenant, eventID string) (index uint64, ok bool, err error) {
	key := dedupeKey(tenant, eventID)
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	r, ok := sh.recent[key]
	sh.mu.Unlock()
	if ok {
		return r.Index, true, nil
	}
	r, ok, err = l.store.Lookup(key)
	if err != nil || !ok {
		return 0, false, err
	}
	return r.Index, true, nil
}
