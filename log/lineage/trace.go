package lineage

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// Trace returns the lineage graph around q's start (doc.go, "Trace").
func (ix *Index) Trace(ctx context.Context, q TraceQuery) (*Graph, error) {
	size, err := ix.checkTrace(&q)
	if err != nil {
		return nil, err
	}
	b := &builder{
		ix: ix, ctx: ctx, tenant: q.Tenant, size: size, maxNodes: q.MaxNodes,
		budget:   16 * q.MaxNodes,
		filters:  q.Filters,
		nodes:    map[string]*Node{},
		edges:    map[edgeKey]*Edge{},
		records:  map[uint64]*record{},
		byID:     map[string]uint64{},
		runs:     map[string]bool{},
		attrSrc:  map[string]uint64{},
		observed: map[string][]match{},
	}
	var startAsset *ref
	var starts []*record
	switch {
	case q.AssetURI != "":
		r := ref{URI: q.AssetURI, Version: q.AssetVersion, RecordKey: q.RecordKey}
		found, err := ix.assetSeen(ctx, q.Tenant, r, size)
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, fmt.Errorf("asset %s: %w", refString(r), ErrQueryNotFound)
		}
		startAsset = &r
		if !b.addNode(&Node{ID: AssetNodeID(r.URI, r.Version, r.RecordKey), Kind: NodeAsset, Asset: &Asset{URI: r.URI, Version: r.Version, RecordKey: r.RecordKey}}) {
			break
		}
	case q.EventID != "":
		leaf, ok, err := ix.eventLeaf(ctx, q.Tenant, q.EventID)
		if err != nil {
			return nil, err
		}
		if !ok || leaf >= size {
			return nil, fmt.Errorf("event %q: %w", q.EventID, ErrQueryNotFound)
		}
		rec, err := b.load(leaf)
		if err != nil {
			return nil, err
		}
		starts = append(starts, rec)
	default:
		leaves, err := ix.runLeaves(ctx, q.Tenant, q.RunID, size, q.MaxNodes)
		if err != nil {
			return nil, err
		}
		if len(leaves) == 0 {
			return nil, fmt.Errorf("run %q: %w", q.RunID, ErrQueryNotFound)
		}
		if len(leaves) > q.MaxNodes {
			leaves, b.truncated = leaves[:q.MaxNodes], true
		}
		for _, l := range leaves {
			rec, err := b.load(l)
			if err != nil {
				return nil, err
			}
			if b.pass(rec) {
				starts = append(starts, rec)
			}
		}
	}
	if q.Direction == Upstream || q.Direction == Both {
		if err := b.walk(true, startAsset, starts, q.Depth); err != nil {
			return nil, err
		}
	}
	if q.Direction == Downstream || q.Direction == Both {
		if err := b.walk(false, startAsset, starts, q.Depth); err != nil {
			return nil, err
		}
	}
	return b.finish()
}

func (ix *Index) checkTrace(q *TraceQuery) (uint64, error) {
	if q.Tenant == "" {
		return 0, &QueryError{Field: "tenant", Reason: "required"}
	}
	starts := 0
	for _, s := range []string{q.AssetURI, q.EventID, q.RunID} {
		if s != "" {
			starts++
		}
	}
	switch {
	case starts != 1:
		return 0, &QueryError{Field: "start", Reason: "exactly one of asset_uri, event_id and run_id is required"}
	case q.AssetURI == "" && (q.AssetVersion != "" || q.RecordKey != ""):
		return 0, &QueryError{Field: "asset_uri", Reason: "required with asset_version or record_key"}
	case q.Direction < Upstream || q.Direction > Both:
		return 0, &QueryError{Field: "direction", Reason: "must be upstream, downstream or both"}
	case q.Depth < 0 || q.Depth > MaxDepth:
		return 0, &QueryError{Field: "depth", Reason: fmt.Sprintf("must be 1..%d (0: %d)", MaxDepth, DefaultDepth)}
	case q.MaxNodes < 0 || q.MaxNodes > MaxMaxNodes:
		return 0, &QueryError{Field: "max_nodes", Reason: fmt.Sprintf("must be 1..%d (0: %d)", MaxMaxNodes, DefaultMaxNodes)}
	case !q.Filters.Until.IsZero() && q.Filters.Until.Before(q.Filters.Since):
		return 0, &QueryError{Field: "filters.until", Reason: "before filters.since"}
	}
	if q.Depth == 0 {
		q.Depth = DefaultDepth
	}
	if q.MaxNodes == 0 {
		q.MaxNodes = DefaultMaxNodes
	}
	return ix.answerSize(q.TreeSize)
}

// answerSize is the tree size an answer describes.
func (ix *Index) answerSize(treeSize uint64) (uint64, error) {
	wm := ix.Watermark()
	switch {
	case treeSize == 0:
		return wm, nil
	case treeSize > wm:
		return 0, &QueryError{Field: "tree_size", Reason: fmt.Sprintf("%d is beyond the index watermark %d", treeSize, wm)}
	}
	return treeSize, nil
}

// eventLeaf returns the first leaf of the tenant's event with this id.
func (ix *Index) eventLeaf(ctx context.Context, tenant, id string) (uint64, bool, error) {
	p := newKey(keyEventID).str(tenant).str(id)
	var leaf uint64
	found := false
	err := ix.store.Scan(ctx, p, prefixEnd(p), false, func(k, _ []byte) error {
		if len(k) != len(p)+8 {
			return fmt.Errorf("event id key %x: %w", k, errBadKey)
		}
		leaf, found = binary.BigEndian.Uint64(k[len(p):]), true
		return ErrStopScan
	})
	if err != nil {
		return 0, false, fmt.Errorf("looking up event %q: %w", id, err)
	}
	return leaf, found, nil
}

// runLeaves returns the leaves of a run below size, at most limit+1.
func (ix *Index) runLeaves(ctx context.Context, tenant, run string, size uint64, limit int) ([]uint64, error) {
	p := newKey(keyRunEvent).str(tenant).str(run)
	var out []uint64
	err := ix.store.Scan(ctx, p, p.u64(size), false, func(k, _ []byte) error {
		if len(k) != len(p)+8 {
			return fmt.Errorf("run event key %x: %w", k, errBadKey)
		}
		out = append(out, binary.BigEndian.Uint64(k[len(p):]))
		if len(out) > limit {
			return ErrStopScan
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing events of run %q: %w", run, err)
	}
	return out, nil
}

// assetSeen reports whether an event below size produced or consumed an
// asset matching r.
func (ix *Index) assetSeen(ctx context.Context, tenant string, r ref, size uint64) (bool, error) {
	b := &builder{ix: ix, ctx: ctx, tenant: tenant, size: size, maxNodes: 1}
	for _, space := range []byte{keyOutput, keyInput} {
		ms, err := b.lookup(space, r, 1)
		if err != nil || len(ms) > 0 {
			return len(ms) > 0, err
		}
	}
	return false, nil
}

func (ix *Index) loadRecord(ctx context.Context, tenant string, leaf uint64) (*record, error) {
	v, err := ix.store.Get(ctx, newKey(keyEvent).u64(leaf))
	if err != nil {
		return nil, fmt.Errorf("reading event record of leaf %d: %w", leaf, err)
	}
	r, err := decodeRecord(leaf, v)
	if err != nil {
		return nil, fmt.Errorf("event record of leaf %d: %w", leaf, err)
	}
	if r.Tenant != tenant {
		// Every path to a record goes through a tenant-scoped key; this
		// would be a corrupt index, and must never leak.
		return nil, fmt.Errorf("event record of leaf %d belongs to another tenant: %w", leaf, errBadValue)
	}
	return r, nil
}

type edgeKey struct {
	from, to         string
	kind             EdgeKind
	fromField, field string
}

// builder accumulates a graph. Everything in it is bounded by maxNodes.
type builder struct {
	ix        *Index
	ctx       context.Context
	tenant    string
	size      uint64
	maxNodes  int
	budget    int // records left to load
	filters   Filters
	nodes     map[string]*Node
	edges     map[edgeKey]*Edge
	records   map[uint64]*record // events in the graph
	byID      map[string]uint64  // event id -> leaf, events in the graph
	runs      map[string]bool
	attrSrc   map[string]uint64  // asset or run node -> leaf its attributes come from
	observed  map[string][]match // run -> its observations, read once
	truncated bool
}

func (b *builder) load(leaf uint64) (*record, error) {
	if r, ok := b.records[leaf]; ok {
		return r, nil
	}
	if b.budget <= 0 {
		b.truncated = true
		return nil, nil
	}
	b.budget--
	return b.ix.loadRecord(b.ctx, b.tenant, leaf)
}

// addNode adds n unless a node with its ID is there; it reports false when
// MaxNodes stops it.
func (b *builder) addNode(n *Node) bool {
	if _, ok := b.nodes[n.ID]; ok {
		return true
	}
	if len(b.nodes) >= b.maxNodes {
		b.truncated = true
		return false
	}
	b.nodes[n.ID] = n
	return true
}

func (b *builder) addEdge(e Edge) {
	k := edgeKey{e.From, e.To, e.Kind, e.FromField, e.ToField}
	if old, ok := b.edges[k]; ok {
		if e.Leaf < old.Leaf {
			*old = e
		}
		return
	}
	b.edges[k] = &e
}

// addAsset adds the node for an asset as the event at leaf referenced it.
// The node shows what the earliest such event said.
func (b *builder) addAsset(a assetRef, leaf uint64) (string, bool) {
	id := AssetNodeID(a.URI, a.Version, a.RecordKey)
	n, ok := b.nodes[id]
	if !ok {
		n = &Node{ID: id, Kind: NodeAsset, Asset: &Asset{URI: a.URI, Version: a.Version, RecordKey: a.RecordKey}}
		if !b.addNode(n) {
			return id, false
		}
	}
	if src, ok := b.attrSrc[id]; !ok || leaf < src {
		b.attrSrc[id] = leaf
		n.Leaf = leaf
		n.Asset = &Asset{URI: a.URI, Version: a.Version, RecordKey: a.RecordKey, Digest: a.Digest, Classification: a.Classification, Fields: a.Fields}
	}
	return id, true
}

// addRun adds the node of a run; rec, when not nil, is one of its events,
// whose workflow the node shows if it is the earliest.
func (b *builder) addRun(run string, rec *record) (string, bool) {
	id := RunNodeID(run)
	n, ok := b.nodes[id]
	if !ok {
		n = &Node{ID: id, Kind: NodeRun, Run: &Run{RunID: run}}
		if !b.addNode(n) {
			return id, false
		}
		b.runs[run] = true
	}
	if rec == nil {
		return id, true
	}
	if src, ok := b.attrSrc[id]; !ok || rec.Leaf < src {
		b.attrSrc[id] = rec.Leaf
		n.Run = &Run{RunID: run, WorkflowID: rec.WorkflowID, Platform: rec.Platform, ParentRunID: rec.ParentRunID}
	}
	return id, true
}

// addEvent adds an activity with everything its leaf asserts about it: its
// inputs and outputs, field lineage, run and parent run, and the approvals
// and overrides that act on it. It reports false when MaxNodes stops it.
func (b *builder) addEvent(r *record) (bool, error) {
	id := ActivityNodeID(r.Leaf)
	if _, ok := b.nodes[id]; ok {
		return true, nil
	}
	if !b.addNode(activityNode(r)) {
		return false, nil
	}
	b.records[r.Leaf] = r
	if _, ok := b.byID[r.EventID]; !ok {
		b.byID[r.EventID] = r.Leaf
	}
	for _, a := range r.Inputs {
		aid, ok := b.addAsset(a, r.Leaf)
		if !ok {
			return false, nil
		}
		b.addEdge(Edge{From: aid, To: id, Kind: EdgeInput, Leaf: r.Leaf})
	}
	for _, a := range r.Outputs {
		aid, ok := b.addAsset(a, r.Leaf)
		if !ok {
			return false, nil
		}
		b.addEdge(Edge{From: id, To: aid, Kind: EdgeOutput, Leaf: r.Leaf})
	}
	for _, l := range r.Lineage {
		for _, out := range r.Outputs {
			if out.URI != l.OutputURI {
				continue
			}
			for _, s := range l.Sources {
				for _, in := range r.Inputs {
					if in.URI == s.URI {
						b.addEdge(Edge{
							From: AssetNodeID(in.URI, in.Version, in.RecordKey), To: AssetNodeID(out.URI, out.Version, out.RecordKey),
							Kind: EdgeField, Leaf: r.Leaf, FromField: s.Field, ToField: l.OutputField, Transformation: l.Transformation,
						})
					}
				}
			}
		}
	}
	if r.RunID != "" {
		rid, ok := b.addRun(r.RunID, r)
		if !ok {
			return false, nil
		}
		b.addEdge(Edge{From: id, To: rid, Kind: EdgeStepOfRun, Leaf: r.Leaf})
		if r.ParentRunID != "" && r.ParentRunID != r.RunID {
			pid, ok := b.addRun(r.ParentRunID, nil)
			if !ok {
				return false, nil
			}
			b.addEdge(Edge{From: rid, To: pid, Kind: EdgeParentRun, Leaf: r.Leaf})
		}
	}
	// This event as an approval or override of events already here.
	for _, s := range r.Subjects {
		if l, ok := b.byID[s]; ok {
			b.addEdge(Edge{From: id, To: ActivityNodeID(l), Kind: actingKind(r), Leaf: r.Leaf})
		}
	}
	// Approvals and overrides of this event: part of its step.
	approvers, err := b.approvers(r.EventID)
	if err != nil {
		return false, err
	}
	for _, l := range approvers {
		a, err := b.load(l)
		if err != nil || a == nil {
			return false, err
		}
		ok, err := b.addEvent(a)
		if err != nil || !ok {
			return ok, err
		}
		b.addEdge(Edge{From: ActivityNodeID(l), To: id, Kind: actingKind(a), Leaf: l})
	}
	return true, nil
}

func actingKind(r *record) EdgeKind {
	if r.Op == provlogv1.Operation_OPERATION_OVERRIDE {
		return EdgeOverrides
	}
	return EdgeApproves
}

// approvers returns the leaves below size of approvals and overrides of the
// event with this id.
func (b *builder) approvers(eventID string) ([]uint64, error) {
	if ok, err := b.has(newKey(keyActedOn).str(b.tenant).str(eventID)); err != nil || !ok {
		return nil, err
	}
	p := newKey(keySubject).str(b.tenant).str(eventID)
	var out []uint64
	err := b.ix.store.Scan(b.ctx, p, p.u64(b.size), false, func(k, _ []byte) error {
		if len(k) != len(p)+8 {
			return fmt.Errorf("subject key %x: %w", k, errBadKey)
		}
		out = append(out, binary.BigEndian.Uint64(k[len(p):]))
		if len(out) >= b.maxNodes {
			b.truncated = true
			return ErrStopScan
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("approvals of %q: %w", eventID, err)
	}
	return out, nil
}

// match is an event found by asset: its leaf and how it referenced the
// asset.
type match struct {
	leaf uint64
	ref  ref
}

// lookup returns the events below size that produced (space keyOutput) or
// consumed (keyInput) an asset matching r, by leaf; at most limit of them,
// and when there are more, it sets truncated.
func (b *builder) lookup(space byte, r ref, limit int) ([]match, error) {
	base := newKey(space).str(b.tenant).str(r.URI)
	versions := []string{r.Version}
	if r.Version != "" {
		// Events that named the asset without a version match too; a
		// marker says whether there are any, which saves a scan.
		ok, err := b.has(newKey(keyUnversion).str(b.tenant).str(r.URI))
		if err != nil {
			return nil, err
		}
		if ok {
			versions = append(versions, "")
		}
	}
	var prefixes []key
	for _, v := range versions {
		switch {
		case v == "" && r.Version == "":
			prefixes = append(prefixes, base)
		case r.RecordKey != "":
			prefixes = append(prefixes, base.str(v).str(r.RecordKey), base.str(v).str(""))
		default:
			prefixes = append(prefixes, base.str(v))
		}
	}
	var out []match
	for _, p := range prefixes {
		err := b.ix.store.Scan(b.ctx, p, prefixEnd(p), false, func(k, _ []byte) error {
			kr := keyReader{b: k[len(base):]}
			m := match{ref: ref{URI: r.URI, Version: kr.str(), RecordKey: kr.str()}}
			m.leaf = kr.u64()
			if kr.err != nil || len(kr.b) != 0 {
				return fmt.Errorf("asset key %x: %w", k, errBadKey)
			}
			if m.leaf >= b.size || !m.ref.matches(r) {
				return nil
			}
			if len(out) == limit {
				b.truncated = true
				return ErrStopScan
			}
			out = append(out, m)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", refString(r), err)
		}
		if len(out) == limit {
			break
		}
	}
	slices.SortFunc(out, func(x, y match) int { return cmp.Compare(x.leaf, y.leaf) })
	return out, nil
}

// observers returns the events below size of run that consumed an asset
// matching r and produced nothing: the reads, checks and failed attempts of
// a step's inputs. It reads the run's observations once per answer.
func (b *builder) observers(run string, r ref) ([]match, error) {
	all, ok := b.observed[run]
	if !ok {
		p := newKey(keyObserver).str(b.tenant).str(run)
		err := b.ix.store.Scan(b.ctx, p, prefixEnd(p), false, func(k, _ []byte) error {
			kr := keyReader{b: k[len(p):]}
			m := match{ref: ref{URI: kr.str(), Version: kr.str(), RecordKey: kr.str()}}
			m.leaf = kr.u64()
			if kr.err != nil || len(kr.b) != 0 {
				return fmt.Errorf("observer key %x: %w", k, errBadKey)
			}
			if m.leaf < b.size {
				all = append(all, m)
				if len(all) > b.maxNodes {
					b.truncated = true
					return ErrStopScan
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("reads in run %q: %w", run, err)
		}
		b.observed[run] = all
	}
	var out []match
	for _, m := range all {
		if m.ref.matches(r) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(x, y match) int { return cmp.Compare(x.leaf, y.leaf) })
	return out, nil
}

func (b *builder) has(k key) (bool, error) {
	_, err := b.ix.store.Get(b.ctx, k)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("lineage index lookup: %w", err)
	}
	return true, nil
}

// addMatch adds the matches edge between the reference an event found by
// a lookup made of an asset, and the reference looked up, when they differ.
func (b *builder) addMatch(m match, looked ref) {
	if m.ref == looked {
		return
	}
	from, to := AssetNodeID(m.ref.URI, m.ref.Version, m.ref.RecordKey), AssetNodeID(looked.URI, looked.Version, looked.RecordKey)
	if b.nodes[from] != nil && b.nodes[to] != nil {
		b.addEdge(Edge{From: from, To: to, Kind: EdgeMatches, Leaf: m.leaf})
	}
}

// pass reports whether a hop may reach r under the filters.
func (b *builder) pass(r *record) bool {
	f := &b.filters
	if !f.Since.IsZero() || !f.Until.IsZero() {
		if r.EventTime == 0 {
			return false
		}
		t := time.Unix(0, r.EventTime)
		if !f.Since.IsZero() && t.Before(f.Since) || !f.Until.IsZero() && !t.Before(f.Until) {
			return false
		}
	}
	if len(f.ActorIDs) > 0 && !slices.Contains(f.ActorIDs, r.ActorID) ||
		len(f.WorkflowIDs) > 0 && !slices.Contains(f.WorkflowIDs, r.WorkflowID) ||
		len(f.Operations) > 0 && !slices.Contains(f.Operations, r.Op) {
		return false
	}
	if len(f.Classifications) > 0 {
		for _, as := range [2][]assetRef{r.Inputs, r.Outputs} {
			for _, a := range as {
				if slices.Contains(f.Classifications, a.Classification) {
					return true
				}
			}
		}
		return false
	}
	return true
}

// walk traverses from the start, up (producers) or down (consumers), hop by
// hop.
func (b *builder) walk(up bool, start *ref, starts []*record, depth int) error {
	var space byte = keyInput
	if up {
		space = keyOutput
	}
	side := func(r *record) []assetRef {
		if up {
			return r.Inputs
		}
		return r.Outputs
	}
	expanded := map[uint64]bool{}
	looked := map[ref]bool{}
	var frontier []ref
	if start != nil {
		frontier = append(frontier, *start)
	}
	for _, r := range starts {
		ok, err := b.addEvent(r)
		if err != nil || !ok {
			return err
		}
		expanded[r.Leaf] = true
		for _, a := range side(r) {
			frontier = append(frontier, a.ref())
		}
		if up {
			if err := b.addChecks(r); err != nil {
				return err
			}
		}
	}
	for hop := 1; hop <= depth && len(frontier) > 0 && !b.truncated; hop++ {
		var next []ref
		for _, a := range frontier {
			if looked[a] {
				continue
			}
			looked[a] = true
			ms, err := b.lookup(space, a, b.maxNodes)
			if err != nil {
				return err
			}
			for _, m := range ms {
				r, err := b.load(m.leaf)
				if err != nil {
					return err
				}
				if r == nil {
					return nil // out of budget
				}
				if !expanded[m.leaf] && !b.pass(r) {
					continue
				}
				ok, err := b.addEvent(r)
				if err != nil || !ok {
					return err
				}
				b.addMatch(m, a)
				if expanded[m.leaf] {
					continue
				}
				expanded[m.leaf] = true
				for _, s := range side(r) {
					next = append(next, s.ref())
				}
				if up {
					if err := b.addChecks(r); err != nil {
						return err
					}
				}
			}
		}
		frontier = next
	}
	return nil
}

// addChecks adds the events of r's run that read one of r's inputs and
// wrote nothing (reads, quality checks, failed attempts), with their
// approvals and overrides: part of r's step.
func (b *builder) addChecks(r *record) error {
	if r.RunID == "" {
		return nil
	}
	for _, in := range distinctRefs(r.Inputs) {
		ms, err := b.observers(r.RunID, in)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if m.leaf == r.Leaf {
				continue
			}
			c, err := b.load(m.leaf)
			if err != nil || c == nil {
				return err
			}
			if ok, err := b.addEvent(c); err != nil || !ok {
				return err
			}
			b.addMatch(m, in)
		}
	}
	return nil
}

// finish sets asset and run leaves, collects gaps and leaves, masks, sorts.
func (b *builder) finish() (*Graph, error) {
	g := &Graph{TreeSize: b.size, Truncated: b.truncated}
	minLeaf := map[string]uint64{}
	touch := func(id string, l uint64) {
		if old, ok := minLeaf[id]; !ok || l < old {
			minLeaf[id] = l
		}
	}
	for _, e := range b.edges {
		touch(e.From, e.Leaf)
		touch(e.To, e.Leaf)
		g.Edges = append(g.Edges, e)
	}
	leaves := map[uint64]bool{}
	for id, n := range b.nodes {
		_, exact := b.attrSrc[id]
		if n.Kind == NodeRun || n.Kind == NodeAsset && !exact {
			l, ok := minLeaf[id]
			if !ok {
				continue // a start asset nothing reached
			}
			n.Leaf = l
		}
		leaves[n.Leaf] = true
		g.Nodes = append(g.Nodes, n)
	}
	for _, e := range g.Edges {
		leaves[e.Leaf] = true
	}
	runs := make([]string, 0, len(b.runs))
	for r := range b.runs {
		runs = append(runs, r)
	}
	slices.Sort(runs)
	if !b.ix.anyTenantGaps() {
		runs = nil
	}
	for _, r := range runs {
		gaps, err := b.ix.runGaps(b.ctx, b.tenant, r)
		if err != nil {
			return nil, err
		}
		for _, gp := range gaps {
			if gp.Leaves = below(gp.Leaves, b.size); len(gp.Leaves) == 0 {
				continue
			}
			for _, l := range gp.Leaves {
				leaves[l] = true
			}
			g.Gaps = append(g.Gaps, gp)
		}
	}
	g.Leaves = sortedLeaves(leaves)
	if b.ix.opts.Mask != nil {
		for _, n := range g.Nodes {
			b.ix.opts.Mask(n)
		}
	}
	slices.SortFunc(g.Nodes, func(x, y *Node) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(g.Edges, compareEdges)
	return g, nil
}

func compareEdges(x, y *Edge) int {
	return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To), cmp.Compare(x.Kind, y.Kind),
		cmp.Compare(x.Leaf, y.Leaf), cmp.Compare(x.FromField, y.FromField), cmp.Compare(x.ToField, y.ToField))
}

func below(leaves []uint64, size uint64) []uint64 {
	out := leaves[:0:0]
	for _, l := range leaves {
		if l < size {
			out = append(out, l)
		}
	}
	return out
}

func sortedLeaves(m map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(m))
	for l := range m {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

func activityNode(r *record) *Node {
	a := &Activity{
		EventID:   r.EventID,
		Operation: r.Op,
		Submitter: r.Submitter,
		Actor:     Actor{Type: r.ActorType, ID: r.ActorID, OnBehalfOf: r.OnBehalfOf, DisplayName: r.ActorName},
		Workflow: Workflow{
			Platform: r.Platform, PlatformVersion: r.PlatformVer, WorkflowID: r.WorkflowID, WorkflowVersion: r.WorkflowVer,
			RunID: r.RunID, ParentRunID: r.ParentRunID, StepID: r.StepID,
		},
		SubjectEventIDs: r.Subjects,
		Rationale:       r.Rationale,
	}
	if r.EventTime != 0 {
		a.EventTime = time.Unix(0, r.EventTime).UTC()
	}
	if r.ReceivedTime != 0 {
		a.ReceivedTime = time.Unix(0, r.ReceivedTime).UTC()
	}
	return &Node{ID: ActivityNodeID(r.Leaf), Kind: NodeActivity, Leaf: r.Leaf, Activity: a}
}
