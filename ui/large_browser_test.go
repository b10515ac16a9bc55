package ui_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/provlog/provlog/ui"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// largeTrace builds a TraceResponse of over 2,000 nodes with proofs that
// verify under vkey, some masked nodes, approvals and two gaps.
func largeTrace(t *testing.T) (resp []byte, vkey string, nodes int) {
	t.Helper()
	// 20 layers of 52 assets, 19 layers of 52 steps between them (each
	// reads two assets of its layer and writes one of the next), 19 runs.
	const layers, width = 20, 52
	skey, vkey, err := note.GenerateKey(rand.Reader, "provlog.test/large")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &pb.TraceResponse{}
	var leaves [][]byte
	uri := func(l, j int) string { return fmt.Sprintf("s3://big/l%02d/part-%02d", l, j) }
	assetID := func(l, j int) string { return fmt.Sprintf("asset:%q", uri(l, j)) }
	stepLeaf := map[[2]int]uint64{}
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	// Every step is a real event in a real leaf, so the page's check that
	// each node and edge is what its leaf says passes.
	for l := range layers - 1 {
		run := fmt.Sprintf("run-%02d", l)
		for j := range width {
			op := pb.Operation_OPERATION_TRANSFORM
			if j%25 == 3 {
				op = pb.Operation_OPERATION_APPROVAL
			}
			id := fmt.Sprintf("big:l%d-%d", l, j)
			ev := &pb.ProvenanceEvent{SchemaVersion: 1, EventId: id, Tenant: "acme", Operation: op, EventTime: timestamppb.New(t0.Add(time.Duration(l*width+j) * time.Second)),
				Actor:    &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "svc"},
				Workflow: &pb.Workflow{Platform: "test", WorkflowId: "wf-big", RunId: run, StepId: fmt.Sprintf("step-%d", j)},
				Inputs:   []*pb.Asset{{Uri: uri(l, j), Classification: "internal"}, {Uri: uri(l, (j+1)%width), Classification: "internal"}},
				Outputs:  []*pb.Asset{{Uri: uri(l+1, j), Classification: "internal"}},
			}
			if op == pb.Operation_OPERATION_APPROVAL {
				ev.Rationale = "ok"
			}
			_, leaf, err := event.NewLeaf(ev, t0.Add(time.Hour), "svc")
			if err != nil {
				t.Fatalf("leaf of %s: %v", id, err)
			}
			leaves = append(leaves, leaf)
			li := uint64(len(leaves) - 1)
			stepLeaf[[2]int{l, j}] = li
			act := &pb.LineageNode{Id: "event:" + id, Kind: pb.NodeKind_NODE_KIND_ACTIVITY, LeafIndex: li, EventId: id, Operation: op,
				ActorId: "svc", RunId: run, StepId: ev.Workflow.StepId, WorkflowId: "wf-big", EventTime: ev.EventTime}
			if j == 7 {
				act.ActorId, act.Masked = "", true
			}
			tr.Nodes = append(tr.Nodes, act)
			tr.Edges = append(tr.Edges,
				&pb.LineageEdge{From: assetID(l, j), To: act.Id, Kind: pb.EdgeKind_EDGE_KIND_INPUT, LeafIndex: li},
				&pb.LineageEdge{From: assetID(l, (j+1)%width), To: act.Id, Kind: pb.EdgeKind_EDGE_KIND_INPUT, LeafIndex: li},
				&pb.LineageEdge{From: act.Id, To: assetID(l+1, j), Kind: pb.EdgeKind_EDGE_KIND_OUTPUT, LeafIndex: li},
				&pb.LineageEdge{From: act.Id, To: fmt.Sprintf("run:%q", run), Kind: pb.EdgeKind_EDGE_KIND_STEP_OF_RUN, LeafIndex: li},
			)
		}
		tr.Nodes = append(tr.Nodes, &pb.LineageNode{Id: fmt.Sprintf("run:%q", run), Kind: pb.NodeKind_NODE_KIND_RUN, RunId: run, LeafIndex: stepLeaf[[2]int{l, 0}]})
	}
	for l := range layers {
		for j := range width {
			li := stepLeaf[[2]int{min(l, layers-2), j}] // read by its layer's step, or written by the last
			n := &pb.LineageNode{Id: assetID(l, j), Kind: pb.NodeKind_NODE_KIND_ASSET, LeafIndex: li, Asset: &pb.AssetRef{Uri: uri(l, j)}, Classification: "internal"}
			tr.Nodes = append(tr.Nodes, n)
		}
	}
	tr.Gaps = []*pb.Gap{
		{Kind: "missing_run_complete", Detail: "run run-03 has no completion event", LeafIndexes: []uint64{stepLeaf[[2]int{3, 0}]}},
		{Kind: "missing_subject", Detail: "approval names event x, never logged", LeafIndexes: []uint64{5}},
	}
	// The tree and the proofs.
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, l := range leaves {
		st, err := tlog.StoredHashes(int64(i), l, hr)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, st...)
	}
	size := int64(len(leaves))
	root, err := tlog.TreeHash(size, hr)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := note.Sign(&note.Note{Text: fmt.Sprintf("provlog.test/large\n%d\n%s\n", size, root)}, signer)
	if err != nil {
		t.Fatal(err)
	}
	lp := &pb.LeafProofs{Checkpoint: cp, TreeSize: uint64(size)}
	ref := map[tlog.Hash]uint32{}
	for i := range size {
		p, err := tlog.ProveRecord(size, i, hr)
		if err != nil {
			t.Fatal(err)
		}
		pl := &pb.ProvenLeaf{Index: uint64(i), Leaf: leaves[i]}
		for _, h := range p {
			r, ok := ref[h]
			if !ok {
				r = uint32(len(lp.Nodes))
				ref[h] = r
				lp.Nodes = append(lp.Nodes, h[:])
			}
			pl.Proof = append(pl.Proof, r)
		}
		lp.Leaves = append(lp.Leaves, pl)
	}
	tr.Proofs = lp
	b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	return b, vkey, len(tr.Nodes)
}

// TestBrowserLargeGraph loads a 2,000-node answer from a test double and
// checks the page stays responsive (no main-thread stall over a bound while
// it verifies, draws and lays out), that proofs, masked fields and gaps
// show, that runs collapse, and that the keyboard moves the selection.
func TestBrowserLargeGraph(t *testing.T) {
	ctx := newBrowser(t)
	shots := artifactDir(t)
	body, vkey, nodes := largeTrace(t)
	if nodes < 2000 {
		t.Fatalf("only %d nodes", nodes)
	}
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.Handler(ui.Config{LogKey: vkey}))
	var lastQuery atomic.Value
	mux.HandleFunc("/v1/lineage", func(w http.ResponseWriter, r *http.Request) {
		lastQuery.Store(r.URL.Query())
		if r.Header.Get("Authorization") != "Bearer big-token" {
			http.Error(w, `{"code":16,"message":"missing or invalid bearer token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]any{"code": 5, "message": "not found"})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	signIn(t, ctx, srv.URL+"/ui/", "big-token", "acme")
	// A 16 ms heartbeat on the main thread records its longest silence.
	run(t, ctx, "heartbeat", js(`window.__beat = {max: 0, last: performance.now()};
		setInterval(() => { const n = performance.now(); __beat.max = Math.max(__beat.max, n - __beat.last); __beat.last = n; }, 16)`))
	start := time.Now()
	if st := search(t, ctx, "asset", "s3://big/l19/part-00", "20"); st != "ready" {
		t.Fatalf("search: %s", text(t, ctx, "#status"))
	}
	elapsed := time.Since(start)
	stall := eval[float64](t, ctx, `__beat.max`)
	layoutMs := attr(t, ctx, "#cy", "data-layout-ms")
	t.Logf("main-thread timing: %s, apply layout %s ms, first frames %s ms", attr(t, ctx, "#status", "data-timing"), attr(t, ctx, "#cy", "data-apply-ms"), attr(t, ctx, "#cy", "data-frame-ms"))
	drawn := attr(t, ctx, "#cy", "data-nodes")
	t.Logf("2,000-node answer: shown in %v, longest main-thread stall %.0f ms, layout in the worker %s ms, %s nodes drawn", elapsed.Round(time.Millisecond), stall, layoutMs, drawn)
	screenshot(t, ctx, shots, "large-2000")
	// Verifying ~2,000 proofs, adding 2,000 nodes and drawing them happen
	// on the main thread; the layout does not. The bound is generous for a
	// shared 2-core machine and still far below a freeze.
	if stall > 15000 { // a guard against a freeze (dagre took minutes), not a speed claim: the speed is logged above
		t.Errorf("main thread stalled %.0f ms", stall)
	}
	if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "verified" {
		t.Errorf("answer badge = %q: %s", got, text(t, ctx, "#status"))
	}
	if got := eval[int](t, ctx, `document.querySelectorAll("#gaps li").length`); got != 2 {
		t.Errorf("%d gaps listed, want 2", got)
	}

	// Still responsive: a click on a result opens its details at once.
	run(t, ctx, "heartbeat reset", js(`__beat.max = 0; __beat.last = performance.now()`))
	run(t, ctx, "open a step with a masked actor",
		click(`#results button.result[data-node="event:big:l0-7"]`),
		chromedp.WaitVisible(css(`#detail[data-node="event:big:l0-7"] .badge`)),
	)
	if d := text(t, ctx, "#detail"); !strings.Contains(d, "masked for your role") {
		t.Errorf("masked step details do not say masked:\n%s", d)
	}
	if got := attr(t, ctx, "#detail .badge", "data-proof"); got != "verified" {
		t.Errorf("step badge = %q", got)
	}

	// Keyboard: focus the graph, arrows move the selection.
	first := attr(t, ctx, "#detail", "data-node")
	run(t, ctx, "keyboard", chromedp.Focus(css("#cy")), chromedp.KeyEvent(kb.ArrowRight))
	second := attr(t, ctx, "#detail", "data-node")
	if second == first || second == "" {
		t.Errorf("ArrowRight did not move the selection from %q (now %q)", first, second)
	}
	run(t, ctx, "keyboard back", chromedp.KeyEvent(kb.ArrowLeft))
	if back := attr(t, ctx, "#detail", "data-node"); back == second {
		t.Errorf("ArrowLeft did not move the selection from %q", second)
	}

	// Collapse by run: steps fold into their runs.
	run(t, ctx, "collapse runs",
		js(`document.getElementById("cy").dataset.layout = "pending"`),
		click("#collapse-runs"),
		chromedp.WaitVisible(css(`#cy[data-layout="done"]`)),
	)
	collapsed := attr(t, ctx, "#cy", "data-nodes")
	screenshot(t, ctx, shots, "large-collapsed")
	if collapsed >= drawn && len(collapsed) >= len(drawn) {
		t.Errorf("collapsing runs drew %s nodes, before %s", collapsed, drawn)
	}
	if stall := eval[float64](t, ctx, `__beat.max`); stall > 15000 {
		t.Errorf("main thread stalled %.0f ms while interacting", stall)
	}

	// The filters reach the API as TraceFilter fields.
	run(t, ctx, "filters",
		js(`document.querySelector("#search-form details").open = true`),
		chromedp.SetValue(css("#search-tenant"), "acme"),
		chromedp.SetValue(css("#f-since"), "2026-11-26T00:00"),
		chromedp.SetValue(css("#f-until"), "2026-11-27T00:00"),
		chromedp.SetValue(css("#f-actor"), "svc, maria@acme.example"),
		chromedp.SetValue(css("#f-workflow"), "wf-big"),
		chromedp.SetValue(css("#f-classification"), "pii"),
		js(`for (const o of document.getElementById("f-operation").options) o.selected = ["OPERATION_APPROVAL", "OPERATION_WRITE"].includes(o.value)`),
	)
	if st := search(t, ctx, "run", "run-03", "2"); st != "ready" {
		t.Fatalf("filtered search: %s", text(t, ctx, "#status"))
	}
	q, _ := lastQuery.Load().(url.Values)
	for k, want := range map[string][]string{
		"tenant": {"acme"}, "runId": {"run-03"}, "depth": {"2"}, "direction": {"DIRECTION_UPSTREAM"},
		"filter.actorIds": {"svc", "maria@acme.example"}, "filter.workflowIds": {"wf-big"}, "filter.classifications": {"pii"},
		"filter.operations": {"OPERATION_WRITE", "OPERATION_APPROVAL"},
	} {
		if got := q[k]; !slices.Equal(got, want) {
			t.Errorf("query %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"filter.since", "filter.until"} {
		if _, err := time.Parse(time.RFC3339, q.Get(k)); err != nil {
			t.Errorf("query %s = %q: %v", k, q.Get(k), err)
		}
	}
}
