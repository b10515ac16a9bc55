package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// streamAll sends reqs on one AppendStream as token, closes its send side
// and returns the responses by correlation id. It fails the test if the
// stream ends with an error, or a correlation id is answered twice.
func (h *harness) streamAll(t *testing.T, token string, reqs []*pb.AppendStreamRequest) map[uint64]*pb.AppendStreamResponse {
	t.Helper()
	got, err := streamAllErr(withToken(t.Context(), token), h.client, reqs)
	if err != nil {
		t.Fatalf("AppendStream: %v", err)
	}
	return got
}

func streamAllErr(ctx context.Context, c pb.LogServiceClient, reqs []*pb.AppendStreamRequest) (map[uint64]*pb.AppendStreamResponse, error) {
	st, err := c.AppendStream(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		if err := st.Send(r); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream: Recv says why
			}
			return nil, err
		}
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	got := map[uint64]*pb.AppendStreamResponse{}
	for {
		resp, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if _, dup := got[resp.GetCorrelationId()]; dup {
			return got, status.Errorf(codes.Internal, "correlation id %d answered twice", resp.GetCorrelationId())
		}
		got[resp.GetCorrelationId()] = resp
	}
}

// TestAppendStream: bad requests and bad events mid-stream get their own
// errors and the stream goes on; every request gets one response with its
// correlation id; idempotency and receipts work as in AppendBatch.
func TestAppendStream(t *testing.T) {
	h := startHarness(t, "")
	pre := readEvent(t, uniqueID(t, "pre"))
	preIdx := h.mustAppend(t, pre, pb.WaitFor_WAIT_FOR_SEQUENCED).GetIndex()
	base := h.size(t)

	a, b, c := readEvent(t, uniqueID(t, "a")), readEvent(t, uniqueID(t, "b")), readEvent(t, uniqueID(t, "c"))
	badDigest := readEvent(t, uniqueID(t, "bad-digest"))
	badDigest.Inputs[0].Digest = "md5:0123"
	foreign := readEvent(t, uniqueID(t, "foreign"))
	foreign.Tenant = "other"
	preOther := proto.Clone(pre).(*pb.ProvenanceEvent)
	preOther.Rationale = "another body"
	evs := func(e ...*pb.ProvenanceEvent) []*pb.ProvenanceEvent { return e }
	reqs := []*pb.AppendStreamRequest{
		{CorrelationId: 10, Events: evs(a)},
		{CorrelationId: 11, Events: evs(badDigest, b)},  // bad event, good event
		{CorrelationId: 12},                             // no events: the request fails
		{CorrelationId: 13, Events: evs(a), Wait: 7},    // unknown wait
		{CorrelationId: 14, Events: evs(pre, preOther)}, // duplicate, conflict
		{CorrelationId: 15, Events: evs(foreign)},       // tenant not allowed
		{CorrelationId: 16, Events: evs(c), Wait: pb.WaitFor_WAIT_FOR_PUBLISHED},
		{CorrelationId: 17, Events: evs(nil)}, // a nil event
	}
	got := h.streamAll(t, acmeToken, reqs)
	if len(got) != len(reqs) {
		t.Fatalf("%d responses for %d requests: %v", len(got), len(reqs), got)
	}
	views := map[uint64][]batchView{}
	for id, r := range got {
		for _, res := range r.GetResults() {
			views[id] = append(views[id], viewOf(res))
		}
	}
	ia, ib, ic := got[10].GetResults()[0].GetIndex(), got[11].GetResults()[1].GetIndex(), got[16].GetResults()[0].GetIndex()
	if diff := cmp.Diff([]uint64{base, base + 1, base + 2}, sortedU64(ia, ib, ic)); diff != "" {
		t.Errorf("new events' indexes (-want +got):\n%s", diff)
	}
	want := map[uint64][]batchView{
		10: {{Index: ia}},
		11: {{Code: codes.InvalidArgument, Field: "events[0].inputs[0].digest"}, {Index: ib}},
		14: {{Index: preIdx, Duplicate: true}, {Code: codes.AlreadyExists}},
		15: {{Code: codes.PermissionDenied}},
		16: {{Index: ic, Receipt: true}},
		17: {{Code: codes.InvalidArgument, Field: "events[0].schema_version"}}, // sent as an empty event
	}
	if diff := cmp.Diff(want, views); diff != "" {
		t.Errorf("per-event results (-want +got):\n%s", diff)
	}
	for id, w := range map[uint64]struct {
		code  codes.Code
		field string
	}{12: {codes.InvalidArgument, "events"}, 13: {codes.InvalidArgument, "wait"}} {
		e := got[id].GetError()
		if codes.Code(e.GetCode()) != w.code || e.GetField() != w.field || len(got[id].GetResults()) != 0 {
			t.Errorf("request %d: error %v, %d results; want %v naming %q and no results", id, e, len(got[id].GetResults()), w.code, w.field)
		}
	}
	for id, r := range got {
		if id != 12 && id != 13 && r.GetError() != nil {
			t.Errorf("request %d failed as a whole: %v", id, r.GetError())
		}
	}
	r16 := got[16]
	if string(r16.GetResults()[0].GetReceipt().GetCheckpoint()) != string(r16.GetCheckpoint()) {
		t.Error("request 16: receipt checkpoint is not the response's")
	}
	h.checkReceipt(t, r16.GetResults()[0].GetReceipt(), ic, r16.GetResults()[0].GetLeafHash(), c, acmeName)
	if got := h.size(t); got != base+3 {
		t.Errorf("log size %d, want %d: exactly the three new events", got, base+3)
	}
}

func sortedU64(xs ...uint64) []uint64 {
	slices.Sort(xs)
	return xs
}

// TestAppendStreamIdempotent: the same event in many requests of one
// stream at once, and again in a second stream, is one leaf: every answer
// has its index, exactly one is not a duplicate.
func TestAppendStreamIdempotent(t *testing.T) {
	h := startHarness(t, "")
	base := h.size(t)
	ev := readEvent(t, uniqueID(t, "same"))
	var reqs []*pb.AppendStreamRequest
	for i := range 20 {
		reqs = append(reqs, &pb.AppendStreamRequest{CorrelationId: uint64(i), Events: []*pb.ProvenanceEvent{ev}})
	}
	got := h.streamAll(t, acmeToken, reqs)
	again := h.streamAll(t, acmeToken, reqs[:1])
	fresh := 0
	if r := again[0].GetResults(); len(r) != 1 || !r[0].GetDuplicate() || r[0].GetIndex() != base {
		t.Errorf("second stream: %v, want a duplicate at %d", again[0], base)
	}
	for id, r := range got {
		res := r.GetResults()
		if len(res) != 1 || res[0].GetError() != nil || res[0].GetIndex() != base {
			t.Fatalf("request %d: %v, want index %d", id, r, base)
		}
		if !res[0].GetDuplicate() {
			fresh++
		}
	}
	if len(got) != 20 || fresh != 1 {
		t.Errorf("%d answers, %d not duplicates; want 20 and 1", len(got), fresh)
	}
	if n := h.size(t); n != base+1 {
		t.Errorf("log size %d, want %d", n, base+1)
	}
}

// TestAppendStreamRefused: no token, or a role that may not append, ends
// the stream before anything is appended.
func TestAppendStreamRefused(t *testing.T) {
	h := startHarness(t, "")
	base := h.size(t)
	req := []*pb.AppendStreamRequest{{CorrelationId: 1, Events: []*pb.ProvenanceEvent{readEvent(t, uniqueID(t, "x"))}}}
	for _, c := range []struct {
		name, token string
		code        codes.Code
	}{{"no token", "", codes.Unauthenticated}, {"bad token", "pl_nope", codes.Unauthenticated}, {"reader", readerToken, codes.PermissionDenied}} {
		t.Run(c.name, func(t *testing.T) {
			got, err := streamAllErr(withToken(t.Context(), c.token), h.client, req)
			if status.Code(err) != c.code || len(got) != 0 {
				t.Errorf("AppendStream: %v and %d responses, want %v and none", err, len(got), c.code)
			}
		})
	}
	if n := h.size(t); n != base {
		t.Errorf("log size %d, want %d", n, base)
	}
}

// TestAppendStreamRateLimit: a request over the caller's rate gets
// ResourceExhausted in its response and the stream goes on.
func TestAppendStreamRateLimit(t *testing.T) {
	h := startAdminHarnessWith(t, func(c *server.Config, _ string) {
		c.Limits = server.Limits{IdentityRate: 0.01, IdentityBurst: 2}
	})
	tok := h.token(t, "s1", []string{"appender"}, []string{"acme"}, "")
	one := func(id uint64) *pb.AppendStreamRequest {
		return &pb.AppendStreamRequest{CorrelationId: id, Events: []*pb.ProvenanceEvent{readEvent(t, uniqueID(t, fmt.Sprint("rl", id)))}}
	}
	base := h.size(t)
	big := one(1)
	big.Events = append(big.Events, readEvent(t, uniqueID(t, "big2")), readEvent(t, uniqueID(t, "big3")))
	got := h.streamAll(t, tok, []*pb.AppendStreamRequest{big})
	if e := got[1].GetError(); codes.Code(e.GetCode()) != codes.ResourceExhausted {
		t.Errorf("3 events over a burst of 2: %v, want ResourceExhausted", got[1])
	}
	got = h.streamAll(t, tok, []*pb.AppendStreamRequest{one(2), one(3), one(4)})
	var okN, limited int
	for _, r := range got {
		switch codes.Code(r.GetError().GetCode()) {
		case codes.OK:
			if e := r.GetResults()[0].GetError(); e != nil {
				t.Errorf("request %d: event refused: %v", r.GetCorrelationId(), e)
			}
			okN++
		case codes.ResourceExhausted:
			limited++
		}
	}
	if okN != 2 || limited != 1 {
		t.Errorf("%d appended, %d limited; want 2 and 1: %v", okN, limited, got)
	}
	if n := h.size(t); n != base+2 {
		t.Errorf("log size %d, want %d", n, base+2)
	}
}

// TestAppendStreamTokenRevoked: a token revoked while its stream is open
// appends nothing more: the next request ends the stream with
// Unauthenticated.
func TestAppendStreamTokenRevoked(t *testing.T) {
	h := startAdminHarness(t)
	adminCtx := withToken(t.Context(), adminToken)
	tok, err := h.admin.CreateToken(adminCtx, &pb.CreateTokenRequest{Name: "streamer", Roles: []string{"appender"}, Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.client.AppendStream(withToken(t.Context(), tok.GetSecret()))
	if err != nil {
		t.Fatal(err)
	}
	send := func(id uint64) error {
		return st.Send(&pb.AppendStreamRequest{CorrelationId: id, Events: []*pb.ProvenanceEvent{readEvent(t, uniqueID(t, fmt.Sprint("rev", id)))}})
	}
	if err := send(1); err != nil {
		t.Fatal(err)
	}
	resp, err := st.Recv()
	if err != nil || resp.GetResults()[0].GetError() != nil {
		t.Fatalf("first append: %v, %v", resp, err)
	}
	base := h.size(t)
	if _, err := h.admin.RevokeToken(adminCtx, &pb.RevokeTokenRequest{Id: tok.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	if err := send(2); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if resp, err := st.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Errorf("after revocation: %v, %v; want the stream ended with Unauthenticated", resp, err)
	}
	if n := h.size(t); n != base {
		t.Errorf("log size %d after revocation, want %d", n, base)
	}
}
