package lineage

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
)

// GapKind names a completeness check that failed. The rules are in doc.go
// ("Gaps").
type GapKind string

const (
	// GapMissingParentRun: a run names a parent_run_id of which the tenant's
	// log holds no event.
	GapMissingParentRun GapKind = "missing_parent_run"
	// GapMissingSubject: an approval or override names a subject event id
	// that the tenant's log does not hold.
	GapMissingSubject GapKind = "missing_subject"
	// GapUnproducedInput: an event consumed an asset version that no event
	// in the tenant's log produced, from a location (scheme and authority,
	// "postgres://warehouse") that events in the log do write to.
	GapUnproducedInput GapKind = "unproduced_input"
	// GapRunWithoutStart: a run has events but no RUN_START.
	GapRunWithoutStart GapKind = "run_without_start"
	// GapRunFailed: a run has a RUN_FAIL and no RUN_COMPLETE.
	GapRunFailed GapKind = "run_failed"
	// GapUndecodableLeaf: a leaf that event.DecodeLeaf refuses. It belongs
	// to no tenant; see Index.UndecodableLeaves.
	GapUndecodableLeaf GapKind = "undecodable_leaf"
)

// GapKinds lists every kind, in a fixed order (for metrics).
var GapKinds = []GapKind{
	GapMissingParentRun, GapMissingSubject, GapUnproducedInput,
	GapRunWithoutStart, GapRunFailed, GapUndecodableLeaf,
}

// Gap is one open completeness problem at the index watermark: it opens when
// the leaf that exposes it is indexed, and closes when a later leaf supplies
// what was missing (a late RUN_START, the parent run's first event...).
type Gap struct {
	Kind   GapKind
	Tenant string
	// RunID is the run the gap belongs to: the run of the event that
	// exposes it. Empty for undecodable leaves.
	RunID string
	// Missing names what is missing: the parent run id, the subject event
	// id, or the asset ("uri@version#record_key", version and record key
	// left out when empty). Empty for the run-level kinds.
	Missing string
	// Detail is a sentence for people.
	Detail string
	// Leaves are the leaf indexes of the events that expose the gap,
	// ascending.
	Leaves []uint64
}

const (
	gapCodeParent      = 1
	gapCodeSubject     = 2
	gapCodeUnproduced  = 3
	gapCodeNoStart     = 4
	gapCodeFailed      = 5
	gapCodeUndecodable = 6
)

func gapCode(k GapKind) byte {
	return byte(slices.Index(GapKinds, k) + 1)
}

func gapKind(code byte) (GapKind, bool) {
	if code == 0 || int(code) > len(GapKinds) {
		return "", false
	}
	return GapKinds[code-1], true
}

// gapKey is G tenant run code, followed by the kind's detail: the parent run
// id; the leaf and the subject id; the leaf and the asset.
func gapKey(tenant, run string, code byte) key {
	return newKey(keyGap).str(tenant).str(run).b(code)
}

// gapValue: code, missing, leaves.
func gapValue(code byte, missing string, leaves ...uint64) []byte {
	e := enc(nil).uv(uint64(code)).str(missing).uv(uint64(len(leaves)))
	for _, l := range leaves {
		e = e.uv(l)
	}
	return e
}

func decodeGap(tenant, run string, v []byte) (Gap, error) {
	d := dec{b: v}
	code := byte(d.uv())
	missing := d.str()
	n := d.count(1)
	leaves := make([]uint64, n)
	for i := range leaves {
		leaves[i] = d.uv()
	}
	kind, ok := gapKind(code)
	if d.err != nil || !ok || len(d.b) != 0 {
		return Gap{}, errBadValue
	}
	g := Gap{Kind: kind, Tenant: tenant, RunID: run, Missing: missing, Leaves: leaves}
	g.Detail = gapDetail(g)
	return g, nil
}

func gapDetail(g Gap) string {
	switch g.Kind {
	case GapMissingParentRun:
		return fmt.Sprintf("run %q names parent run %q, of which the log holds no event", g.RunID, g.Missing)
	case GapMissingSubject:
		return fmt.Sprintf("an approval or override acts on event %q, which is not in the log", g.Missing)
	case GapUnproducedInput:
		return fmt.Sprintf("input %s was consumed, but no event in the log produced it, although events in the log write to %s", g.Missing, location(g.Missing))
	case GapRunWithoutStart:
		return fmt.Sprintf("run %q has events but no RUN_START", g.RunID)
	case GapRunFailed:
		return fmt.Sprintf("run %q failed and has no RUN_COMPLETE", g.RunID)
	case GapUndecodableLeaf:
		return "the leaf does not decode as a provlog leaf; it was skipped"
	}
	return string(g.Kind)
}

func refString(r ref) string {
	s := r.URI
	if r.Version != "" {
		s += "@" + r.Version
	}
	if r.RecordKey != "" {
		s += "#" + r.RecordKey
	}
	return s
}

// anyTenantGaps reports whether any gap that belongs to a tenant is open;
// when none is, answers skip reading gaps run by run.
func (ix *Index) anyTenantGaps() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	for i, code := range gapCodes {
		if code != gapCodeUndecodable && ix.counts[i] != 0 {
			return true
		}
	}
	return false
}

// runGaps returns the open gaps of a run, in key order.
func (ix *Index) runGaps(ctx context.Context, tenant, run string) ([]Gap, error) {
	if !ix.anyTenantGaps() {
		return nil, nil
	}
	p := newKey(keyGap).str(tenant).str(run)
	var out []Gap
	err := ix.store.Scan(ctx, p, prefixEnd(p), false, func(k, v []byte) error {
		g, err := decodeGap(tenant, run, v)
		if err != nil {
			return fmt.Errorf("gap record %x: %w", k, err)
		}
		out = append(out, g)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading gaps of run %q: %w", run, err)
	}
	return out, nil
}

// GapCounts returns the number of open gaps of each kind at the watermark,
// across tenants: what a metric exports (a gauge per kind).
func (ix *Index) GapCounts() map[GapKind]int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[GapKind]int64, len(GapKinds))
	for i, k := range GapKinds {
		out[k] = ix.counts[i]
	}
	return out
}

// OpenGaps lists a tenant's open gaps, by run id, then kind, then leaf,
// limit at a time (0: 100); pageToken continues a listing.
func (ix *Index) OpenGaps(ctx context.Context, tenant, pageToken string, limit int) (gaps []Gap, nextPageToken string, err error) {
	if tenant == "" {
		return nil, "", &QueryError{Field: "tenant", Reason: "required"}
	}
	limit = pageLimit(limit)
	p := newKey(keyGap).str(tenant)
	start := []byte(p)
	if pageToken != "" {
		after, err := decodeToken(pageToken, tokenGaps)
		if err != nil {
			return nil, "", err
		}
		start = append(append([]byte(nil), p...), after...)
		start = append(start, 0) // strictly after
	}
	var last []byte
	err = ix.store.Scan(ctx, start, prefixEnd(p), false, func(k, v []byte) error {
		if len(gaps) == limit {
			nextPageToken = encodeToken(tokenGaps, last)
			return ErrStopScan
		}
		r := keyReader{b: k[len(p):]}
		run := r.str()
		if r.err != nil {
			return fmt.Errorf("gap key %x: %w", k, r.err)
		}
		g, err := decodeGap(tenant, run, v)
		if err != nil {
			return fmt.Errorf("gap record %x: %w", k, err)
		}
		gaps = append(gaps, g)
		last = append(last[:0], k[len(p):]...)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing gaps: %w", err)
	}
	return gaps, nextPageToken, nil
}

// UndecodableLeaves returns the indexes of leaves that did not decode, from
// index from on, at most limit of them (0: 100). They belong to no tenant:
// expose them to operators, not to tenants.
func (ix *Index) UndecodableLeaves(ctx context.Context, from uint64, limit int) ([]uint64, error) {
	limit = pageLimit(limit)
	var out []uint64
	start := newKey(keyUndecoded).u64(from)
	end := prefixEnd([]byte{keyUndecoded})
	err := ix.store.Scan(ctx, start, end, false, func(k, _ []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("undecodable-leaf key %x: %w", k, errBadKey)
		}
		out = append(out, binary.BigEndian.Uint64(k[1:]))
		if len(out) == limit {
			return ErrStopScan
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing undecodable leaves: %w", err)
	}
	return out, nil
}
