package lineage

import (
	"strconv"
	"time"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// NodeKind says what a Node is.
type NodeKind uint8

const (
	// NodeAsset is an asset as events referenced it: a URI, a version and
	// a record key, the latter two possibly empty.
	NodeAsset NodeKind = iota + 1
	// NodeActivity is an event: one leaf of the log.
	NodeActivity
	// NodeRun is a workflow run.
	NodeRun
)

func (k NodeKind) String() string {
	switch k {
	case NodeAsset:
		return "asset"
	case NodeActivity:
		return "activity"
	case NodeRun:
		return "run"
	}
	return "NodeKind(" + strconv.Itoa(int(k)) + ")"
}

// Node is a vertex of a lineage answer. Exactly one of Asset, Activity and
// Run is set, as Kind says.
type Node struct {
	// ID identifies the node within an answer, stably across answers:
	// AssetNodeID, ActivityNodeID or RunNodeID of what it stands for.
	ID   string
	Kind NodeKind
	// Leaf is the leaf that asserts the node: an activity's own leaf; for
	// an asset, the earliest leaf in the answer that referenced it as
	// such (whose digest, classification and fields the node shows), or,
	// for a start asset no event named exactly, the lowest leaf among its
	// edges; for a run, the lowest leaf among its edges. In History and
	// RunEvents answers, the leaf of the event the node comes from.
	Leaf     uint64
	Asset    *Asset
	Activity *Activity
	Run      *Run
}

// Asset is what an event said about an asset. Digest, Classification and
// Fields come from the leaf Node.Leaf names when several events reference
// the same asset (they may differ: a consumer may see another digest than
// the producer wrote).
type Asset struct {
	URI            string
	Version        string
	RecordKey      string
	Digest         string
	Classification string
	Fields         []string
}

// Activity is an event, as its leaf records it.
type Activity struct {
	EventID      string
	Operation    provlogv1.Operation
	EventTime    time.Time // zero when the event had none
	ReceivedTime time.Time
	Submitter    string
	Actor        Actor
	Workflow     Workflow
	// SubjectEventIDs are the events an approval or override acts on.
	SubjectEventIDs []string
	Rationale       string
}

// Actor is who did it.
type Actor struct {
	Type        provlogv1.ActorType
	ID          string
	OnBehalfOf  string
	DisplayName string
}

// Workflow places an activity in a run.
type Workflow struct {
	Platform        string
	PlatformVersion string
	WorkflowID      string
	WorkflowVersion string
	RunID           string
	ParentRunID     string
	StepID          string
}

// Run is a workflow run, as its events describe it.
type Run struct {
	RunID      string
	WorkflowID string
	Platform   string
	// ParentRunID is the first parent_run_id any of the run's events named.
	ParentRunID string
}

// AssetNodeID is the Node.ID of an asset: "asset:" and the quoted URI, then
// "@" and the quoted version, then "#" and the quoted record key, each part
// only when set.
func AssetNodeID(uri, version, recordKey string) string {
	s := "asset:" + strconv.Quote(uri)
	if version != "" {
		s += "@" + strconv.Quote(version)
	}
	if recordKey != "" {
		s += "#" + strconv.Quote(recordKey)
	}
	return s
}

// ActivityNodeID is the Node.ID of the event at leaf: "event:" and the index.
func ActivityNodeID(leaf uint64) string { return "event:" + strconv.FormatUint(leaf, 10) }

// RunNodeID is the Node.ID of a run: "run:" and the quoted run id.
func RunNodeID(runID string) string { return "run:" + strconv.Quote(runID) }

// EdgeKind says what an Edge asserts.
type EdgeKind uint8

const (
	// EdgeInput: asset From was an input of activity To.
	EdgeInput EdgeKind = iota + 1
	// EdgeOutput: activity From produced asset To.
	EdgeOutput
	// EdgeField: field FromField of asset From was a source of field
	// ToField of asset To, in activity Leaf.
	EdgeField
	// EdgeApproves: approval activity From acts on activity To.
	EdgeApproves
	// EdgeOverrides: override activity From acts on activity To.
	EdgeOverrides
	// EdgeStepOfRun: activity From is a step of run To.
	EdgeStepOfRun
	// EdgeParentRun: run From names run To as its parent.
	EdgeParentRun
	// EdgeMatches: assets From and To are the same data under the matching
	// rule (doc.go), one reference leaving out the version or the record
	// key. From is how the event at Leaf referenced it (a producer found
	// upstream, a consumer found downstream, a check of a step's input),
	// To the reference the traversal looked for.
	EdgeMatches
)

func (k EdgeKind) String() string {
	switch k {
	case EdgeInput:
		return "input"
	case EdgeOutput:
		return "output"
	case EdgeField:
		return "field"
	case EdgeApproves:
		return "approves"
	case EdgeOverrides:
		return "overrides"
	case EdgeStepOfRun:
		return "step_of_run"
	case EdgeParentRun:
		return "parent_run"
	case EdgeMatches:
		return "matches"
	}
	return "EdgeKind(" + strconv.Itoa(int(k)) + ")"
}

// Edge is an arc of a lineage answer, asserted by the event at Leaf.
type Edge struct {
	From, To string // Node IDs
	Kind     EdgeKind
	Leaf     uint64
	// FromField, ToField and Transformation are set on EdgeField.
	FromField, ToField string
	Transformation     string
}

// Direction is which way a trace goes from its start.
type Direction uint8

const (
	// Upstream follows where data came from: producers of the start's
	// inputs, their inputs' producers, and so on.
	Upstream Direction = iota + 1
	// Downstream follows where data went: consumers of the start's
	// outputs, their outputs' consumers, and so on.
	Downstream
	// Both is Upstream and Downstream from the same start.
	Both
)

// Filters narrow a trace: a hop reaches only activities that pass every
// non-empty filter (doc.go, "Trace").
type Filters struct {
	// Since and Until bound event_time: Since <= t < Until; zero: open.
	Since, Until time.Time
	// ActorIDs, WorkflowIDs, Operations: the activity's must be listed.
	ActorIDs    []string
	WorkflowIDs []string
	Operations  []provlogv1.Operation
	// Classifications: one of the activity's inputs or outputs must carry
	// a listed classification.
	Classifications []string
}

// TraceQuery asks for the lineage graph around a start: exactly one of an
// asset (AssetURI, with optional AssetVersion and RecordKey), an EventID or
// a RunID.
type TraceQuery struct {
	// Tenant scopes everything; required.
	Tenant       string
	AssetURI     string
	AssetVersion string
	RecordKey    string
	EventID      string
	RunID        string
	Direction    Direction // required
	// Depth is the most activity hops from the start, 1..MaxDepth; 0 means
	// DefaultDepth.
	Depth   int
	Filters Filters
	// MaxNodes bounds the graph; 0 means DefaultMaxNodes. Graph.Truncated
	// says it was reached.
	MaxNodes int
	// TreeSize, when non-zero, restricts the answer to leaves below it
	// (the size of the checkpoint the answer will be proven against). It
	// may not exceed the watermark. Zero means the watermark.
	TreeSize uint64
}

// Trace limits.
const (
	DefaultDepth    = 10
	MaxDepth        = 20
	DefaultMaxNodes = 2000
	// MaxMaxNodes bounds TraceQuery.MaxNodes.
	MaxMaxNodes = 100_000
)

// Graph is a lineage answer.
type Graph struct {
	// TreeSize is the tree size the answer describes: every cited leaf is
	// below it.
	TreeSize uint64
	// Nodes sorted by ID; Edges by From, To, Kind, Leaf, fields.
	Nodes []*Node
	Edges []*Edge
	// Leaves are all leaf indexes that nodes, edges and gaps cite, sorted,
	// without duplicates: the leaves to prove.
	Leaves []uint64
	// Gaps are the open gaps of the runs in the graph.
	Gaps []Gap
	// Truncated is set when MaxNodes stopped the traversal.
	Truncated bool
}

// HistoryQuery asks for the events that touched an asset. A version or
// record key left empty matches every version or record key; an event that
// referenced the asset without a version matches every version asked for
// (the matching rule, doc.go).
type HistoryQuery struct {
	Tenant    string // required
	URI       string // required
	Version   string
	RecordKey string
	PageToken string
	// Limit is the page size: 1..MaxPageSize; 0 means DefaultPageSize.
	Limit int
	// TreeSize, when non-zero, restricts the answer to leaves below it.
	TreeSize uint64
}

// Page sizes for History, Find and OpenGaps.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Role says how an event used an asset.
type Role uint8

const (
	// RoleInput: the asset was among the event's inputs.
	RoleInput Role = iota + 1
	// RoleOutput: the asset was among the event's outputs.
	RoleOutput
)

func (r Role) String() string {
	switch r {
	case RoleInput:
		return "input"
	case RoleOutput:
		return "output"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// HistoryPage is a page of events, newest first.
type HistoryPage struct {
	TreeSize uint64
	Entries  []HistoryEntry
	// Leaves are the entries' leaves, sorted.
	Leaves []uint64
	// NextPageToken continues the listing; empty on the last page.
	NextPageToken string
}

// HistoryEntry is one event of a page. Uses says how the event used the
// asset asked for (History only; empty for Find).
type HistoryEntry struct {
	Event *Node
	Uses  []AssetUse
}

// AssetUse is one reference of an event to an asset.
type AssetUse struct {
	Role  Role
	Asset *Node
}

// RunEvents is every event of a run, in log order.
type RunEvents struct {
	TreeSize uint64
	Run      *Node
	Events   []*Node
	Leaves   []uint64
	Gaps     []Gap
	// Truncated is set when the run has more than MaxRunEvents events;
	// Events then holds the first MaxRunEvents.
	Truncated bool
}

// MaxRunEvents bounds RunEvents.
const MaxRunEvents = 10_000

// Filter selects events for Find. Empty fields select everything.
type Filter struct {
	EventID        string
	RunID          string
	StepID         string
	WorkflowID     string
	ActorID        string
	Operation      provlogv1.Operation
	Classification string
	// Since and Until bound event_time: Since <= t < Until.
	Since, Until time.Time
	// TreeSize, when non-zero, restricts the answer to leaves below it.
	TreeSize uint64
}
