package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const maxInput = 64 << 20

func cmdVerifyReceipt(e *env, args []string) int {
	f := newFlags(e, "verify receipt", "[--log-key log.pub] [--witness-policy FILE] [--event event.json] RESPONSE.json|-",
		"Verifies an Append receipt offline: the checkpoint's signature (and witness\nquorum, with --witness-policy), the inclusion proof, and that the leaf\ndecodes (and holds exactly --event). RESPONSE.json is an Append response\n(REST JSON with a receipt) or a bare receipt. Sensitive values of --event,\nin clear, must recompute the leaf's commitments with the response's\nopenings (client.VerifySubmittedReceipt).", "text", "json")
	f.trustFlags()
	eventFile := f.String("event", "", "the event JSON that was appended: the receipt must hold exactly it")
	if code, ok := f.parse(args, 1, 1); !ok {
		return code
	}
	p, err := f.policy()
	if err != nil {
		return f.fail(err)
	}
	in, err := readInput(e, f.Arg(0), maxInput)
	if err != nil {
		return f.fail(err)
	}
	r, openings, err := parseReceipt(in)
	if err != nil {
		return f.fail(err)
	}
	vr, err := client.VerifyReceiptWithPolicy(r, p)
	if err == nil && *eventFile != "" {
		ev, rerr := readEvent(*eventFile)
		if rerr != nil {
			return f.fail(rerr)
		}
		// Sensitive values: the response's openings and the values in
		// --event recompute the leaf's commitments.
		err = vr.HoldsSubmitted(ev, openings)
	}
	if err != nil {
		return f.fail(err)
	}
	ev := vr.Entry.GetEvent()
	if f.json() {
		writeJSON(e.stdout, map[string]any{"verified": true, "index": vr.Index, "origin": vr.Checkpoint.Origin, "tree_size": vr.Checkpoint.Size,
			"leaf_hash": fmt.Sprintf("%x", vr.LeafHash), "entry": protoJSON(vr.Entry)})
		return exitVerified
	}
	fmt.Fprintf(e.stdout, "verified: event %q of tenant %q is leaf %d of %s, in the signed checkpoint of size %d\n",
		ev.GetEventId(), ev.GetTenant(), vr.Index, vr.Checkpoint.Origin, vr.Checkpoint.Size)
	return exitVerified
}

// parseReceipt accepts an AppendResponse (as REST returns it, with the
// openings of its sensitive values) or a Receipt.
func parseReceipt(b []byte) (*pb.Receipt, []*pb.SensitiveOpening, error) {
	var resp pb.AppendResponse
	if err := protojson.Unmarshal(b, &resp); err == nil && resp.GetReceipt() != nil {
		return resp.GetReceipt(), resp.GetOpenings(), nil
	}
	var r pb.Receipt
	if err := protojson.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("neither an Append response with a receipt nor a receipt: %w", err)
	}
	return &r, nil, nil
}

func readEvent(name string) (*pb.ProvenanceEvent, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var ev pb.ProvenanceEvent
	if err := protojson.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &ev, nil
}

func cmdVerifyEvent(e *env, args []string) int {
	f := newFlags(e, "verify event", "[flags] EVENT.json",
		"Checks that the log holds exactly this event: finds its leaf through the\nlineage index (tenant and event id), then fetches the leaf with an inclusion\nproof to the latest checkpoint and verifies both, and that the leaf's event\nis the file's, field for field. Exit 1 when the log holds another event\nunder that id, or none.", "text", "json")
	f.connFlags()
	indexWait := f.Duration("index-wait", 10*time.Second, "how long to wait for the lineage index to reach the latest checkpoint")
	if code, ok := f.parse(args, 1, 1); !ok {
		return code
	}
	ev, err := readEvent(f.Arg(0))
	if err != nil {
		return f.fail(err)
	}
	c, err := f.dial(client.Options{})
	if err != nil {
		return f.fail(err)
	}
	defer c.Close()
	req := &pb.TraceRequest{Tenant: ev.GetTenant(), Start: &pb.TraceRequest_EventId{EventId: ev.GetEventId()},
		Direction: pb.Direction_DIRECTION_UPSTREAM, Depth: 1, MaxNodes: 50}
	var tr *pb.TraceResponse
	err = whileIndexLags(e, c, *indexWait, func() (err error) {
		tr, err = c.Trace(e.ctx, req)
		return err
	})
	if status.Code(err) == codes.NotFound {
		return f.fail(fmt.Errorf("%w: the log has no event %q of tenant %q", client.ErrVerification, ev.GetEventId(), ev.GetTenant()))
	}
	if err != nil {
		return f.fail(err)
	}
	i := slices.IndexFunc(tr.GetNodes(), func(n *pb.LineageNode) bool {
		return n.GetKind() == pb.NodeKind_NODE_KIND_ACTIVITY && n.GetEventId() == ev.GetEventId()
	})
	if i < 0 {
		return f.fail(fmt.Errorf("%w: the lineage answer for event %q has no activity for it", client.ErrVerification, ev.GetEventId()))
	}
	ve, err := c.GetEntry(e.ctx, tr.GetNodes()[i].GetLeafIndex())
	if err != nil {
		return f.fail(err)
	}
	if !proto.Equal(ve.Entry.GetEvent(), ev) {
		return f.fail(fmt.Errorf("%w: leaf %d holds event %q of tenant %q with other content than %s", client.ErrVerification, ve.Index, ev.GetEventId(), ev.GetTenant(), f.Arg(0)))
	}
	if f.json() {
		writeJSON(e.stdout, map[string]any{"verified": true, "index": ve.Index, "origin": ve.Checkpoint.Origin, "tree_size": ve.Checkpoint.Size,
			"leaf_hash": fmt.Sprintf("%x", ve.LeafHash), "checkpoint": string(ve.CheckpointNote)})
		return exitVerified
	}
	fmt.Fprintf(e.stdout, "verified: event %q of tenant %q is leaf %d of %s, proven into the checkpoint of size %d\n",
		ev.GetEventId(), ev.GetTenant(), ve.Index, ve.Checkpoint.Origin, ve.Checkpoint.Size)
	return exitVerified
}

func cmdVerifyBundle(e *env, args []string) int {
	f := newFlags(e, "bundle verify", "[--log-key log.pub] [--witness-policy FILE] BUNDLE.json|-",
		"Verifies an evidence bundle offline, with no network: the checkpoint's\nsignature and witness quorum, every leaf's inclusion proof, and every node,\nedge and run event the bundle asserts. With no --log-key (and no\nPROVLOG_LOG_KEY, config file or ./provlog-data/log.pub) the bundle is\nchecked against its own key and policy, and the output says so.", "text", "json")
	f.trustFlags()
	if code, ok := f.parse(args, 1, 1); !ok {
		return code
	}
	raw, err := readInput(e, f.Arg(0), client.MaxBundleBytes)
	if err != nil {
		return f.fail(err)
	}
	cfg, err := client.ResolveConfig(*f.conn, "", f.e.getenv)
	if err != nil {
		return f.fail(err)
	}
	var trusted *client.Policy
	if cfg.LogKey != "" {
		if trusted, err = cfg.Policy(); err != nil {
			return f.fail(err)
		}
	}
	vb, err := client.VerifyBundle(raw, trusted)
	if err != nil {
		return f.fail(err)
	}
	printBundle(f, vb)
	return exitVerified
}

func printBundle(f *cmdFlags, vb *client.VerifiedBundle) {
	w := f.e.stdout
	s := vb.Bundle.Subject
	if f.json() {
		writeJSON(w, map[string]any{"verified": true, "self_asserted": vb.SelfAsserted, "subject": s,
			"origin": vb.Checkpoint.Origin, "tree_size": vb.Checkpoint.Size, "leaves": len(vb.Entries),
			"nodes": len(vb.Trace.GetNodes()), "edges": len(vb.Trace.GetEdges()), "run_events": len(vb.Run.GetEvents())})
		return
	}
	if vb.SelfAsserted {
		fmt.Fprintf(w, "WARNING: checked against the bundle's own log key %s: pass --log-key to check it against a key you trust\n", vb.Bundle.LogKey)
	}
	fmt.Fprintf(w, "verified: evidence bundle (%s) of %s, checkpoint of size %d\n", s.Kind, vb.Checkpoint.Origin, vb.Checkpoint.Size)
	fmt.Fprintf(w, "  %s proven", plural(len(vb.Entries), "leaf", "leaves"))
	if vb.Trace != nil {
		fmt.Fprintf(w, ", %d nodes and %d edges asserted by them", len(vb.Trace.GetNodes()), len(vb.Trace.GetEdges()))
	}
	if vb.Run != nil {
		fmt.Fprintf(w, ", %d events of run %q", len(vb.Run.GetEvents()), s.RunID)
	}
	fmt.Fprintln(w)
	for _, l := range vb.Bundle.Leaves {
		ev := vb.Entries[l.Index].GetEvent()
		fmt.Fprintf(w, "  leaf %d: %s %s %q\n", l.Index, opName(ev.GetOperation()), ev.GetTenant(), ev.GetEventId())
	}
	gaps := append(vb.Trace.GetGaps(), vb.Run.GetGaps()...)
	for _, g := range gaps {
		fmt.Fprintf(w, "  gap (%s): %s\n", g.GetKind(), g.GetDetail())
	}
}

// whileIndexLags runs call, again while it fails with NotFound and the
// lineage index is behind the latest checkpoint (a just-appended event is
// not indexed yet), for up to wait.
func whileIndexLags(e *env, c *client.Client, wait time.Duration, call func() error) error {
	err := call()
	for deadline := time.Now().Add(wait); status.Code(err) == codes.NotFound && time.Now().Before(deadline); {
		cp, _, cerr := c.Checkpoint(e.ctx)
		d, derr := c.LineageService().GetIndexDigest(c.Context(e.ctx), &pb.GetIndexDigestRequest{})
		if cerr != nil || derr != nil {
			break
		}
		if d.GetWatermark() >= cp.Size {
			// The index may have caught up since the call: its answer
			// then was stale, so ask once more before taking NotFound
			// for real.
			return call()
		}
		time.Sleep(200 * time.Millisecond)
		err = call()
	}
	return err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func opName(op pb.Operation) string {
	return strings.ToLower(strings.TrimPrefix(op.String(), "OPERATION_"))
}
