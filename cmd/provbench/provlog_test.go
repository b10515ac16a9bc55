package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// fakeLog is a LogService that checks what provbench sends and pushes back
// on a schedule: every pushEvery-th RPC fails with Unavailable, and in
// batches every pushEvery-th event comes back with a per-event Unavailable.
type fakeLog struct {
	provlogv1.UnimplementedLogServiceServer
	t         *testing.T
	token     string
	pushEvery int
	reject    bool // reject every event with InvalidArgument but the first (provbench's probe)
	// noCheckpoint makes GetCheckpoint Unimplemented; otherwise it
	// answers with a size covering every index.
	noCheckpoint bool
	// checkpoint is returned to appends waiting for publication.
	checkpoint []byte

	mu      sync.Mutex
	rpcs    int
	streams int            // AppendStreams opened
	seen    map[string]int // event id -> times accepted
	waits   map[provlogv1.WaitFor]int
}

func (f *fakeLog) check(ctx context.Context, evs []*provlogv1.ProvenanceEvent, wait provlogv1.WaitFor) (push bool, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+f.token {
		return false, status.Error(codes.Unauthenticated, "bad token")
	}
	for _, e := range evs {
		if err := event.Validate(e, time.Now()); err != nil {
			f.t.Errorf("provbench sent an invalid event %s: %v", e.GetEventId(), err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rpcs++
	f.waits[wait]++
	return f.rpcs%f.pushEvery == 0, nil
}

func (f *fakeLog) accept(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[id]++
	return f.seen[id] > 1
}

func (f *fakeLog) Append(ctx context.Context, req *provlogv1.AppendRequest) (*provlogv1.AppendResponse, error) {
	push, err := f.check(ctx, []*provlogv1.ProvenanceEvent{req.GetEvent()}, req.GetWait())
	if err != nil {
		return nil, err
	}
	if push {
		return nil, status.Error(codes.Unavailable, "pushback")
	}
	if f.reject && !firstEvent(req.GetEvent()) {
		return nil, status.Error(codes.InvalidArgument, "event_id: no")
	}
	resp := &provlogv1.AppendResponse{Duplicate: f.accept(req.GetEvent().GetEventId())}
	if req.GetWait() == provlogv1.WaitFor_WAIT_FOR_PUBLISHED {
		resp.Receipt = &provlogv1.Receipt{Checkpoint: f.checkpoint}
	}
	return resp, nil
}

func (f *fakeLog) AppendBatch(ctx context.Context, req *provlogv1.AppendBatchRequest) (*provlogv1.AppendBatchResponse, error) {
	push, err := f.check(ctx, req.GetEvents(), req.GetWait())
	if err != nil {
		return nil, err
	}
	if push {
		return nil, status.Error(codes.ResourceExhausted, "pushback")
	}
	resp := &provlogv1.AppendBatchResponse{}
	for i, e := range req.GetEvents() {
		switch {
		case f.reject && !firstEvent(e):
			resp.Results = append(resp.Results, &provlogv1.AppendResult{Error: &provlogv1.AppendError{Code: int32(codes.InvalidArgument), Message: "no", Field: "event_id"}})
		case i%f.pushEvery == f.pushEvery-1:
			resp.Results = append(resp.Results, &provlogv1.AppendResult{Error: &provlogv1.AppendError{Code: int32(codes.Unavailable), Message: "pushback"}})
		default:
			resp.Results = append(resp.Results, &provlogv1.AppendResult{Duplicate: f.accept(e.GetEventId())})
		}
	}
	if req.GetWait() == provlogv1.WaitFor_WAIT_FOR_PUBLISHED {
		resp.Checkpoint = f.checkpoint
	}
	return resp, nil
}

func (f *fakeLog) GetCheckpoint(context.Context, *provlogv1.GetCheckpointRequest) (*provlogv1.GetCheckpointResponse, error) {
	if f.noCheckpoint {
		return nil, status.Error(codes.Unimplemented, "no checkpoints here")
	}
	return &provlogv1.GetCheckpointResponse{Size: 1 << 40}, nil
}

// AppendStream answers each request as AppendBatch would, a failed call
// becoming the response's error.
func (f *fakeLog) AppendStream(stream grpc.BidiStreamingServer[provlogv1.AppendStreamRequest, provlogv1.AppendStreamResponse]) error {
	f.mu.Lock()
	f.streams++
	f.mu.Unlock()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := f.AppendBatch(stream.Context(), &provlogv1.AppendBatchRequest{Events: req.GetEvents(), Wait: req.GetWait()})
		resp := &provlogv1.AppendStreamResponse{CorrelationId: req.GetCorrelationId(), Results: b.GetResults(), Checkpoint: b.GetCheckpoint()}
		if err != nil {
			st := status.Convert(err)
			if st.Code() == codes.Unauthenticated {
				return err
			}
			resp.Error = &provlogv1.AppendError{Code: int32(st.Code()), Message: st.Message()}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// firstEvent says whether e is a generator's first event.
func firstEvent(e *provlogv1.ProvenanceEvent) bool { return strings.HasSuffix(e.GetEventId(), ":1") }

func startFakeLog(t *testing.T, f *fakeLog) string {
	t.Helper()
	f.t, f.seen, f.waits = t, map[string]int{}, map[provlogv1.WaitFor]int{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	provlogv1.RegisterLogServiceServer(srv, f)
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

func TestRunAgainstLog(t *testing.T) {
	for _, wait := range []string{"sequenced", "published"} {
		t.Run(wait, func(t *testing.T) {
			// Only the sequenced run can see checkpoints.
			f := &fakeLog{token: "s3cret", pushEvery: 7, noCheckpoint: wait == "published"}
			cfg := baseConfig(t)
			cfg.GRPCAddr = startFakeLog(t, f)
			cfg.Token = f.token
			cfg.Baseline = false
			cfg.Concurrency = 4
			cfg.BatchSize = 10
			cfg.Count = 200
			cfg.Wait = wait
			cfg.JSON = true
			var out bytes.Buffer
			if err := run(t.Context(), cfg, &out, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			var rep report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("--json output doesn't parse: %v\n%s", err, out.String())
			}
			if len(rep.Results) != 2 {
				t.Fatalf("%d results, want unary and batch", len(rep.Results))
			}
			for _, r := range rep.Results {
				if r.Target != "provlog" || r.Events != cfg.Count || r.Retries == 0 || r.Duplicates != 0 || r.Abandoned != 0 {
					t.Errorf("%s: %+v: want %d events, some retries, no duplicates", r.Mode, r, cfg.Count)
				}
				switch c := r.ToCheckpoint; {
				case f.noCheckpoint && c != nil:
					t.Errorf("%s: time to checkpoint %+v from a log without GetCheckpoint", r.Mode, c)
				case !f.noCheckpoint && (c == nil || c.Calls == 0 || c.Calls != r.Latency.Calls):
					t.Errorf("%s: time to checkpoint %+v, want one per call (%d)", r.Mode, c, r.Latency.Calls)
				}
			}
			if len(rep.Ratios) != 0 {
				t.Errorf("ratios %+v without a baseline", rep.Ratios)
			}
			// Every event reached the log exactly once, pushback or not;
			// one more is the setup probe.
			if len(f.seen) != 2*int(cfg.Count)+1 {
				t.Errorf("log saw %d distinct events, want %d", len(f.seen), 2*cfg.Count+1)
			}
			for id, n := range f.seen {
				if n != 1 {
					t.Errorf("event %s accepted %d times", id, n)
				}
			}
			want := provlogv1.WaitFor_WAIT_FOR_SEQUENCED
			if wait == "published" {
				want = provlogv1.WaitFor_WAIT_FOR_PUBLISHED
			}
			if len(f.waits) != 1 || f.waits[want] == 0 {
				t.Errorf("wait values sent: %v, want only %v", f.waits, want)
			}
		})
	}
}

func TestRunStopsOnRejection(t *testing.T) {
	for _, mode := range []string{"unary", "batch", "stream"} {
		t.Run(mode, func(t *testing.T) {
			f := &fakeLog{token: "s3cret", pushEvery: 1000, reject: true}
			cfg := baseConfig(t)
			cfg.GRPCAddr = startFakeLog(t, f)
			cfg.Token = f.token
			cfg.Baseline = false
			cfg.Mode = mode
			cfg.Count = 100
			err := run(t.Context(), cfg, new(bytes.Buffer), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), "InvalidArgument") || !strings.Contains(err.Error(), mode+" phase") {
				t.Errorf("run error = %v, want the rejection", err)
			}
		})
	}
}

func TestRunBadToken(t *testing.T) {
	f := &fakeLog{token: "s3cret", pushEvery: 1000}
	cfg := baseConfig(t)
	cfg.GRPCAddr = startFakeLog(t, f)
	cfg.Token = "wrong"
	cfg.Baseline = false
	cfg.Count = 10
	err := run(t.Context(), cfg, new(bytes.Buffer), slog.New(slog.DiscardHandler))
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("run error = %v, want Unauthenticated", err)
	}
}

// TestRunFrontendsAndStreams drives two frontends in every mode, waiting
// for publication: the callers share both, each event reaches exactly one
// of them once, stream mode uses -streams streams per frontend, and the
// cosignatures on the returned checkpoints are reported.
func TestRunFrontendsAndStreams(t *testing.T) {
	// A checkpoint note with the log's signature and two cosignatures.
	cp := []byte("example.com/log\n5\nAAAA\n\n\u2014 example.com/log abcd\n\u2014 w1.example abcd\n\u2014 w2.example abcd\n")
	fs := []*fakeLog{{token: "s3cret", pushEvery: 5, checkpoint: cp}, {token: "s3cret", pushEvery: 9, checkpoint: cp}}
	var addrs []string
	for _, f := range fs {
		addrs = append(addrs, startFakeLog(t, f))
	}
	cfg := baseConfig(t)
	cfg.GRPCAddr = strings.Join(addrs, ",")
	cfg.Token = "s3cret"
	cfg.Baseline = false
	cfg.Mode = "all"
	cfg.Concurrency = 6
	cfg.BatchSize = 10
	cfg.Streams = 2
	cfg.StreamEvents = 3
	cfg.Count = 300
	cfg.Wait = "published"
	cfg.JSON = true
	var out bytes.Buffer
	if err := run(t.Context(), cfg, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json output doesn't parse: %v\n%s", err, out.String())
	}
	if len(rep.Frontends) != 2 || rep.Frontends[1] != addrs[1] {
		t.Errorf("frontends %v, want %v", rep.Frontends, addrs)
	}
	var modes []string
	for _, r := range rep.Results {
		modes = append(modes, r.Mode)
		if r.Events != cfg.Count || r.Abandoned != 0 || r.Duplicates != 0 {
			t.Errorf("%s: %+v: want %d events, none abandoned or duplicate", r.Mode, r, cfg.Count)
		}
		if s := r.CheckpointSignatures; s == nil || s.Min != 3 || s.Max != 3 {
			t.Errorf("%s: checkpoint signatures %+v, want 3 to 3", r.Mode, s)
		}
		want := map[string]int{"unary": 1, "batch": 10, "stream": 3}[r.Mode]
		if r.EventsPerCall != want {
			t.Errorf("%s: %d events per call, want %d", r.Mode, r.EventsPerCall, want)
		}
		if r.Mode == "stream" && r.Streams != 4 {
			t.Errorf("stream: %d streams, want 2 per frontend", r.Streams)
		}
	}
	if strings.Join(modes, ",") != "unary,batch,stream" {
		t.Errorf("modes %v, want unary, batch, stream", modes)
	}
	seen := map[string]int{}
	for i, f := range fs {
		if len(f.seen) < int(cfg.Count)/2 {
			t.Errorf("frontend %d saw only %d events", i, len(f.seen))
		}
		for id, n := range f.seen {
			seen[id] += n
		}
		if f.streams != 2 {
			t.Errorf("frontend %d: %d streams opened, want 2", i, f.streams)
		}
	}
	// 3 phases of -count events, and a probe per frontend.
	if len(seen) != 3*int(cfg.Count)+2 {
		t.Errorf("%d distinct events, want %d", len(seen), 3*cfg.Count+2)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s accepted %d times", id, n)
		}
	}
}
