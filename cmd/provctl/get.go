package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/provlog/provlog/client"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

func cmdGet(e *env, args []string) int {
	f := newFlags(e, "get", "[flags] INDEX",
		"Fetches one leaf with an inclusion proof to the latest checkpoint and\nverifies both: the checkpoint against the log key and witness policy, the\nproof, and that the decoded entry the server sent is what the leaf holds.", "text", "json")
	f.connFlags()
	if code, ok := f.parse(args, 1, 1); !ok {
		return code
	}
	index, err := strconv.ParseUint(f.Arg(0), 10, 64)
	if err != nil {
		fmt.Fprintf(e.stderr, "provctl: INDEX %q: want a leaf index\n", f.Arg(0))
		return exitUsage
	}
	c, err := f.dial(client.Options{})
	if err != nil {
		return f.fail(err)
	}
	defer c.Close()
	ve, err := c.GetEntry(e.ctx, index)
	if err != nil {
		return f.fail(err)
	}
	if f.json() {
		proof := make([]string, len(ve.Proof))
		for i, h := range ve.Proof {
			proof[i] = fmt.Sprintf("%x", h)
		}
		writeJSON(e.stdout, map[string]any{"verified": true, "index": ve.Index, "leaf_hash": fmt.Sprintf("%x", ve.LeafHash),
			"entry": protoJSON(ve.Entry), "checkpoint": string(ve.CheckpointNote), "inclusion_proof": proof})
		return exitVerified
	}
	fmt.Fprintf(e.stdout, "leaf %d of %s, verified: inclusion proof to the checkpoint of size %d\n", ve.Index, ve.Checkpoint.Origin, ve.Checkpoint.Size)
	printEntry(e, ve.Entry)
	return exitVerified
}

func printEntry(e *env, le *pb.LeafEntry) {
	ev := le.GetEvent()
	w := e.stdout
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-13s %s\n", k+":", v)
		}
	}
	row("event", ev.GetEventId())
	row("tenant", ev.GetTenant())
	row("operation", opName(ev.GetOperation()))
	if ev.GetEventTime() != nil {
		row("event time", ev.GetEventTime().AsTime().UTC().Format("2006-01-02T15:04:05.999999999Z"))
	}
	row("actor", strings.TrimSpace(strings.ToLower(strings.TrimPrefix(ev.GetActor().GetType().String(), "ACTOR_TYPE_"))+" "+ev.GetActor().GetId()))
	wf := ev.GetWorkflow()
	row("workflow", strings.TrimSpace(wf.GetPlatform()+" "+wf.GetWorkflowId()))
	row("run", wf.GetRunId())
	row("step", wf.GetStepId())
	for _, a := range ev.GetInputs() {
		row("input", assetLabel(a.GetUri(), a.GetVersion(), a.GetRecordKey(), a.GetClassification()))
	}
	for _, a := range ev.GetOutputs() {
		row("output", assetLabel(a.GetUri(), a.GetVersion(), a.GetRecordKey(), a.GetClassification()))
	}
	if s := ev.GetSignature(); s != nil {
		row("signed by", s.GetKeyId())
	}
	row("submitter", le.GetSubmitter())
	if le.GetReceivedTime() != nil {
		row("received", le.GetReceivedTime().AsTime().UTC().Format("2006-01-02T15:04:05.999999999Z"))
	}
}

func assetLabel(uri, version, recordKey, classification string) string {
	s := uri
	if version != "" {
		s += "@" + version
	}
	if recordKey != "" {
		s += "#" + recordKey
	}
	if classification != "" {
		s += " [" + classification + "]"
	}
	return s
}
