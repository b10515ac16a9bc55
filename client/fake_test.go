package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// lie is one way the fake server deceives its clients.
type lie int

const (
	honest           lie = iota
	lieFork              // serves checkpoints of another tree with the same first leaves but a different leaf
	lieBadProof          // inclusion proofs with one hash flipped
	lieNoQuorum          // checkpoints without the witnesses' cosignatures
	lieEntryMismatch     // GetEntry's decoded entry is not what the leaf holds
	lieTraceEdge         // Trace answers with one edge re-pointed
	lieConsistency       // consistency proofs with one hash flipped
	lieTile              // a level-0 hash tile with one hash flipped
	lieEntryBundle       // an entry bundle with one leaf byte flipped
	lieReceipt           // Append receipts for the next leaf
	lieRunSummary        // ListRunEvents summaries naming another step
	grownLog             // honest: partial tiles are gone, the "full" tiles hold all 24 leaves
)

// fakeServer is a test double of provlogd: LogService, LineageService
// (Trace over a one-event answer) and /log/ over HTTP, from a testLog, plus
// one witness's GET /<sha256(origin)>/checkpoint. It tells the truth unless
// told to lie.
type fakeServer struct {
	pb.UnimplementedLogServiceServer
	pb.UnimplementedLineageServiceServer
	t       *testing.T
	l       *testLog
	fork    *testLog // the tree lieFork serves
	wit     []testWitness
	policy  []byte
	grpc    string
	httpURL string

	mu   sync.Mutex
	size int64 // published tree size
	// notes keeps each checkpoint once signed: like a real log, the fake
	// serves one note per published size (cosignatures carry a time, so
	// signing again a second later gives other bytes).
	notes map[noteKey][]byte
	lie   lie
	// witnessSize is the size of the checkpoint the witness endpoint
	// serves; 0 for 404.
	witnessSize int64
	// appendFailures makes the next N Append calls fail with Unavailable
	// and a RetryInfo of appendDelay.
	appendFailures int
	appendDelay    time.Duration
	appendCalls    int
	// batchFailEvery makes AppendBatch refuse, with Unavailable, every
	// event whose id is in batchFail, once.
	batchFail  map[string]bool
	batchCalls int
	appended   map[string]uint64
}

func newFakeServer(t *testing.T, witnesses int) *fakeServer {
	t.Helper()
	l := newTestLog(t)
	f := &fakeServer{t: t, l: l, size: int64(len(l.leaves)), appended: map[string]uint64{}}

	// The fork: the same log, with leaf 3 of another content.
	fork := *l
	fork.leaves = append([][]byte(nil), l.leaves...)
	fork.hashes = nil
	ev := proto.Clone(l.events[3]).(*pb.ProvenanceEvent)
	ev.Rationale = "rewritten history"
	_, leaf, err := event.NewLeaf(ev, time.Date(2026, 3, 1, 12, 0, 3, 0, time.UTC), "receipt-test")
	if err != nil {
		t.Fatal(err)
	}
	fork.leaves[3] = leaf
	for i, lf := range fork.leaves {
		hs, err := tlog.StoredHashes(int64(i), lf, fork.hashes)
		if err != nil {
			t.Fatal(err)
		}
		fork.hashes = append(fork.hashes, hs...)
	}
	f.fork = &fork

	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	pb.RegisterLogServiceServer(gs, f)
	pb.RegisterLineageServiceServer(gs, f)
	go gs.Serve(gl)
	t.Cleanup(gs.Stop)
	f.grpc = gl.Addr().String()

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(f.serveHTTP)}
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })
	f.httpURL = "http://" + hl.Addr().String()

	// The policy: every witness must cosign; witness 0 is reachable at
	// the fake's HTTP address.
	var pol strings.Builder
	for i := range witnesses {
		w := newTestWitness(t, fmt.Sprintf("w%d.example", i))
		f.wit = append(f.wit, w)
		fmt.Fprintf(&pol, "witness w%d %s", i, w.vkey)
		if i == 0 {
			pol.WriteString(" " + f.httpURL)
		}
		pol.WriteString("\n")
	}
	if witnesses > 0 {
		fmt.Fprintf(&pol, "group both %d", witnesses)
		for i := range witnesses {
			fmt.Fprintf(&pol, " w%d", i)
		}
		pol.WriteString("\nquorum both\n")
	}
	f.policy = []byte(pol.String())
	f.witnessSize = f.size
	return f
}

func (f *fakeServer) setLie(l lie) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lie = l
}

func (f *fakeServer) setSize(n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.size = n
}

func (f *fakeServer) state() (*testLog, int64, lie) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lie == lieFork {
		return f.fork, f.size, f.lie
	}
	return f.l, f.size, f.lie
}

type noteKey struct {
	l        *testLog
	n        int64
	noQuorum bool
}

// checkpointOf signs the tree of size n of l, cosigned unless lying.
func (f *fakeServer) checkpointOf(l *testLog, n int64, noQuorum bool) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := noteKey{l, n, noQuorum}
	if b, ok := f.notes[k]; ok {
		return b
	}
	if f.notes == nil {
		f.notes = map[noteKey][]byte{}
	}
	signers := []note.Signer{l.signer}
	if !noQuorum {
		for _, w := range f.wit {
			signers = append(signers, w.cosig)
		}
	}
	f.notes[k] = signNote(f.t, l.checkpointText(n), signers...)
	return f.notes[k]
}

func (f *fakeServer) checkpoint() []byte {
	l, n, lie := f.state()
	return f.checkpointOf(l, n, lie == lieNoQuorum)
}

// policyFor is the client policy for this server.
func (f *fakeServer) clientPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := ParsePolicy(f.l.vkey, f.policy)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fakeServer) config() Config {
	return Config{Addr: f.grpc, HTTP: f.httpURL, Token: "test-token", LogKey: f.l.vkey, WitnessPolicy: f.policy}
}

func (f *fakeServer) newClient(t *testing.T, sleeps *[]time.Duration) *Client {
	t.Helper()
	opts := Options{Retry: Retry{Attempts: 5, Base: time.Millisecond, Max: 4 * time.Millisecond}}
	if sleeps != nil {
		opts.Sleep = func(_ context.Context, d time.Duration) error { *sleeps = append(*sleeps, d); return nil }
	}
	c, err := New(f.config(), f.clientPolicy(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func flipHash(b []byte) []byte { b = bytes.Clone(b); b[0] ^= 0x80; return b }

func (f *fakeServer) Append(ctx context.Context, req *pb.AppendRequest) (*pb.AppendResponse, error) {
	f.mu.Lock()
	f.appendCalls++
	if f.appendFailures > 0 {
		f.appendFailures--
		f.mu.Unlock()
		st, _ := status.New(codes.Unavailable, "busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(f.appendDelay)})
		return nil, st.Err()
	}
	f.mu.Unlock()
	return f.appendOne(req.GetEvent(), req.GetWait())
}

// appendOne "appends" an event that is already one of the test log's
// leaves (the fake cannot grow its tree): it answers the index, duplicate
// from the second time on.
func (f *fakeServer) appendOne(ev *pb.ProvenanceEvent, wait pb.WaitFor) (*pb.AppendResponse, error) {
	l, n, _ := f.state()
	for i, e := range f.l.events {
		if e.GetEventId() != ev.GetEventId() {
			continue
		}
		if !proto.Equal(e, ev) {
			return nil, status.Error(codes.AlreadyExists, "event id used with other content")
		}
		f.mu.Lock()
		_, dup := f.appended[ev.GetEventId()]
		f.appended[ev.GetEventId()] = uint64(i)
		f.mu.Unlock()
		h := event.LeafHash(l.leaves[i])
		resp := &pb.AppendResponse{Index: uint64(i), LeafHash: h[:], Duplicate: dup}
		if wait == pb.WaitFor_WAIT_FOR_PUBLISHED {
			j := i
			if _, _, lie := f.state(); lie == lieReceipt {
				j = i + 1
			}
			resp.Receipt = l.receipt(int64(j), n)
			resp.Receipt.Checkpoint = f.checkpoint()
		}
		return resp, nil
	}
	return nil, status.Error(codes.InvalidArgument, "event_id: the fake server only knows the sample events")
}

func (f *fakeServer) AppendBatch(ctx context.Context, req *pb.AppendBatchRequest) (*pb.AppendBatchResponse, error) {
	f.mu.Lock()
	f.batchCalls++
	f.mu.Unlock()
	out := &pb.AppendBatchResponse{}
	for _, ev := range req.GetEvents() {
		f.mu.Lock()
		fail := f.batchFail[ev.GetEventId()]
		delete(f.batchFail, ev.GetEventId())
		f.mu.Unlock()
		if fail {
			out.Results = append(out.Results, &pb.AppendResult{Error: &pb.AppendError{Code: int32(codes.Unavailable), Message: "busy"}})
			continue
		}
		r, err := f.appendOne(ev, req.GetWait())
		if err != nil {
			st, _ := status.FromError(err)
			out.Results = append(out.Results, &pb.AppendResult{Error: &pb.AppendError{Code: int32(st.Code()), Message: st.Message()}})
			continue
		}
		out.Results = append(out.Results, &pb.AppendResult{Index: r.Index, LeafHash: r.LeafHash, Duplicate: r.Duplicate, Receipt: r.Receipt})
	}
	return out, nil
}

// AppendStream answers each request as AppendBatch, in request order.
func (f *fakeServer) AppendStream(stream grpc.BidiStreamingServer[pb.AppendStreamRequest, pb.AppendStreamResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, _ := f.AppendBatch(stream.Context(), &pb.AppendBatchRequest{Events: req.GetEvents(), Wait: req.GetWait()})
		if err := stream.Send(&pb.AppendStreamResponse{CorrelationId: req.GetCorrelationId(), Results: b.GetResults()}); err != nil {
			return err
		}
	}
}

func (f *fakeServer) GetCheckpoint(ctx context.Context, _ *pb.GetCheckpointRequest) (*pb.GetCheckpointResponse, error) {
	return &pb.GetCheckpointResponse{Checkpoint: f.checkpoint()}, nil
}

func (f *fakeServer) GetEntry(ctx context.Context, req *pb.GetEntryRequest) (*pb.GetEntryResponse, error) {
	l, n, lie := f.state()
	i := req.GetIndex()
	if i >= uint64(n) {
		return nil, status.Error(codes.NotFound, "not found")
	}
	e, err := event.DecodeLeaf(l.leaves[i])
	if err != nil {
		return nil, err
	}
	if lie == lieEntryMismatch {
		e.Submitter = "someone-else"
	}
	h := event.LeafHash(l.leaves[i])
	return &pb.GetEntryResponse{Index: i, Leaf: l.leaves[i], LeafHash: h[:], Entry: e}, nil
}

func (f *fakeServer) GetInclusionProof(ctx context.Context, req *pb.GetInclusionProofRequest) (*pb.GetInclusionProofResponse, error) {
	l, n, lie := f.state()
	r := l.receipt(int64(req.GetIndex()), n)
	if lie == lieBadProof {
		r.InclusionProof[1] = flipHash(r.InclusionProof[1])
	}
	h := event.LeafHash(r.Leaf)
	return &pb.GetInclusionProofResponse{Index: r.Index, TreeSize: uint64(n), LeafHash: h[:], Proof: r.InclusionProof, Checkpoint: f.checkpoint()}, nil
}

func (f *fakeServer) GetConsistencyProof(ctx context.Context, req *pb.GetConsistencyProofRequest) (*pb.GetConsistencyProofResponse, error) {
	l, _, lie := f.state()
	p, err := tlog.ProveTree(int64(req.GetToSize()), int64(req.GetFromSize()), l.hashes)
	if err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	out := &pb.GetConsistencyProofResponse{FromSize: req.GetFromSize(), ToSize: req.GetToSize()}
	for _, h := range p {
		out.Proof = append(out.Proof, bytes.Clone(h[:]))
	}
	if lie == lieConsistency && len(out.Proof) > 0 {
		out.Proof[0] = flipHash(out.Proof[0])
	}
	return out, nil
}

// Trace answers, whatever the request, the lineage of sample event 1 (it
// reads the contacts table): the activity, its run, the asset it read.
func (f *fakeServer) Trace(ctx context.Context, req *pb.TraceRequest) (*pb.TraceResponse, error) {
	resp := f.traceAnswer(1)
	if _, _, lie := f.state(); lie == lieTraceEdge {
		resp.Edges[0].Kind = pb.EdgeKind_EDGE_KIND_OUTPUT
		resp.Edges[0].From, resp.Edges[0].To = resp.Edges[0].To, resp.Edges[0].From
	}
	return resp, nil
}

func (f *fakeServer) traceAnswer(i int) *pb.TraceResponse {
	l, n, _ := f.state()
	ev := l.events[i]
	idx := uint64(i)
	in := ev.GetInputs()[0]
	asset := &pb.LineageNode{Id: "asset:" + in.GetUri(), Kind: pb.NodeKind_NODE_KIND_ASSET, LeafIndex: idx,
		Asset: &pb.AssetRef{Uri: in.GetUri(), Version: in.GetVersion(), RecordKey: in.GetRecordKey()}, Classification: in.GetClassification()}
	act := &pb.LineageNode{Id: "event:" + strconv.Itoa(i), Kind: pb.NodeKind_NODE_KIND_ACTIVITY, LeafIndex: idx,
		EventId: ev.GetEventId(), Operation: ev.GetOperation(), ActorId: ev.GetActor().GetId(), EventTime: ev.GetEventTime(),
		WorkflowId: ev.GetWorkflow().GetWorkflowId(), StepId: ev.GetWorkflow().GetStepId(), RunId: ev.GetWorkflow().GetRunId()}
	run := &pb.LineageNode{Id: "run:" + ev.GetWorkflow().GetRunId(), Kind: pb.NodeKind_NODE_KIND_RUN, LeafIndex: idx, RunId: ev.GetWorkflow().GetRunId()}
	r := l.receipt(int64(i), n)
	proofs := &pb.LeafProofs{Checkpoint: f.checkpoint(), TreeSize: uint64(n), Nodes: r.InclusionProof,
		Leaves: []*pb.ProvenLeaf{{Index: idx, Leaf: r.Leaf}}}
	for j := range r.InclusionProof {
		proofs.Leaves[0].Proof = append(proofs.Leaves[0].Proof, uint32(j))
	}
	return &pb.TraceResponse{
		Nodes: []*pb.LineageNode{asset, act, run},
		Edges: []*pb.LineageEdge{
			{From: asset.Id, To: act.Id, Kind: pb.EdgeKind_EDGE_KIND_INPUT, LeafIndex: idx},
			{From: act.Id, To: run.Id, Kind: pb.EdgeKind_EDGE_KIND_STEP_OF_RUN, LeafIndex: idx},
		},
		Proofs: proofs,
	}
}

func (f *fakeServer) ListRunEvents(ctx context.Context, req *pb.ListRunEventsRequest) (*pb.ListRunEventsResponse, error) {
	l, n, _ := f.state()
	out := &pb.ListRunEventsResponse{}
	var leaves []uint64
	for i, ev := range l.events[:n] {
		if ev.GetTenant() == req.GetTenant() && ev.GetWorkflow().GetRunId() == req.GetRunId() {
			out.Events = append(out.Events, &pb.EventSummary{LeafIndex: uint64(i), EventId: ev.GetEventId(), Operation: ev.GetOperation(),
				EventTime: ev.GetEventTime(), ActorId: ev.GetActor().GetId(), RunId: ev.GetWorkflow().GetRunId(), StepId: ev.GetWorkflow().GetStepId()})
			leaves = append(leaves, uint64(i))
		}
	}
	if len(leaves) == 0 {
		return nil, status.Error(codes.NotFound, "no such run")
	}
	if _, _, lie := f.state(); lie == lieRunSummary {
		out.Events[1].StepId = "another-step"
	}
	out.Proofs = &pb.LeafProofs{Checkpoint: f.checkpoint(), TreeSize: uint64(n)}
	for _, i := range leaves {
		r := l.receipt(int64(i), n)
		pl := &pb.ProvenLeaf{Index: i, Leaf: r.Leaf}
		for _, h := range r.InclusionProof {
			pl.Proof = append(pl.Proof, uint32(len(out.Proofs.Nodes)))
			out.Proofs.Nodes = append(out.Proofs.Nodes, h)
		}
		out.Proofs.Leaves = append(out.Proofs.Leaves, pl)
	}
	return out, nil
}

// serveHTTP serves /log/checkpoint, /log/tile/... and the witness's
// /<hex sha256(origin)>/checkpoint.
func (f *fakeServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	l, n, lie := f.state()
	p := r.URL.Path
	oh := sha256.Sum256([]byte(testOrigin))
	switch {
	case p == "/log/checkpoint":
		w.Write(f.checkpoint())
	case p == "/"+hex.EncodeToString(oh[:])+"/checkpoint":
		f.mu.Lock()
		ws := f.witnessSize
		f.mu.Unlock()
		if ws == 0 {
			http.NotFound(w, r)
			return
		}
		// The witness saw the honest log.
		w.Write(f.checkpointOf(f.l, ws, false))
	case lie == grownLog && strings.Contains(p, ".p/"):
		http.NotFound(w, r)
	case strings.HasPrefix(p, "/log/tile/entries/"):
		bundle, width, ok := parseTilePath(strings.TrimPrefix(p, "/log/tile/entries/"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		var b []byte
		for i := bundle * 256; i < bundle*256+uint64(width) && i < uint64(n); i++ {
			leaf := l.leaves[i]
			if lie == lieEntryBundle && i == 5 {
				leaf = bytes.Clone(leaf)
				leaf[len(leaf)-3] ^= 1
			}
			b = append(b, byte(len(leaf)>>8), byte(len(leaf)))
			b = append(b, leaf...)
		}
		w.Write(b)
	case strings.HasPrefix(p, "/log/tile/"):
		rest := strings.TrimPrefix(p, "/log/tile/")
		lvl, rest, _ := strings.Cut(rest, "/")
		level, err := strconv.Atoi(lvl)
		idx, width, ok := parseTilePath(rest)
		if err != nil || !ok {
			http.NotFound(w, r)
			return
		}
		tile := tlog.Tile{H: 8, L: level, N: int64(idx), W: width}
		if lie == grownLog && width == 256 && level == 0 && idx == 0 {
			tile.W = len(l.leaves) // the whole log stands for the full tile
		}
		data, err := tlog.ReadTileData(tile, l.hashes)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if lie == lieTile && level == 0 && idx == 0 {
			data = bytes.Clone(data)
			data[7*32] ^= 1 // leaf 7's hash
		}
		w.Write(data)
	default:
		http.NotFound(w, r)
	}
}

// parseTilePath parses "x001/234[.p/W]".
func parseTilePath(s string) (uint64, int, bool) {
	width := 256
	if base, w, ok := strings.Cut(s, ".p/"); ok {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > 255 {
			return 0, 0, false
		}
		s, width = base, n
	}
	var idx uint64
	for _, part := range strings.Split(s, "/") {
		part = strings.TrimPrefix(part, "x")
		n, err := strconv.ParseUint(part, 10, 64)
		if err != nil || len(part) != 3 {
			return 0, 0, false
		}
		idx = idx*1000 + n
	}
	return idx, width, true
}

// checkpointRoot is the root hash of the tree of size n.
func (l *testLog) checkpointRoot(n int64) ([]byte, error) {
	root, err := tlog.TreeHash(n, l.hashes)
	return root[:], err
}
