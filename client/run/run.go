// Package run records provenance from Go code as it runs: a run and its
// steps (Step), external HTTP calls (Transport), reads and writes of named
// datasets through database/sql (DB), and files (ReadFile, WriteFile).
// Events go to the log through a small Appender; LogAppender implements it
// over the generated gRPC client.
//
//	rec := &run.Recorder{Appender: run.LogAppender{Client: pb.NewLogServiceClient(conn), Token: tok},
//		Tenant: "acme", Platform: "go", WorkflowID: "nightly-revenue"}
//	ctx, r, err := rec.Start(ctx, "")               // RUN_START of a new run
//	err = run.Step(ctx, "convert", inputs, outputs, func(ctx context.Context) error {
//		rows, err := db.Read(ctx, "orders", []string{"id", "amount"}, "SELECT id, amount FROM orders")
//		resp, err := httpClient.Do(req.WithContext(ctx)) // with run.Transport: EXTERNAL_CALL
//		...
//	})
//	err = r.End(ctx, err)                           // RUN_COMPLETE or RUN_FAIL, flushed
//
// Each Step is a child run of the run in its context (parent_run_id links
// them): RUN_START, what the step did, and RUN_COMPLETE or RUN_FAIL. The
// step's own event (TRANSFORM, READ or WRITE) lists every input and output
// it declared or that the helpers saw inside it, so an upstream trace from
// its outputs reaches its inputs. A step's events are sent in one
// AppendBatch when it ends, a run's when it ends; event ids are the run id
// and a sequence number, so a retried flush is idempotent.
//
// This package depends only on the protobuf types: it does not link the
// server, and it talks to the log through Appender alone.
package run

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Appender appends events to a log. Implementations must be safe for
// concurrent use; an error means some events may not be appended (a retry
// of the same events is idempotent).
type Appender interface {
	AppendBatch(ctx context.Context, events []*pb.ProvenanceEvent) error
}

// LogAppender is an Appender over the log's gRPC API with a bearer token.
type LogAppender struct {
	Client pb.LogServiceClient
	Token  string
}

// AppendBatch sends events in one AppendBatch call; events the log refuses
// are reported together (a duplicate is not an error).
func (a LogAppender) AppendBatch(ctx context.Context, events []*pb.ProvenanceEvent) error {
	if len(events) == 0 {
		return nil
	}
	if a.Token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+a.Token)
	}
	resp, err := a.Client.AppendBatch(ctx, &pb.AppendBatchRequest{Events: events})
	if err != nil {
		return fmt.Errorf("couldn't append %d provenance events: %w", len(events), err)
	}
	var errs []error
	for i, r := range resp.GetResults() {
		if e := r.GetError(); e != nil {
			errs = append(errs, fmt.Errorf("event %s: %s", events[i].GetEventId(), e.GetMessage()))
		}
	}
	return errors.Join(errs...)
}

// Recorder holds what every event of a workflow shares.
type Recorder struct {
	Appender        Appender
	Tenant          string
	Platform        string // "go" when empty
	PlatformVersion string
	WorkflowID      string
	WorkflowVersion string
	// Actor is who runs the workflow; a SERVICE named after the workflow
	// when nil.
	Actor *pb.Actor
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// ErrNoRun means a helper was called with a context that carries no run.
var ErrNoRun = errors.New("run: the context carries no run (call Recorder.Start first)")

// Run is a run in progress. Its methods are safe for concurrent use.
type Run struct {
	rec    *Recorder
	id     string
	parent string
	step   string

	mu      sync.Mutex
	seq     int
	pending []*pb.ProvenanceEvent
	inputs  []*pb.Asset
	outputs []*pb.Asset
	lineage []*pb.FieldLineage
}

type ctxKey struct{}

// FromContext returns the run ctx carries, or nil.
func FromContext(ctx context.Context) *Run {
	r, _ := ctx.Value(ctxKey{}).(*Run)
	return r
}

// ID is the run's id.
func (r *Run) ID() string { return r.id }

// Start begins a run (a child of the run in ctx, if any) and records its
// RUN_START. An empty id gets a random one.
func (rec *Recorder) Start(ctx context.Context, id string) (context.Context, *Run, error) {
	if id == "" {
		id = newID()
	}
	r := &Run{rec: rec, id: id}
	if p := FromContext(ctx); p != nil {
		r.parent = p.id
	}
	r.emit(pb.Operation_OPERATION_RUN_START, nil, nil, nil, nil)
	return context.WithValue(ctx, ctxKey{}, r), r, nil
}

// End records RUN_COMPLETE, or RUN_FAIL with the error's text when err is
// not nil, and sends the run's pending events. It returns err joined with
// any error sending them.
func (r *Run) End(ctx context.Context, err error) error {
	r.finish(err)
	return errors.Join(err, r.flush(ctx))
}

func (r *Run) finish(err error) {
	if err != nil {
		r.emit(pb.Operation_OPERATION_RUN_FAIL, nil, nil, nil, map[string]string{"error": truncate(err.Error(), 4096)})
		return
	}
	r.emit(pb.Operation_OPERATION_RUN_COMPLETE, nil, nil, nil, nil)
}

func (r *Run) flush(ctx context.Context) error {
	r.mu.Lock()
	evs := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(evs) == 0 {
		return nil
	}
	// The events are recorded even when the work was cancelled.
	return r.rec.Appender.AppendBatch(context.WithoutCancel(ctx), evs)
}

// Step runs fn as a step of the run in ctx: a child run named name with
// RUN_START, then one event for what the step read and wrote (inputs and
// outputs given here plus those recorded inside fn), then RUN_COMPLETE or
// RUN_FAIL. The step's events are appended when it ends; its error is fn's
// joined with any error appending them.
func Step(ctx context.Context, name string, inputs, outputs []*pb.Asset, fn func(ctx context.Context) error) error {
	parent := FromContext(ctx)
	if parent == nil {
		return ErrNoRun
	}
	child := &Run{rec: parent.rec, id: parent.id + "/" + name, parent: parent.id, step: name}
	child.emit(pb.Operation_OPERATION_RUN_START, nil, nil, nil, nil)
	for _, a := range inputs {
		child.AddInput(a)
	}
	for _, a := range outputs {
		child.AddOutput(a)
	}
	err := fn(context.WithValue(ctx, ctxKey{}, child))
	child.mu.Lock()
	in, out, fl := child.inputs, child.outputs, child.lineage
	child.mu.Unlock()
	var op pb.Operation
	switch {
	case len(in) > 0 && len(out) > 0:
		op = pb.Operation_OPERATION_TRANSFORM
	case len(out) > 0:
		op = pb.Operation_OPERATION_WRITE
	case len(in) > 0:
		op = pb.Operation_OPERATION_READ
	}
	if op != 0 {
		child.emit(op, in, out, fl, nil)
	}
	child.finish(err)
	return errors.Join(err, child.flush(ctx))
}

// AddInput records that the run read a (kept for its step event).
func (r *Run) AddInput(a *pb.Asset) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs = mergeAsset(r.inputs, a)
}

// AddOutput records that the run wrote a (kept for its step event).
func (r *Run) AddOutput(a *pb.Asset) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outputs = mergeAsset(r.outputs, a)
}

// AddFieldLineage records that outputField of outputURI was derived from
// sources; both assets must be among the step's inputs and outputs.
func (r *Run) AddFieldLineage(outputURI, outputField, transformation string, sources ...*pb.FieldRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lineage = append(r.lineage, &pb.FieldLineage{OutputUri: outputURI, OutputField: outputField, Transformation: transformation, Sources: sources})
}

// mergeAsset adds a, or updates the asset of the same URI (and record key)
// with what a adds.
func mergeAsset(list []*pb.Asset, a *pb.Asset) []*pb.Asset {
	for _, x := range list {
		if x.GetUri() == a.GetUri() && x.GetRecordKey() == a.GetRecordKey() {
			if a.GetDigest() != "" {
				x.Digest = a.GetDigest()
			}
			if a.GetVersion() != "" {
				x.Version = a.GetVersion()
			}
			for _, f := range a.GetFields() {
				if !contains(x.Fields, f) {
					x.Fields = append(x.Fields, f)
				}
			}
			if a.GetClassification() != "" {
				x.Classification = a.GetClassification()
			}
			return list
		}
	}
	return append(list, &pb.Asset{Uri: a.GetUri(), Version: a.GetVersion(), Digest: a.GetDigest(),
		Fields: append([]string(nil), a.GetFields()...), Classification: a.GetClassification(), RecordKey: a.GetRecordKey()})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// emit queues one event of the run.
func (r *Run) emit(op pb.Operation, in, out []*pb.Asset, fl []*pb.FieldLineage, ext map[string]string) {
	rec := r.rec
	now := time.Now
	if rec.Now != nil {
		now = rec.Now
	}
	platform := rec.Platform
	if platform == "" {
		platform = "go"
	}
	actor := rec.Actor
	if actor == nil {
		actor = &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_SERVICE, Id: "workflow:" + rec.WorkflowID}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.pending = append(r.pending, &pb.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       r.id + ":" + strconv.Itoa(r.seq),
		Tenant:        rec.Tenant,
		Operation:     op,
		EventTime:     timestamppb.New(now()),
		Actor:         actor,
		Workflow: &pb.Workflow{Platform: platform, PlatformVersion: rec.PlatformVersion, WorkflowId: rec.WorkflowID,
			WorkflowVersion: rec.WorkflowVersion, RunId: r.id, ParentRunId: r.parent, StepId: r.step},
		Inputs:       in,
		Outputs:      out,
		FieldLineage: fl,
		Extensions:   ext,
	})
}

// record queues a helper's event (an external call, a read, a write) in
// the run and adds its assets to the run's step event.
func (r *Run) record(op pb.Operation, in, out []*pb.Asset, ext map[string]string) {
	for _, a := range in {
		r.AddInput(a)
	}
	for _, a := range out {
		r.AddOutput(a)
	}
	r.emit(op, in, out, nil, ext)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
