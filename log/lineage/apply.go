package lineage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"unsafe"

	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// txn is one indexing pass: the writes of a run of leaves, kept in memory
// until they are committed in one Batch with the new watermark and digest.
// Reads go through it, so every leaf sees the writes of the leaves before
// it. Its memory is bounded by the pass size.
type txn struct {
	ctx   context.Context
	store Store
	view  view        // the store's pass-long read view, if it has one
	br    batchReader // without a view: the store's batched reads, for prefetch
	// probed holds the store's answers to prefix probes prefetched in this
	// pass (any); the store does not change during a pass.
	probed map[string]bool
	log    *slog.Logger
	over   map[string]cell
	sum    sum
	counts [len(gapCodes)]int64
	at     []sizedSum // digests at multiples of 256 within the pass
	opened []Gap      // gaps opened in this pass, for logging and Options.OnGap
	cands  [][]byte   // candidate keys written in this pass
	// ids and outs are what this pass indexed, for the checks that would
	// otherwise scan the store and miss the pass's own writes: event ids
	// (tenant NUL id -> first leaf) and outputs (tenant NUL uri -> refs).
	ids  map[string]uint64
	outs map[string][]ref
	// knownLocs answers, without a read, for locations committed before
	// the pass; newLocs are those the pass adds.
	knownLocs *boundedSet
	newLocs   []string
	closed    int
	ebuf      []byte // elem's scratch
	bytes     int    // written so far, roughly
}

// gapCodes has one entry per GapKinds element.
var gapCodes = [...]byte{gapCodeParent, gapCodeSubject, gapCodeUnproduced, gapCodeNoStart, gapCodeFailed, gapCodeUndecodable}

type cell struct {
	v       []byte
	present bool
	dirty   bool
}

type sizedSum struct {
	size uint64
	sum  sum
}

// newTxn starts a pass; sizeHint is how many keys it will likely touch
// (growing the map of a pass's tens of thousands of keys step by step
// rehashes it over and over).
func newTxn(ctx context.Context, store Store, log *slog.Logger, s sum, counts [len(gapCodes)]int64, sizeHint int) *txn {
	return &txn{
		ctx: ctx, store: store, log: log, over: make(map[string]cell, sizeHint), sum: s, counts: counts,
		ids: map[string]uint64{}, outs: map[string][]ref{},
	}
}

func (t *txn) elem(k, v []byte) sum {
	// elementHash without its allocations: one scratch buffer, and
	// sha256.Sum256 rather than a hash.Hash the arguments escape into.
	b := append(t.ebuf[:0], digestElementDomain...)
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = append(append(b, k...), v...)
	t.ebuf = b
	d := sha256.Sum256(b)
	var s sum
	for i := range s {
		s[i] = binary.BigEndian.Uint64(d[24-8*i:])
	}
	return s
}

// get reads k as the pass sees it.
func (t *txn) get(k []byte) ([]byte, bool, error) {
	if c, ok := t.over[string(k)]; ok {
		return c.v, c.present, nil
	}
	var v []byte
	var err error
	if t.view != nil {
		v, err = t.view.get(k)
	} else {
		v, err = t.store.Get(t.ctx, k)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		t.over[string(k)] = cell{}
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	t.over[string(k)] = cell{v: v, present: true}
	return v, true, nil
}

// set stores v under k, keeping the digest.
func (t *txn) set(k, v []byte) error {
	old, ok, err := t.get(k)
	if err != nil {
		return err
	}
	if ok {
		if bytes.Equal(old, v) {
			return nil
		}
		t.sum.sub(t.elem(k, old))
	}
	t.sum.add(t.elem(k, v))
	t.over[string(k)] = cell{v: v, present: true, dirty: true}
	t.bytes += len(k) + len(v)
	return nil
}

// put stores v under a key that no earlier leaf can have written: one that
// holds this leaf's index. It saves set's read.
func (t *txn) put(k, v []byte) error {
	if _, ok := t.over[string(k)]; ok {
		return t.set(k, v)
	}
	t.sum.add(t.elem(k, v))
	t.over[string(k)] = cell{v: v, present: true, dirty: true}
	t.bytes += len(k) + len(v)
	return nil
}

// has reports whether k is stored.
func (t *txn) has(k []byte) (bool, error) {
	_, ok, err := t.get(k)
	return ok, err
}

// ensure stores k with an empty value unless it is already there.
func (t *txn) ensure(k []byte) error {
	ok, err := t.has(k)
	if err != nil || ok {
		return err
	}
	return t.set(k, nil)
}

func (t *txn) del(k []byte) error {
	old, ok, err := t.get(k)
	if err != nil || !ok {
		return err
	}
	t.sum.sub(t.elem(k, old))
	t.over[string(k)] = cell{dirty: true}
	return nil
}

// batch is everything the pass wrote, and the new watermark and digest.
func (t *txn) batch(watermark uint64) *Batch {
	b := &Batch{Ops: make([]Op, 0, len(t.over)+len(t.at)+3)}
	// In key order: pebble's memtable insert keeps a splice from one key to
	// the next, so sorted keys cost a short walk each instead of a search
	// from the top of the skiplist (a third of the indexer's CPU unsorted).
	keys := make([]string, 0, len(t.over))
	for k, c := range t.over {
		if c.dirty {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		c := t.over[k]
		// The store copies keys in Commit, before t.over goes: no need to
		// copy each one here too.
		kb := unsafe.Slice(unsafe.StringData(k), len(k))
		switch {
		case !c.dirty:
		case c.present:
			b.Set(kb, c.v)
		default:
			b.Delete(kb)
		}
	}
	for _, a := range t.at {
		b.Set(newKey(keyMeta).b(metaDigestAt).u64(a.size), a.sum.bytes())
	}
	b.Set(metaKey(metaWatermark), binary.BigEndian.AppendUint64(nil, watermark))
	b.Set(metaKey(metaSum), t.sum.bytes())
	b.Set(metaKey(metaFormat), binary.BigEndian.AppendUint64(nil, formatVersion))
	return b
}

func metaKey(c byte) []byte { return newKey(keyMeta).b(c) }

// openGap records a gap and counts it.
func (t *txn) openGap(k key, code byte, g Gap, leaves ...uint64) error {
	if _, ok, err := t.get(k); err != nil || ok {
		return err
	}
	if err := t.set(k, gapValue(code, g.Missing, leaves...)); err != nil {
		return err
	}
	if err := t.count(code, 1); err != nil {
		return err
	}
	g.Kind = GapKinds[code-1]
	g.Leaves = leaves
	g.Detail = gapDetail(g)
	t.opened = append(t.opened, g)
	return nil
}

// count adjusts the open-gap counter of a kind. The counters are index
// data, kept per leaf like the rest, so digests within a pass hold.
func (t *txn) count(code byte, delta int64) error {
	t.counts[code-1] += delta
	return t.set(newKey(keyGapCount).b(code), binary.BigEndian.AppendUint64(nil, uint64(t.counts[code-1])))
}

func (t *txn) closeGap(k key, code byte) error {
	ok, err := t.has(k)
	if err != nil || !ok {
		return err
	}
	t.closed++
	if err := t.count(code, -1); err != nil {
		return err
	}
	return t.del(k)
}

// decoded is a leaf made ready for indexing: its record and the record's
// stored form, or why the leaf does not decode. Making it needs nothing of
// the index, so it can run ahead of indexing on another goroutine.
type decoded struct {
	rec *record
	enc []byte // rec.encode()
	err error
}

func decodeLeaf(idx uint64, leaf []byte) decoded {
	le, err := event.DecodeLeaf(leaf)
	if err != nil {
		return decoded{err: err}
	}
	r := recordOf(le, idx)
	return decoded{rec: r, enc: r.encode()}
}

// applyDecoded indexes the leaf at idx, decoded by decodeLeaf. It fails
// only when the store does; a leaf that does not decode is recorded as such
// and skipped.
func (t *txn) applyDecoded(idx uint64, d decoded) error {
	if err := d.err; err != nil {
		t.log.Error("lineage: leaf does not decode; skipping it", "index", idx, "err", err)
		if err := t.put(newKey(keyUndecoded).u64(idx), nil); err != nil {
			return err
		}
		if err := t.count(gapCodeUndecodable, 1); err != nil {
			return err
		}
		t.opened = append(t.opened, Gap{Kind: GapUndecodableLeaf, Leaves: []uint64{idx}, Detail: gapDetail(Gap{Kind: GapUndecodableLeaf})})
		return nil
	}
	return t.applyRecord(d.rec, d.enc)
}

// applyRecord indexes r, whose stored form (r.encode()) is stored. What it
// reads from the store, prefetch guesses: keep the two in step.
func (t *txn) applyRecord(r *record, stored []byte) error {
	idx, tenant := r.Leaf, r.Tenant
	if err := t.put(newKey(keyEvent).u64(idx), stored); err != nil {
		return err
	}
	op := []byte{byte(r.Op)}

	// Event id. Every leaf is indexed under its id; lookups take the
	// first (the ledger never logs an id twice, but the index must not
	// depend on it).
	if err := t.put(keyAt(keyEventID, idx, tenant, r.EventID), nil); err != nil {
		return err
	}
	if _, ok := t.ids[tenant+"\x00"+r.EventID]; !ok {
		t.ids[tenant+"\x00"+r.EventID] = idx
	}
	if t.counts[gapCodeSubject-1] > 0 {
		if err := t.resolveSubject(tenant, r.EventID); err != nil {
			return err
		}
	}

	if r.RunID != "" {
		if err := t.put(keyAt(keyRunEvent, idx, tenant, r.RunID), op); err != nil {
			return err
		}
		if err := t.updateRun(r); err != nil {
			return err
		}
		if r.WorkflowID != "" {
			// The runs of a workflow: the first leaf naming both.
			wk := newKey(keyWfRun).str(tenant).str(r.WorkflowID).str(r.RunID)
			if ok, err := t.has(wk); err != nil {
				return err
			} else if !ok {
				if err := t.set(wk, binary.BigEndian.AppendUint64(nil, idx)); err != nil {
					return err
				}
			}
		}
	}

	// Secondary indexes for Find.
	for _, k := range []key{
		keyAt(keyWorkflow, idx, tenant, r.WorkflowID),
		keyAt(keyActor, idx, tenant, r.ActorID),
		newKey(keyOperation).str(tenant).b(byte(r.Op)).u64(idx),
		newKey(keyTime).str(tenant).u64(uint64(r.EventTime)).u64(idx),
	} {
		if err := t.put(k, nil); err != nil {
			return err
		}
	}
	if r.StepID != "" {
		if err := t.put(keyAt(keyStep, idx, tenant, r.StepID), nil); err != nil {
			return err
		}
	}
	var classes []string
	for _, as := range [2][]assetRef{r.Inputs, r.Outputs} {
		for _, a := range as {
			if a.Classification != "" && !slices.Contains(classes, a.Classification) {
				classes = append(classes, a.Classification)
			}
		}
	}
	for _, c := range classes {
		if err := t.put(keyAt(keyClass, idx, tenant, c), nil); err != nil {
			return err
		}
	}

	// Approvals and overrides.
	for _, s := range dedupeStrings(r.Subjects) {
		if err := t.put(keyAt(keySubject, idx, tenant, s), op); err != nil {
			return err
		}
		if err := t.ensure(newKey(keyActedOn).str(tenant).str(s)); err != nil {
			return err
		}
		ok, err := t.eventExists(tenant, s)
		if err != nil {
			return err
		}
		if !ok {
			if err := t.waitSubject(r, s); err != nil {
				return err
			}
		}
	}

	// Inputs, then outputs: an event that writes the first version of an
	// asset it also reads does not make its own input look unproduced.
	uses := map[string][]byte{} // uri -> history value
	for _, as := range [2][]assetRef{r.Inputs, r.Outputs} {
		for _, a := range as {
			if a.Version == "" {
				if err := t.ensure(newKey(keyUnversion).str(tenant).str(a.URI)); err != nil {
					return err
				}
			}
		}
	}
	for _, rf := range distinctRefs(r.Inputs) {
		if err := t.put(keyAt(keyInput, idx, tenant, rf.URI, rf.Version, rf.RecordKey), nil); err != nil {
			return err
		}
		if len(r.Outputs) == 0 && r.RunID != "" {
			if err := t.put(keyAt(keyObserver, idx, tenant, r.RunID, rf.URI, rf.Version, rf.RecordKey), nil); err != nil {
				return err
			}
		}
		uses[rf.URI] = enc(uses[rf.URI]).uv(uint64(RoleInput)).str(rf.Version).str(rf.RecordKey)
		if err := t.checkProduced(r, rf); err != nil {
			return err
		}
	}
	for _, rf := range distinctRefs(r.Outputs) {
		if err := t.put(keyAt(keyOutput, idx, tenant, rf.URI, rf.Version, rf.RecordKey), nil); err != nil {
			return err
		}
		uses[rf.URI] = enc(uses[rf.URI]).uv(uint64(RoleOutput)).str(rf.Version).str(rf.RecordKey)
		if err := t.produced(tenant, rf); err != nil {
			return err
		}
	}
	for uri, v := range uses {
		if err := t.put(keyAt(keyHistory, idx, tenant, uri), v); err != nil {
			return err
		}
	}
	return nil
}

func dedupeStrings(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func distinctRefs(as []assetRef) []ref {
	var out []ref
	for _, a := range as {
		if r := a.ref(); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// runState is what the index keeps per run (key R tenant run).
type runState struct {
	First      uint64 // leaf of the run's first event
	Started    bool
	Completed  bool
	Failed     bool
	Parent     string // the first parent_run_id any of its events named
	ParentLeaf uint64
}

func (s runState) encode() []byte {
	var flags uint64
	if s.Started {
		flags |= 1
	}
	if s.Completed {
		flags |= 2
	}
	if s.Failed {
		flags |= 4
	}
	return enc(nil).uv(s.First).uv(flags).str(s.Parent).uv(s.ParentLeaf)
}

func decodeRunState(v []byte) (runState, error) {
	d := dec{b: v}
	s := runState{First: d.uv()}
	flags := d.uv()
	s.Parent = d.str()
	s.ParentLeaf = d.uv()
	if d.err != nil || len(d.b) != 0 {
		return runState{}, errBadValue
	}
	s.Started, s.Completed, s.Failed = flags&1 != 0, flags&2 != 0, flags&4 != 0
	return s, nil
}

func (t *txn) updateRun(r *record) error {
	tenant, run, idx := r.Tenant, r.RunID, r.Leaf
	rk := newKey(keyRunMeta).str(tenant).str(run)
	v, ok, err := t.get(rk)
	if err != nil {
		return err
	}
	var s runState
	if ok {
		if s, err = decodeRunState(v); err != nil {
			return fmt.Errorf("run state of %q: %w", run, err)
		}
	} else {
		s.First = idx
		// Runs that named this one as their parent were waiting for it.
		if t.counts[gapCodeParent-1] > 0 {
			if err := t.resolveParent(tenant, run); err != nil {
				return err
			}
		}
		if r.Op != provlogv1.Operation_OPERATION_RUN_START {
			if err := t.openGap(gapKey(tenant, run, gapCodeNoStart), gapCodeNoStart, Gap{Tenant: tenant, RunID: run}, idx); err != nil {
				return err
			}
		}
	}
	switch r.Op {
	case provlogv1.Operation_OPERATION_RUN_START:
		if !s.Started {
			s.Started = true
			if ok { // the run began without its start
				if err := t.closeGap(gapKey(tenant, run, gapCodeNoStart), gapCodeNoStart); err != nil {
					return err
				}
			}
		}
	case provlogv1.Operation_OPERATION_RUN_COMPLETE:
		if !s.Completed {
			s.Completed = true
			if s.Failed {
				if err := t.closeGap(gapKey(tenant, run, gapCodeFailed), gapCodeFailed); err != nil {
					return err
				}
			}
		}
	case provlogv1.Operation_OPERATION_RUN_FAIL:
		if !s.Failed {
			s.Failed = true
			if !s.Completed {
				if err := t.openGap(gapKey(tenant, run, gapCodeFailed), gapCodeFailed, Gap{Tenant: tenant, RunID: run}, idx); err != nil {
					return err
				}
			}
		}
	}
	if s.Parent == "" && r.ParentRunID != "" {
		s.Parent, s.ParentLeaf = r.ParentRunID, idx
		if err := t.checkParent(r); err != nil {
			return err
		}
	}
	return t.set(rk, s.encode())
}

// checkParent opens a missing-parent gap when the run's parent has no event
// yet, and registers the run as waiting for it.
func (t *txn) checkParent(r *record) error {
	tenant, parent := r.Tenant, r.ParentRunID
	if parent == r.RunID {
		return nil
	}
	ok, err := t.has(newKey(keyRunMeta).str(tenant).str(parent))
	if err != nil || ok {
		return err
	}
	gk := gapKey(tenant, r.RunID, gapCodeParent).str(parent)
	if err := t.openGap(gk, gapCodeParent, Gap{Tenant: tenant, RunID: r.RunID, Missing: parent}, r.Leaf); err != nil {
		return err
	}
	wk := newKey(keyWait).b(waitRun).str(tenant).str(parent)
	v, _, err := t.get(wk)
	if err != nil {
		return err
	}
	return t.set(wk, enc(slices.Clone(v)).str(r.RunID))
}

func (t *txn) resolveParent(tenant, run string) error {
	wk := newKey(keyWait).b(waitRun).str(tenant).str(run)
	v, ok, err := t.get(wk)
	if err != nil || !ok {
		return err
	}
	d := dec{b: v}
	for len(d.b) > 0 && d.err == nil {
		child := d.str()
		if err := t.closeGap(gapKey(tenant, child, gapCodeParent).str(run), gapCodeParent); err != nil {
			return err
		}
	}
	if d.err != nil {
		return fmt.Errorf("runs waiting for %q: %w", run, d.err)
	}
	return t.del(wk)
}

func (t *txn) waitSubject(r *record, subject string) error {
	tenant := r.Tenant
	gk := gapKey(tenant, r.RunID, gapCodeSubject).u64(r.Leaf).str(subject)
	if err := t.openGap(gk, gapCodeSubject, Gap{Tenant: tenant, RunID: r.RunID, Missing: subject}, r.Leaf); err != nil {
		return err
	}
	wk := newKey(keyWait).b(waitSubject).str(tenant).str(subject)
	v, _, err := t.get(wk)
	if err != nil {
		return err
	}
	return t.set(wk, enc(slices.Clone(v)).uv(r.Leaf).str(r.RunID))
}

func (t *txn) resolveSubject(tenant, id string) error {
	wk := newKey(keyWait).b(waitSubject).str(tenant).str(id)
	v, ok, err := t.get(wk)
	if err != nil || !ok {
		return err
	}
	d := dec{b: v}
	for len(d.b) > 0 && d.err == nil {
		leaf, run := d.uv(), d.str()
		if err := t.closeGap(gapKey(tenant, run, gapCodeSubject).u64(leaf).str(id), gapCodeSubject); err != nil {
			return err
		}
	}
	if d.err != nil {
		return fmt.Errorf("approvals waiting for %q: %w", id, d.err)
	}
	return t.del(wk)
}

// eventExists reports whether the tenant's log holds an event with id, in
// this pass or before.
func (t *txn) eventExists(tenant, id string) (bool, error) {
	if _, ok := t.ids[tenant+"\x00"+id]; ok {
		return true, nil
	}
	return t.any(newKey(keyEventID).str(tenant).str(id))
}

// any reports whether the store holds a key with prefix p.
func (t *txn) any(p key) (bool, error) {
	if ok, known := t.probed[string(p)]; known {
		return ok, nil
	}
	if t.view != nil {
		return t.view.any(p)
	}
	found := false
	err := t.store.Scan(t.ctx, p, prefixEnd(p), false, func(_, _ []byte) error {
		found = true
		return ErrStopScan
	})
	return found, err
}

// hasProducer reports whether an event produced an asset matching rf, in
// this pass or before.
func (t *txn) hasProducer(tenant string, rf ref) (bool, error) {
	for _, o := range t.outs[tenant+"\x00"+rf.URI] {
		if o.matches(rf) {
			return true, nil
		}
	}
	prefixes, base := producerPrefixes(tenant, rf)
	if prefixes == nil {
		// Any version: scan them all for the record key or none.
		found := false
		err := t.store.Scan(t.ctx, base, prefixEnd(base), false, func(k, _ []byte) error {
			kr := keyReader{b: k[len(base):]}
			kr.str()
			if rk := kr.str(); kr.err == nil && (rk == "" || rk == rf.RecordKey) {
				found = true
				return ErrStopScan
			}
			return nil
		})
		return found, err
	}
	for _, p := range prefixes {
		if ok, err := t.any(p); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// producerPrefixes are the output-key prefixes under which a producer of
// rf would be stored: one is enough. They are nil when rf names a record
// key but no version; hasProducer then scans base, every output of the URI.
func producerPrefixes(tenant string, rf ref) (prefixes []key, base key) {
	base = newKey(keyOutput).str(tenant).str(rf.URI)
	switch {
	case rf.Version != "" && rf.RecordKey != "":
		return []key{base.str(rf.Version).str(rf.RecordKey), base.str(rf.Version).str(""), base.str("").str(rf.RecordKey), base.str("").str("")}, base
	case rf.Version != "":
		return []key{base.str(rf.Version), base.str("")}, base
	case rf.RecordKey != "":
		return nil, base
	default:
		return []key{base}, base
	}
}

// locationKnown reports whether something at loc was produced.
func (t *txn) locationKnown(tenant, loc string) (bool, error) {
	lk := newKey(keyLocation).str(tenant).str(loc)
	if t.knownLocs != nil && t.knownLocs.has(string(lk)) {
		return true, nil
	}
	ok, err := t.has(lk)
	if ok && t.knownLocs != nil {
		if c := t.over[string(lk)]; !c.dirty {
			t.knownLocs.add(string(lk)) // committed before this pass
		}
	}
	return ok, err
}

// locationKey is the key that says something at uri's location was
// produced.
func locationKey(tenant, uri string) key { return newKey(keyLocation).str(tenant).str(location(uri)) }

// location is the part of a URI that names the system holding the asset:
// up to the first "/" after "://" ("postgres://warehouse",
// "s3://acme-staging"), or the whole URI when it has no "://".
func location(uri string) string {
	i := strings.Index(uri, "://")
	if i < 0 {
		return uri
	}
	if j := strings.IndexByte(uri[i+3:], '/'); j >= 0 {
		return uri[:i+3+j]
	}
	return uri
}

// produced records that rf has a producer, turns the unproduced inputs of
// its location into gaps if it is the location's first producer, and closes
// the unproduced-input gaps it satisfies.
func (t *txn) produced(tenant string, rf ref) error {
	t.outs[tenant+"\x00"+rf.URI] = append(t.outs[tenant+"\x00"+rf.URI], rf)
	loc := location(rf.URI)
	switch ok, err := t.locationKnown(tenant, loc); {
	case err != nil:
		return err
	case !ok:
		lk := newKey(keyLocation).str(tenant).str(loc)
		if err := t.set(lk, nil); err != nil {
			return err
		}
		t.newLocs = append(t.newLocs, string(lk))
		if err := t.promote(tenant, loc, rf); err != nil {
			return err
		}
	}
	if t.counts[gapCodeUnproduced-1] == 0 {
		return nil
	}
	wk := newKey(keyWait).b(waitProducer).str(tenant).str(rf.URI)
	v, ok, err := t.get(wk)
	if err != nil || !ok {
		return err
	}
	var keep enc
	d := dec{b: v}
	for len(d.b) > 0 && d.err == nil {
		w := ref{URI: rf.URI, Version: d.str(), RecordKey: d.str()}
		leaf, run := d.uv(), d.str()
		if d.err != nil {
			break
		}
		if !w.matches(rf) {
			keep = keep.str(w.Version).str(w.RecordKey).uv(leaf).str(run)
			continue
		}
		gk := gapKey(tenant, run, gapCodeUnproduced).u64(leaf).str(w.URI).str(w.Version).str(w.RecordKey)
		if err := t.closeGap(gk, gapCodeUnproduced); err != nil {
			return err
		}
	}
	if d.err != nil {
		return fmt.Errorf("inputs waiting for a producer of %q: %w", rf.URI, d.err)
	}
	if len(keep) == 0 {
		return t.del(wk)
	}
	return t.set(wk, keep)
}

// candidateKey is K tenant location uri version record_key leaf: an input
// with no producer, read from a location nothing in the log had written to
// when it was indexed. Its value is the run.
func candidateKey(tenant, loc string, rf ref, leaf uint64) key {
	return keyAt(keyCandidate, leaf, tenant, loc, rf.URI, rf.Version, rf.RecordKey)
}

// promote handles the first producer of a location: every input read from
// there without a producer (its candidates) becomes an unproduced-input
// gap, unless p itself produced it.
func (t *txn) promote(tenant, loc string, p ref) error {
	prefix := newKey(keyCandidate).str(tenant).str(loc)
	var cands [][]byte
	err := t.store.Scan(t.ctx, prefix, prefixEnd(prefix), false, func(k, _ []byte) error {
		cands = append(cands, slices.Clone(k))
		return nil
	})
	if err != nil {
		return fmt.Errorf("inputs read from %q: %w", loc, err)
	}
	for _, k := range t.cands {
		if bytes.HasPrefix(k, prefix) {
			cands = append(cands, k)
		}
	}
	// In key order, whichever of them this pass wrote: the gaps' waiting
	// lists must not depend on where passes begin and end.
	slices.SortFunc(cands, bytes.Compare)
	for _, ck := range cands {
		v, ok, err := t.get(ck) // the pass may have deleted it
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		kr := keyReader{b: ck[len(prefix):]}
		rf := ref{URI: kr.str(), Version: kr.str(), RecordKey: kr.str()}
		leaf := kr.u64()
		if kr.err != nil || len(kr.b) != 0 {
			return fmt.Errorf("candidate key %x: %w", ck, errBadKey)
		}
		if err := t.del(ck); err != nil {
			return err
		}
		if rf.matches(p) {
			continue
		}
		if err := t.openUnproduced(tenant, string(v), leaf, rf); err != nil {
			return err
		}
	}
	return nil
}

// checkProduced records an input of r that no event produced: an
// unproduced-input gap when the log already has a producer at its location,
// otherwise a candidate that the location's first producer will judge.
func (t *txn) checkProduced(r *record, rf ref) error {
	tenant := r.Tenant
	loc := location(rf.URI)
	known, err := t.locationKnown(tenant, loc)
	if err != nil {
		return err
	}
	if !known {
		k := candidateKey(tenant, loc, rf, r.Leaf)
		t.cands = append(t.cands, k)
		return t.put(k, []byte(r.RunID))
	}
	if ok, err := t.hasProducer(tenant, rf); err != nil || ok {
		return err
	}
	return t.openUnproduced(tenant, r.RunID, r.Leaf, rf)
}

func (t *txn) openUnproduced(tenant, run string, leaf uint64, rf ref) error {
	gk := gapKey(tenant, run, gapCodeUnproduced).u64(leaf).str(rf.URI).str(rf.Version).str(rf.RecordKey)
	if err := t.openGap(gk, gapCodeUnproduced, Gap{Tenant: tenant, RunID: run, Missing: refString(rf)}, leaf); err != nil {
		return err
	}
	wk := newKey(keyWait).b(waitProducer).str(tenant).str(rf.URI)
	v, _, err := t.get(wk)
	if err != nil {
		return err
	}
	return t.set(wk, enc(slices.Clone(v)).str(rf.Version).str(rf.RecordKey).uv(leaf).str(run))
}

// prefetch reads ahead, with the store's batched reads (batchReader), what
// applying ds will read from the store, as far as the records tell: one
// round trip for keys, one for the prefix probes that need the keys'
// answers (whether an input's location is known). Values and absences go
// into t.over and probe answers into t.probed, as get and any would keep
// them; keys the pass already holds are not read again. The store does
// not change during a pass, so what is prefetched is what a read would
// give later: a wrong guess costs a read then, never a wrong answer. Reads
// that depend on values read (waiting lists, candidates) are left to get.
func (t *txn) prefetch(ds []decoded) error {
	if t.br == nil {
		return nil
	}
	var keys [][]byte
	seen := map[string]bool{}
	want := func(k key) {
		if _, ok := t.over[string(k)]; !ok && !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	for _, code := range gapCodes { // count; held for the pass once read
		want(newKey(keyGapCount).b(code))
	}
	for _, d := range ds {
		r := d.rec
		if r == nil {
			continue
		}
		tenant, run := r.Tenant, r.RunID
		if t.counts[gapCodeSubject-1] > 0 { // resolveSubject
			want(newKey(keyWait).b(waitSubject).str(tenant).str(r.EventID))
		}
		if run != "" { // updateRun
			want(newKey(keyRunMeta).str(tenant).str(run))
			want(gapKey(tenant, run, gapCodeNoStart))
			if t.counts[gapCodeParent-1] > 0 {
				want(newKey(keyWait).b(waitRun).str(tenant).str(run))
			}
			if r.Op == provlogv1.Operation_OPERATION_RUN_FAIL || r.Op == provlogv1.Operation_OPERATION_RUN_COMPLETE {
				want(gapKey(tenant, run, gapCodeFailed))
			}
			if r.ParentRunID != "" && r.ParentRunID != run { // checkParent
				want(newKey(keyRunMeta).str(tenant).str(r.ParentRunID))
			}
			if r.WorkflowID != "" {
				want(newKey(keyWfRun).str(tenant).str(r.WorkflowID).str(run))
			}
		}
		for _, sub := range dedupeStrings(r.Subjects) { // ensure, waitSubject
			want(newKey(keyActedOn).str(tenant).str(sub))
			want(gapKey(tenant, run, gapCodeSubject).u64(r.Leaf).str(sub))
			want(newKey(keyWait).b(waitSubject).str(tenant).str(sub))
		}
		for _, as := range [2][]assetRef{r.Inputs, r.Outputs} {
			for _, a := range as {
				if a.Version == "" {
					want(newKey(keyUnversion).str(tenant).str(a.URI))
				}
			}
		}
		for _, rf := range distinctRefs(r.Inputs) { // checkProduced, openUnproduced
			if lk := locationKey(tenant, rf.URI); !t.knownLocs.has(string(lk)) {
				want(lk)
			}
			want(gapKey(tenant, run, gapCodeUnproduced).u64(r.Leaf).str(rf.URI).str(rf.Version).str(rf.RecordKey))
			want(newKey(keyWait).b(waitProducer).str(tenant).str(rf.URI))
		}
		for _, rf := range distinctRefs(r.Outputs) { // produced
			if lk := locationKey(tenant, rf.URI); !t.knownLocs.has(string(lk)) {
				want(lk)
			}
			want(newKey(keyWait).b(waitProducer).str(tenant).str(rf.URI))
		}
	}
	got := make(map[string][]byte, len(keys))
	if len(keys) > 0 {
		if err := t.br.getMany(t.ctx, keys, func(k, v []byte) { got[string(k)] = v }); err != nil {
			return err
		}
	}
	for _, k := range keys {
		v, ok := got[string(k)]
		if ok && v == nil {
			v = []byte{}
		}
		t.over[string(k)] = cell{v: v, present: ok}
	}

	// Prefix probes: events ids named as subjects, and producers of
	// inputs from known locations, unless the pass has them by then.
	var prefixes [][]byte
	clear(seen)
	probe := func(p key) {
		if _, ok := t.probed[string(p)]; !ok && !seen[string(p)] {
			seen[string(p)] = true
			prefixes = append(prefixes, p)
		}
	}
	ids := map[string]bool{}
	outs := map[string][]ref{}
	locs := map[string]bool{}
	for _, d := range ds {
		r := d.rec
		if r == nil {
			continue
		}
		tenant := r.Tenant
		ids[tenant+"\x00"+r.EventID] = true
		for _, sub := range dedupeStrings(r.Subjects) { // eventExists
			if _, ok := t.ids[tenant+"\x00"+sub]; !ok && !ids[tenant+"\x00"+sub] {
				probe(newKey(keyEventID).str(tenant).str(sub))
			}
		}
		for _, rf := range distinctRefs(r.Inputs) { // hasProducer
			lk := string(locationKey(tenant, rf.URI))
			if !t.knownLocs.has(lk) && !t.over[lk].present && !locs[lk] {
				continue // a candidate
			}
			if slices.ContainsFunc(t.outs[tenant+"\x00"+rf.URI], rf.matches) || slices.ContainsFunc(outs[tenant+"\x00"+rf.URI], rf.matches) {
				continue
			}
			ps, _ := producerPrefixes(tenant, rf)
			for _, p := range ps {
				probe(p)
			}
		}
		for _, rf := range distinctRefs(r.Outputs) {
			outs[tenant+"\x00"+rf.URI] = append(outs[tenant+"\x00"+rf.URI], rf)
			locs[string(locationKey(tenant, rf.URI))] = true
		}
	}
	if len(prefixes) == 0 {
		return nil
	}
	found, err := t.br.anyMany(t.ctx, prefixes)
	if err != nil {
		return err
	}
	if t.probed == nil {
		t.probed = make(map[string]bool, len(prefixes))
	}
	for i, p := range prefixes {
		t.probed[string(p)] = found[i]
	}
	return nil
}
