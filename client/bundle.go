package client

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/encoding/protojson"
)

// BundleFormat is the format line of an evidence bundle.
const BundleFormat = "provlog-evidence-bundle/v1"

// MaxBundleBytes bounds what ParseBundle reads.
const MaxBundleBytes = 256 << 20

// Bundle is an evidence bundle: everything an auditor needs to check,
// offline and with no trust in the log's operator, that some events are in
// the log and (optionally) that a lineage answer or a run's event list is
// asserted by them. It is one JSON object:
//
//	{
//	  "format": "provlog-evidence-bundle/v1",
//	  "created": "2026-11-27T12:00:00Z",
//	  "subject": {"kind": "trace", "tenant": "acme", "event_id": "..."},
//	  "log_key": "ORIGIN+KEYHASH+KEY",          // the log's note verifier key
//	  "witness_policy": "witness w1 VKEY\nquorum w1\n",
//	  "checkpoint": "ORIGIN\nSIZE\nROOT\n\n— ORIGIN ...\n— w1 ...\n",
//	  "leaves": [{"index": 7, "leaf": "BASE64", "proof": ["BASE64", ...]}],
//	  "trace": { TraceResponse as protojson, without "proofs" },
//	  "run": { ListRunEventsResponse as protojson, without "proofs" }
//	}
//
// Byte fields are standard base64. The checkpoint is the signed note
// (C2SP tlog-checkpoint) with the witnesses' cosignatures (C2SP
// tlog-cosignature); every leaf's proof is an RFC 6962 inclusion proof into
// the checkpoint's tree; leaves are the canonical leaf encoding of
// log/event (ENCODING.md). trace and run are optional; when present every
// node, edge and listed event must be asserted by a leaf of the bundle.
//
// The log key and policy in a bundle say which key the exporter trusted;
// an auditor who knows the log's key should pass it to VerifyBundle rather
// than trust the bundle's own.
//
// A bundle proves what it holds: that each leaf is in the log and that
// each node, edge and run event is asserted by one of them. It cannot prove
// that nothing is missing (the lineage index is not committed to by the
// log); provctl audit checks the index against a rebuild for that.
type Bundle struct {
	Format        string          `json:"format"`
	Created       time.Time       `json:"created"`
	Subject       BundleSubject   `json:"subject"`
	LogKey        string          `json:"log_key"`
	WitnessPolicy string          `json:"witness_policy,omitempty"`
	Checkpoint    string          `json:"checkpoint"`
	Leaves        []BundleLeaf    `json:"leaves"`
	Trace         json.RawMessage `json:"trace,omitempty"`
	Run           json.RawMessage `json:"run,omitempty"`
}

// BundleSubject says what the bundle is evidence for. VerifyBundle checks
// that a trace holds the subject's start (the event's activity, the run,
// or a node of the asset) and that a run's events belong to the subject's
// tenant and run.
type BundleSubject struct {
	// Kind is "entries", "trace" or "run".
	Kind      string `json:"kind"`
	Tenant    string `json:"tenant,omitempty"`
	EventID   string `json:"event_id,omitempty"`
	RunID     string `json:"run_id,omitempty"`
	AssetURI  string `json:"asset_uri,omitempty"`
	Version   string `json:"asset_version,omitempty"`
	RecordKey string `json:"record_key,omitempty"`
	Direction string `json:"direction,omitempty"`
}

// startsAt reports whether n is where a trace of this subject starts.
func (s BundleSubject) startsAt(n *pb.LineageNode) bool {
	switch {
	case s.EventID != "":
		return n.GetKind() == pb.NodeKind_NODE_KIND_ACTIVITY && n.GetEventId() == s.EventID
	case s.RunID != "":
		return n.GetKind() == pb.NodeKind_NODE_KIND_RUN && n.GetRunId() == s.RunID
	case s.AssetURI != "":
		a := n.GetAsset()
		return n.GetKind() == pb.NodeKind_NODE_KIND_ASSET && a.GetUri() == s.AssetURI &&
			looseMatch(a.GetVersion(), s.Version) && looseMatch(a.GetRecordKey(), s.RecordKey)
	}
	return false
}

// BundleLeaf is one leaf and its inclusion proof.
type BundleLeaf struct {
	Index uint64   `json:"index"`
	Leaf  []byte   `json:"leaf"`
	Proof [][]byte `json:"proof"`
}

// ErrMalformedBundle is wrapped by ParseBundle's errors; it also wraps
// ErrVerification: evidence that cannot be read does not verify.
var ErrMalformedBundle = fmt.Errorf("%w: malformed evidence bundle", ErrVerification)

// ParseBundle decodes a bundle strictly: unknown fields, trailing data and
// a wrong format line are refused. b may be untrusted.
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) > MaxBundleBytes {
		return nil, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformedBundle, len(b), MaxBundleBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var bu Bundle
	if err := dec.Decode(&bu); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedBundle, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the bundle", ErrMalformedBundle)
	}
	if bu.Format != BundleFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrMalformedBundle, bu.Format, BundleFormat)
	}
	return &bu, nil
}

// Marshal encodes the bundle as indented JSON, ending in a newline.
func (bu *Bundle) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(bu, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// VerifiedBundle is what a bundle proves.
type VerifiedBundle struct {
	Bundle     *Bundle
	Checkpoint *log.Checkpoint
	// Entries are the decoded leaves, by index.
	Entries map[uint64]*pb.LeafEntry
	Trace   *pb.TraceResponse
	Run     *pb.ListRunEventsResponse
	// SelfAsserted is true when the bundle was checked against its own
	// log key and policy (no trusted policy was given): it then proves
	// only that whoever holds that key signed it.
	SelfAsserted bool
}

// VerifyBundle checks an evidence bundle fully offline: the checkpoint
// satisfies the policy (the trusted one, or the bundle's own when trusted
// is nil), every leaf's inclusion proof verifies and the leaf decodes,
// and the trace and run, when present, are asserted by the bundle's
// leaves (VerifyTrace, VerifyRunEvents). Errors wrap ErrVerification.
func VerifyBundle(raw []byte, trusted *Policy) (*VerifiedBundle, error) {
	bu, err := ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	out := &VerifiedBundle{Bundle: bu, Entries: map[uint64]*pb.LeafEntry{}}
	p := trusted
	if p == nil {
		p, err = ParsePolicy(bu.LogKey, []byte(bu.WitnessPolicy))
		if err != nil {
			return nil, fmt.Errorf("%w: the bundle's own policy: %w", ErrMalformedBundle, err)
		}
		out.SelfAsserted = true
	}
	cp, err := p.VerifyCheckpoint([]byte(bu.Checkpoint))
	if err != nil {
		return nil, err
	}
	out.Checkpoint = cp
	if len(bu.Leaves) == 0 {
		return nil, fmt.Errorf("%w: the bundle holds no leaves", ErrVerification)
	}
	// The leaves again as LeafProofs, for VerifyTrace and VerifyRunEvents.
	lp := &pb.LeafProofs{Checkpoint: []byte(bu.Checkpoint), TreeSize: cp.Size}
	for _, l := range bu.Leaves {
		if _, dup := out.Entries[l.Index]; dup {
			return nil, fmt.Errorf("%w: leaf %d appears twice", ErrVerification, l.Index)
		}
		if l.Index >= cp.Size {
			return nil, fmt.Errorf("%w: leaf %d is outside the checkpoint's tree of size %d", ErrVerification, l.Index, cp.Size)
		}
		h := event.LeafHash(l.Leaf)
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, l.Index, cp.Size, h[:], l.Proof, cp.Hash); err != nil {
			return nil, fmt.Errorf("%w: leaf %d: inclusion proof: %w", ErrVerification, l.Index, err)
		}
		e, err := event.DecodeLeaf(l.Leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf %d: %w", ErrVerification, l.Index, err)
		}
		out.Entries[l.Index] = e
		pl := &pb.ProvenLeaf{Index: l.Index, Leaf: l.Leaf}
		for _, h := range l.Proof {
			pl.Proof = append(pl.Proof, uint32(len(lp.Nodes)))
			lp.Nodes = append(lp.Nodes, h)
		}
		lp.Leaves = append(lp.Leaves, pl)
	}
	if len(bu.Trace) > 0 {
		tr := &pb.TraceResponse{}
		if err := protojson.Unmarshal(bu.Trace, tr); err != nil {
			return nil, fmt.Errorf("%w: trace: %w", ErrMalformedBundle, err)
		}
		if tr.Proofs != nil {
			return nil, fmt.Errorf("%w: trace: proofs belong in leaves", ErrMalformedBundle)
		}
		tr.Proofs = lp
		if err := VerifyTrace(tr, p); err != nil {
			return nil, fmt.Errorf("trace: %w", err)
		}
		if !slices.ContainsFunc(tr.GetNodes(), bu.Subject.startsAt) {
			return nil, fmt.Errorf("%w: trace: no node is the subject's start", ErrVerification)
		}
		out.Trace = tr
	}
	if len(bu.Run) > 0 {
		run := &pb.ListRunEventsResponse{}
		if err := protojson.Unmarshal(bu.Run, run); err != nil {
			return nil, fmt.Errorf("%w: run: %w", ErrMalformedBundle, err)
		}
		if run.Proofs != nil {
			return nil, fmt.Errorf("%w: run: proofs belong in leaves", ErrMalformedBundle)
		}
		run.Proofs = lp
		if err := VerifyRunEvents(run, bu.Subject.Tenant, bu.Subject.RunID, p); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		out.Run = run
	}
	return out, nil
}

// leavesOf expands LeafProofs into bundle leaves, in index order.
func leavesOf(lp *pb.LeafProofs) ([]BundleLeaf, error) {
	var out []BundleLeaf
	for _, l := range lp.GetLeaves() {
		bl := BundleLeaf{Index: l.GetIndex(), Leaf: l.GetLeaf()}
		for _, r := range l.GetProof() {
			if int(r) >= len(lp.GetNodes()) {
				return nil, fmt.Errorf("%w: leaf %d: proof node %d out of range", ErrVerification, l.GetIndex(), r)
			}
			bl.Proof = append(bl.Proof, lp.GetNodes()[r])
		}
		out = append(out, bl)
	}
	slices.SortFunc(out, func(a, b BundleLeaf) int { return cmp.Compare(a.Index, b.Index) })
	return out, nil
}

func newBundle(p *Policy, subject BundleSubject, lp *pb.LeafProofs, now time.Time) (*Bundle, error) {
	leaves, err := leavesOf(lp)
	if err != nil {
		return nil, err
	}
	return &Bundle{
		Format:        BundleFormat,
		Created:       now.UTC().Truncate(time.Second),
		Subject:       subject,
		LogKey:        p.LogKey(),
		WitnessPolicy: string(p.WitnessPolicy()),
		Checkpoint:    string(lp.GetCheckpoint()),
		Leaves:        leaves,
	}, nil
}

var bundleJSON = protojson.MarshalOptions{Multiline: true, Indent: "  "}

// TraceBundle builds a bundle from a verified Trace answer to req. The
// bundle is verified before it is returned.
func TraceBundle(req *pb.TraceRequest, resp *pb.TraceResponse, p *Policy, now time.Time) (*Bundle, error) {
	s := BundleSubject{Kind: "trace", Tenant: req.GetTenant(), EventID: req.GetEventId(), RunID: req.GetRunId(), Direction: req.GetDirection().String()}
	if a := req.GetAsset(); a != nil {
		s.AssetURI, s.Version, s.RecordKey = a.GetUri(), a.GetVersion(), a.GetRecordKey()
	}
	bu, err := newBundle(p, s, resp.GetProofs(), now)
	if err != nil {
		return nil, err
	}
	graph := &pb.TraceResponse{Nodes: resp.GetNodes(), Edges: resp.GetEdges(), Gaps: resp.GetGaps(), Truncated: resp.GetTruncated()}
	if bu.Trace, err = bundleJSON.Marshal(graph); err != nil {
		return nil, err
	}
	return bu, checkBuilt(bu, p)
}

// RunBundle builds a bundle from a verified ListRunEvents answer.
func RunBundle(tenant, runID string, resp *pb.ListRunEventsResponse, p *Policy, now time.Time) (*Bundle, error) {
	bu, err := newBundle(p, BundleSubject{Kind: "run", Tenant: tenant, RunID: runID}, resp.GetProofs(), now)
	if err != nil {
		return nil, err
	}
	list := &pb.ListRunEventsResponse{Events: resp.GetEvents(), Gaps: resp.GetGaps()}
	if bu.Run, err = bundleJSON.Marshal(list); err != nil {
		return nil, err
	}
	return bu, checkBuilt(bu, p)
}

// EntriesBundle builds a bundle of verified entries, which must all be
// proven into the same checkpoint.
func EntriesBundle(entries []*VerifiedEntry, p *Policy, now time.Time) (*Bundle, error) {
	if len(entries) == 0 {
		return nil, errors.New("no entries")
	}
	s := BundleSubject{Kind: "entries", Tenant: entries[0].Entry.GetEvent().GetTenant()}
	if len(entries) == 1 {
		s.EventID = entries[0].Entry.GetEvent().GetEventId()
	}
	bu := &Bundle{Format: BundleFormat, Created: now.UTC().Truncate(time.Second), Subject: s, LogKey: p.LogKey(),
		WitnessPolicy: string(p.WitnessPolicy()), Checkpoint: string(entries[0].CheckpointNote)}
	for _, e := range entries {
		if string(e.CheckpointNote) != bu.Checkpoint {
			return nil, fmt.Errorf("entries %d and %d are proven into different checkpoints", entries[0].Index, e.Index)
		}
		bu.Leaves = append(bu.Leaves, BundleLeaf{Index: e.Index, Leaf: e.Leaf, Proof: e.Proof})
	}
	return bu, checkBuilt(bu, p)
}

func checkBuilt(bu *Bundle, p *Policy) error {
	b, err := bu.Marshal()
	if err != nil {
		return err
	}
	_, err = VerifyBundle(b, p)
	return err
}
