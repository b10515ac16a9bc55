package lineage

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"
)

// Page tokens are opaque to clients: base64url of a version byte, the kind
// of listing, and the position to continue from (a leaf index, or the rest
// of the last key read).
const (
	tokenVersion = 1
	tokenHistory = 'h'
	tokenFind    = 'f'
	tokenGaps    = 'g'
)

func encodeToken(kind byte, pos []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{tokenVersion, kind}, pos...))
}

func decodeToken(tok string, kind byte) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 || b[0] != tokenVersion || b[1] != kind {
		return nil, &QueryError{Field: "page_token", Reason: "not a token from this listing"}
	}
	return b[2:], nil
}

// pageLimit clamps a page size for listings that do not validate it.
func pageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

func checkLimit(limit int) (int, error) {
	switch {
	case limit < 0 || limit > MaxPageSize:
		return 0, &QueryError{Field: "limit", Reason: fmt.Sprintf("must be 1..%d (0: %d)", MaxPageSize, DefaultPageSize)}
	case limit == 0:
		return DefaultPageSize, nil
	}
	return limit, nil
}

// scanBudget bounds the keys one page may read past non-matching entries;
// a page that runs out of it is short, and its token continues the scan.
func scanBudget(limit int) int { return 64*limit + 4096 }

// History returns the events that touched an asset, newest first (by leaf
// index), a page at a time. A page may hold fewer than Limit entries and
// still have a NextPageToken, when the scan bound of a page ran out among
// events of the URI that do not match the version or record key asked for.
func (ix *Index) History(ctx context.Context, q HistoryQuery) (*HistoryPage, error) {
	switch {
	case q.Tenant == "":
		return nil, &QueryError{Field: "tenant", Reason: "required"}
	case q.URI == "":
		return nil, &QueryError{Field: "uri", Reason: "required"}
	}
	limit, err := checkLimit(q.Limit)
	if err != nil {
		return nil, err
	}
	size, err := ix.answerSize(q.TreeSize)
	if err != nil {
		return nil, err
	}
	end := size
	if q.PageToken != "" {
		pos, err := decodeToken(q.PageToken, tokenHistory)
		if err != nil {
			return nil, err
		}
		if len(pos) != 8 {
			return nil, &QueryError{Field: "page_token", Reason: "not a token from this listing"}
		}
		end = min(end, binary.BigEndian.Uint64(pos))
	}
	want := ref{URI: q.URI, Version: q.Version, RecordKey: q.RecordKey}
	p := newKey(keyHistory).str(q.Tenant).str(q.URI)
	page := &HistoryPage{TreeSize: size}
	budget := scanBudget(limit)
	err = ix.store.Scan(ctx, p, p.u64(end), true, func(k, v []byte) error {
		if len(k) != len(p)+8 {
			return fmt.Errorf("history key %x: %w", k, errBadKey)
		}
		leaf := binary.BigEndian.Uint64(k[len(p):])
		if len(page.Entries) == limit || budget == 0 {
			page.NextPageToken = encodeToken(tokenHistory, binary.BigEndian.AppendUint64(nil, leaf+1))
			return ErrStopScan
		}
		budget--
		uses, err := decodeUses(q.URI, v)
		if err != nil {
			return fmt.Errorf("history of leaf %d: %w", leaf, err)
		}
		var matched []use
		for _, u := range uses {
			if u.ref.matches(want) {
				matched = append(matched, u)
			}
		}
		if len(matched) == 0 {
			return nil
		}
		r, err := ix.loadRecord(ctx, q.Tenant, leaf)
		if err != nil {
			return err
		}
		e := HistoryEntry{Event: activityNode(r)}
		for _, u := range matched {
			e.Uses = append(e.Uses, AssetUse{Role: u.role, Asset: assetNode(r, u)})
		}
		page.Entries = append(page.Entries, e)
		page.Leaves = append(page.Leaves, leaf)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", refString(want), err)
	}
	slices.Sort(page.Leaves)
	ix.maskEntries(page.Entries)
	return page, nil
}

type use struct {
	role Role
	ref  ref
}

func decodeUses(uri string, v []byte) ([]use, error) {
	var out []use
	d := dec{b: v}
	for len(d.b) > 0 && d.err == nil {
		u := use{role: Role(d.uv())}
		u.ref = ref{URI: uri, Version: d.str(), RecordKey: d.str()}
		out = append(out, u)
	}
	return out, d.err
}

// assetNode is the node for an event's use of an asset, with what the event
// said about it.
func assetNode(r *record, u use) *Node {
	as := r.Inputs
	if u.role == RoleOutput {
		as = r.Outputs
	}
	a := &Asset{URI: u.ref.URI, Version: u.ref.Version, RecordKey: u.ref.RecordKey}
	for _, x := range as {
		if x.ref() == u.ref {
			a = &Asset{URI: x.URI, Version: x.Version, RecordKey: x.RecordKey, Digest: x.Digest, Classification: x.Classification, Fields: x.Fields}
			break
		}
	}
	return &Node{ID: AssetNodeID(a.URI, a.Version, a.RecordKey), Kind: NodeAsset, Leaf: r.Leaf, Asset: a}
}

func (ix *Index) maskEntries(es []HistoryEntry) {
	if ix.opts.Mask == nil {
		return
	}
	for _, e := range es {
		ix.opts.Mask(e.Event)
		for _, u := range e.Uses {
			ix.opts.Mask(u.Asset)
		}
	}
}

// RunEvents returns every event of a run, in log order, with the run's
// open gaps.
func (ix *Index) RunEvents(ctx context.Context, tenant, runID string) (*RunEvents, error) {
	return ix.RunEventsAt(ctx, tenant, runID, 0)
}

// RunEventsAt is RunEvents restricted to leaves below treeSize (0: the
// watermark).
func (ix *Index) RunEventsAt(ctx context.Context, tenant, runID string, treeSize uint64) (*RunEvents, error) {
	switch {
	case tenant == "":
		return nil, &QueryError{Field: "tenant", Reason: "required"}
	case runID == "":
		return nil, &QueryError{Field: "run_id", Reason: "required"}
	}
	size, err := ix.answerSize(treeSize)
	if err != nil {
		return nil, err
	}
	leaves, err := ix.runLeaves(ctx, tenant, runID, size, MaxRunEvents)
	if err != nil {
		return nil, err
	}
	if len(leaves) == 0 {
		return nil, fmt.Errorf("run %q: %w", runID, ErrQueryNotFound)
	}
	out := &RunEvents{TreeSize: size}
	if len(leaves) > MaxRunEvents {
		leaves, out.Truncated = leaves[:MaxRunEvents], true
	}
	cited := map[uint64]bool{}
	for _, l := range leaves {
		r, err := ix.loadRecord(ctx, tenant, l)
		if err != nil {
			return nil, err
		}
		if out.Run == nil {
			out.Run = &Node{ID: RunNodeID(runID), Kind: NodeRun, Leaf: l, Run: &Run{RunID: runID, WorkflowID: r.WorkflowID, Platform: r.Platform}}
		}
		if out.Run.Run.ParentRunID == "" && r.ParentRunID != "" {
			out.Run.Run.ParentRunID = r.ParentRunID
		}
		out.Events = append(out.Events, activityNode(r))
		cited[l] = true
	}
	gaps, err := ix.runGaps(ctx, tenant, runID)
	if err != nil {
		return nil, err
	}
	for _, g := range gaps {
		if g.Leaves = below(g.Leaves, size); len(g.Leaves) > 0 {
			out.Gaps = append(out.Gaps, g)
			for _, l := range g.Leaves {
				cited[l] = true
			}
		}
	}
	out.Leaves = sortedLeaves(cited)
	if ix.opts.Mask != nil {
		ix.opts.Mask(out.Run)
		for _, n := range out.Events {
			ix.opts.Mask(n)
		}
	}
	return out, nil
}

// Find lists a tenant's events that pass every non-empty field of f, newest
// first, a page at a time. One index drives the scan, chosen in this order:
// event id, run, step, workflow, actor, classification, operation, and
// otherwise event time; the other fields filter. Pages are in the driving
// index's order, newest first: by leaf index, or by event time (then leaf)
// when event time drives. As with History, a page may be short and still
// have a NextPageToken.
func (ix *Index) Find(ctx context.Context, tenant string, f Filter, pageToken string, limit int) (*HistoryPage, error) {
	if tenant == "" {
		return nil, &QueryError{Field: "tenant", Reason: "required"}
	}
	if !f.Until.IsZero() && f.Until.Before(f.Since) {
		return nil, &QueryError{Field: "until", Reason: "before since"}
	}
	limit, err := checkLimit(limit)
	if err != nil {
		return nil, err
	}
	size, err := ix.answerSize(f.TreeSize)
	if err != nil {
		return nil, err
	}
	page := &HistoryPage{TreeSize: size}
	if f.EventID != "" {
		if pageToken != "" {
			return page, nil
		}
		leaf, ok, err := ix.eventLeaf(ctx, tenant, f.EventID)
		if err != nil || !ok || leaf >= size {
			return page, err
		}
		r, err := ix.loadRecord(ctx, tenant, leaf)
		if err != nil {
			return nil, err
		}
		if findMatch(r, f) {
			page.Entries = append(page.Entries, HistoryEntry{Event: activityNode(r)})
			page.Leaves = []uint64{leaf}
		}
		ix.maskEntries(page.Entries)
		return page, nil
	}

	// The driving index: prefix, and the key range under it.
	var p key
	byTime := false
	switch {
	case f.RunID != "":
		p = newKey(keyRunEvent).str(tenant).str(f.RunID)
	case f.StepID != "":
		p = newKey(keyStep).str(tenant).str(f.StepID)
	case f.WorkflowID != "":
		p = newKey(keyWorkflow).str(tenant).str(f.WorkflowID)
	case f.ActorID != "":
		p = newKey(keyActor).str(tenant).str(f.ActorID)
	case f.Classification != "":
		p = newKey(keyClass).str(tenant).str(f.Classification)
	case f.Operation != 0:
		p = newKey(keyOperation).str(tenant).b(byte(f.Operation))
	default:
		p, byTime = newKey(keyTime).str(tenant), true
	}
	start, end := []byte(p), prefixEnd(p)
	if byTime {
		if !f.Since.IsZero() {
			start = p.u64(uint64(max(f.Since.UnixNano(), 0)))
		}
		if !f.Until.IsZero() {
			end = p.u64(uint64(max(f.Until.UnixNano(), 0)))
		}
	} else {
		end = p.u64(size)
	}
	if pageToken != "" {
		pos, err := decodeToken(pageToken, tokenFind)
		if err != nil {
			return nil, err
		}
		if len(pos) < 1 || pos[0] != p[0] {
			return nil, &QueryError{Field: "page_token", Reason: "not a token from this listing"}
		}
		if c := append(slices.Clone([]byte(p)), pos[1:]...); string(c) < string(end) {
			end = c
		}
	}
	budget := scanBudget(limit)
	err = ix.store.Scan(ctx, start, end, true, func(k, _ []byte) error {
		if len(k) < len(p)+8 {
			return fmt.Errorf("index key %x: %w", k, errBadKey)
		}
		if len(page.Entries) == limit || budget == 0 {
			// Continue below this key, including it: the scan end is
			// exclusive, so the token holds the key's successor.
			next := append(append([]byte{p[0]}, k[len(p):]...), 0)
			page.NextPageToken = encodeToken(tokenFind, next)
			return ErrStopScan
		}
		budget--
		leaf := binary.BigEndian.Uint64(k[len(k)-8:])
		if leaf >= size {
			return nil
		}
		r, err := ix.loadRecord(ctx, tenant, leaf)
		if err != nil {
			return err
		}
		if findMatch(r, f) {
			page.Entries = append(page.Entries, HistoryEntry{Event: activityNode(r)})
			page.Leaves = append(page.Leaves, leaf)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finding events: %w", err)
	}
	slices.Sort(page.Leaves)
	ix.maskEntries(page.Entries)
	return page, nil
}

func findMatch(r *record, f Filter) bool {
	if f.EventID != "" && r.EventID != f.EventID ||
		f.RunID != "" && r.RunID != f.RunID ||
		f.StepID != "" && r.StepID != f.StepID ||
		f.WorkflowID != "" && r.WorkflowID != f.WorkflowID ||
		f.ActorID != "" && r.ActorID != f.ActorID ||
		f.Operation != 0 && r.Op != f.Operation {
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		if r.EventTime == 0 {
			return false
		}
		t := time.Unix(0, r.EventTime)
		if !f.Since.IsZero() && t.Before(f.Since) || !f.Until.IsZero() && !t.Before(f.Until) {
			return false
		}
	}
	if f.Classification != "" {
		for _, as := range [2][]assetRef{r.Inputs, r.Outputs} {
			for _, a := range as {
				if a.Classification == f.Classification {
					return true
				}
			}
		}
		return false
	}
	return true
}
