package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var transports = []string{"grpc", "rest"}

// appendVia appends one event over transport and returns the response or
// the error as a gRPC status error (REST errors are turned back into one).
func (h *harness) appendVia(t *testing.T, transport, token string, ev *pb.ProvenanceEvent, wait pb.WaitFor) (*pb.AppendResponse, codes.Code, string) {
	t.Helper()
	switch transport {
	case "grpc":
		resp, err := h.client.Append(withToken(t.Context(), token), &pb.AppendRequest{Event: ev, Wait: wait})
		if err != nil {
			st, _ := status.FromError(err)
			return nil, st.Code(), st.Message()
		}
		return resp, codes.OK, ""
	case "rest":
		path := "/v1/events"
		if wait != pb.WaitFor_WAIT_FOR_UNSPECIFIED {
			path += "?wait=" + wait.String()
		}
		r := h.rest(t, http.MethodPost, path, token, eventJSON(t, ev))
		if r.status != http.StatusOK {
			e := r.error(t)
			if httpStatus[codes.Code(e.Code)] != r.status {
				t.Errorf("HTTP status %d for code %v", r.status, codes.Code(e.Code))
			}
			return nil, codes.Code(e.Code), e.Message
		}
		resp := &pb.AppendResponse{}
		r.decode(t, resp)
		return resp, codes.OK, ""
	}
	t.Fatalf("unknown transport %q", transport)
	return nil, 0, ""
}

func (h *harness) appendBatchVia(t *testing.T, transport, token string, req *pb.AppendBatchRequest) *pb.AppendBatchResponse {
	t.Helper()
	switch transport {
	case "grpc":
		resp, err := h.client.AppendBatch(withToken(t.Context(), token), req)
		if err != nil {
			t.Fatalf("AppendBatch: %v", err)
		}
		return resp
	case "rest":
		b, err := protojsonMarshal(req)
		if err != nil {
			t.Fatal(err)
		}
		resp := &pb.AppendBatchResponse{}
		h.rest(t, http.MethodPost, "/v1/events:batch", token, b).decode(t, resp)
		return resp
	}
	t.Fatalf("unknown transport %q", transport)
	return nil
}

// checkReceipt verifies r with x/mod and checks that its leaf holds ev,
// submitted by submitter.
func (h *harness) checkReceipt(t *testing.T, r *pb.Receipt, index uint64, leafHash []byte, ev *pb.ProvenanceEvent, submitter string) {
	t.Helper()
	h.verifyReceipt(t, r)
	if r.GetIndex() != index {
		t.Errorf("receipt index %d, want %d", r.GetIndex(), index)
	}
	if h := tlog.RecordHash(r.GetLeaf()); string(h[:]) != string(leafHash) {
		t.Errorf("tlog.RecordHash(receipt leaf) = %x, response leaf_hash %x", h, leafHash)
	}
	entry, err := event.DecodeLeaf(r.GetLeaf())
	if err != nil {
		t.Fatalf("receipt leaf does not decode: %v", err)
	}
	if !proto.Equal(entry.GetEvent(), ev) {
		t.Errorf("receipt leaf holds another event:\n got %v\nwant %v", entry.GetEvent(), ev)
	}
	if entry.GetSubmitter() != submitter {
		t.Errorf("receipt leaf submitter %q, want %q", entry.GetSubmitter(), submitter)
	}
}

func TestAppendWaitForPublished(t *testing.T) {
	h := startHarness(t, "")
	for _, transport := range transports {
		for _, who := range []struct{ token, name string }{{adminToken, "admin"}, {acmeToken, acmeName}} {
			t.Run(transport+"/"+who.name, func(t *testing.T) {
				ev := readEvent(t, uniqueID(t, "ev"))
				resp, code, msg := h.appendVia(t, transport, who.token, ev, pb.WaitFor_WAIT_FOR_PUBLISHED)
				if code != codes.OK {
					t.Fatalf("Append: %v %s", code, msg)
				}
				if resp.GetDuplicate() {
					t.Error("first append is a duplicate")
				}
				h.checkReceipt(t, resp.GetReceipt(), resp.GetIndex(), resp.GetLeafHash(), ev, who.name)

				// The same event again, by someone else: the receipt is the
				// original leaf, submitter and all.
				other := adminToken
				if who.token == adminToken {
					other = acmeToken
				}
				again, code, msg := h.appendVia(t, transport, other, proto.Clone(ev).(*pb.ProvenanceEvent), pb.WaitFor_WAIT_FOR_PUBLISHED)
				if code != codes.OK {
					t.Fatalf("Append again: %v %s", code, msg)
				}
				if !again.GetDuplicate() || again.GetIndex() != resp.GetIndex() {
					t.Errorf("again: index %d duplicate %v, want %d true", again.GetIndex(), again.GetDuplicate(), resp.GetIndex())
				}
				h.checkReceipt(t, again.GetReceipt(), resp.GetIndex(), resp.GetLeafHash(), ev, who.name)
				if string(again.GetReceipt().GetLeaf()) != string(resp.GetReceipt().GetLeaf()) {
					t.Error("duplicate's receipt leaf differs from the original")
				}
			})
		}
	}

	t.Run("sequenced only", func(t *testing.T) {
		for _, wait := range []pb.WaitFor{pb.WaitFor_WAIT_FOR_UNSPECIFIED, pb.WaitFor_WAIT_FOR_SEQUENCED} {
			resp := h.mustAppend(t, readEvent(t, uniqueID(t, wait.String())), wait)
			if resp.GetReceipt() != nil {
				t.Errorf("wait %v: got a receipt", wait)
			}
			if len(resp.GetLeafHash()) != 32 {
				t.Errorf("wait %v: leaf hash of %d bytes", wait, len(resp.GetLeafHash()))
			}
		}
	})
}

// batchView is what TestAppendBatchMixed compares of one AppendResult.
type batchView struct {
	Index     uint64
	Duplicate bool
	Code      codes.Code
	Field     string
	Receipt   bool
}

func viewOf(r *pb.AppendResult) batchView {
	return batchView{Index: r.GetIndex(), Duplicate: r.GetDuplicate(), Code: codes.Code(r.GetError().GetCode()), Field: r.GetError().GetField(), Receipt: r.GetReceipt() != nil}
}

func TestAppendBatchMixed(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			h := startHarness(t, "")
			pre := readEvent(t, uniqueID(t, "pre"))
			preIdx := h.mustAppend(t, pre, pb.WaitFor_WAIT_FOR_SEQUENCED).GetIndex()
			base := h.size(t)

			a, b := readEvent(t, uniqueID(t, "a")), readEvent(t, uniqueID(t, "b"))
			badDigest := readEvent(t, uniqueID(t, "bad-digest"))
			badDigest.Inputs[0].Digest = "md5:0123"
			aOther := proto.Clone(a).(*pb.ProvenanceEvent)
			aOther.Rationale = "another body"
			foreign := readEvent(t, uniqueID(t, "foreign"))
			foreign.Tenant = "other"
			noID := readEvent(t, "")
			huge := readEvent(t, uniqueID(t, "huge"))
			for i := range 20 {
				huge.Environment[fmt.Sprintf("pad-%02d", i)] = strings.Repeat("x", 4000)
			}
			req := &pb.AppendBatchRequest{Events: []*pb.ProvenanceEvent{
				a,         // 0 new
				badDigest, // 1 invalid
				b,         // 2 new
				a,         // 3 duplicate of 0 within the request
				aOther,    // 4 conflicts with 0
				foreign,   // 5 tenant the token may not act for
				pre,       // 6 duplicate of an earlier append
				noID,      // 7 invalid
				huge,      // 8 invalid as a whole
			}}
			var trailer metadata.MD
			var resp *pb.AppendBatchResponse
			if transport == "grpc" {
				var err error
				resp, err = h.client.AppendBatch(withToken(t.Context(), acmeToken), req, grpc.Trailer(&trailer))
				if err != nil {
					t.Fatalf("AppendBatch: %v", err)
				}
			} else {
				resp = h.appendBatchVia(t, transport, acmeToken, req)
			}
			// The existing-index trailer belongs to an AlreadyExists answer
			// to the call; a batch answers conflicts per event.
			if v := trailer.Get(server.ExistingIndexKey); v != nil {
				t.Errorf("batch answer carries trailer %s: %q", server.ExistingIndexKey, v)
			}
			if len(resp.GetResults()) != len(req.Events) {
				t.Fatalf("%d results for %d events", len(resp.GetResults()), len(req.Events))
			}
			var got []batchView
			for _, r := range resp.GetResults() {
				got = append(got, viewOf(r))
			}
			ia, ib := got[0].Index, got[2].Index
			if ia == ib || min(ia, ib) != base || max(ia, ib) != base+1 {
				t.Errorf("new events at %d and %d, want %d and %d", ia, ib, base, base+1)
			}
			want := []batchView{
				{Index: ia},
				{Code: codes.InvalidArgument, Field: "events[1].inputs[0].digest"},
				{Index: ib},
				{Index: ia, Duplicate: true},
				{Code: codes.AlreadyExists},
				{Code: codes.PermissionDenied},
				{Index: preIdx, Duplicate: true},
				{Code: codes.InvalidArgument, Field: "events[7].event_id"},
				{Code: codes.InvalidArgument, Field: "events[8]"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			for i, sub := range map[int][]string{
				1: {"events[1].inputs[0].digest"},
				4: {fmt.Sprintf("index %d", ia)},
				5: {"events[5].tenant", `"other"`},
				7: {"events[7].event_id", "required"},
				8: {"events[8]: ", "exceeds 65536 bytes"},
			} {
				for _, s := range sub {
					if m := resp.GetResults()[i].GetError().GetMessage(); !strings.Contains(m, s) {
						t.Errorf("result %d message %q does not contain %q", i, m, s)
					}
				}
			}
			for _, i := range []int{0, 2, 3, 6} {
				if lh := resp.GetResults()[i].GetLeafHash(); len(lh) != 32 {
					t.Errorf("result %d: leaf hash of %d bytes", i, len(lh))
				}
			}
			if string(resp.GetResults()[3].GetLeafHash()) != string(resp.GetResults()[0].GetLeafHash()) {
				t.Error("duplicate within the batch has another leaf hash")
			}
			if got := h.size(t); got != base+2 {
				t.Errorf("log size %d, want %d: exactly the two new events", got, base+2)
			}

			// Published: receipts for every success, one checkpoint.
			c := readEvent(t, uniqueID(t, "c"))
			resp = h.appendBatchVia(t, transport, acmeToken, &pb.AppendBatchRequest{
				Wait:   pb.WaitFor_WAIT_FOR_PUBLISHED,
				Events: []*pb.ProvenanceEvent{c, badDigest, a},
			})
			got = nil
			for _, r := range resp.GetResults() {
				got = append(got, viewOf(r))
			}
			want = []batchView{
				{Index: base + 2, Receipt: true},
				{Code: codes.InvalidArgument, Field: "events[1].inputs[0].digest"},
				{Index: ia, Duplicate: true, Receipt: true},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("published results (-want +got):\n%s", diff)
			}
			for i, ev := range map[int]*pb.ProvenanceEvent{0: c, 2: a} {
				r := resp.GetResults()[i]
				if string(r.GetReceipt().GetCheckpoint()) != string(resp.GetCheckpoint()) {
					t.Errorf("result %d: receipt checkpoint is not the response's", i)
				}
				h.checkReceipt(t, r.GetReceipt(), r.GetIndex(), r.GetLeafHash(), ev, acmeName)
			}
		})
	}
}

func TestIdempotency(t *testing.T) {
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			h := startHarness(t, "")
			h.mustAppend(t, readEvent(t, uniqueID(t, "first")), pb.WaitFor_WAIT_FOR_SEQUENCED)
			ev := readEvent(t, uniqueID(t, "ev"))
			base := h.size(t)

			first, code, msg := h.appendVia(t, transport, adminToken, ev, pb.WaitFor_WAIT_FOR_SEQUENCED)
			if code != codes.OK {
				t.Fatalf("first: %v %s", code, msg)
			}
			if first.GetDuplicate() || first.GetIndex() != base {
				t.Errorf("first: index %d duplicate %v, want %d false", first.GetIndex(), first.GetDuplicate(), base)
			}
			again, code, msg := h.appendVia(t, transport, adminToken, ev, pb.WaitFor_WAIT_FOR_SEQUENCED)
			if code != codes.OK {
				t.Fatalf("again: %v %s", code, msg)
			}
			if diff := cmp.Diff(first.GetIndex(), again.GetIndex()); diff != "" || !again.GetDuplicate() || string(again.GetLeafHash()) != string(first.GetLeafHash()) {
				t.Errorf("again: %v, want index %d, duplicate, leaf hash %x", again, first.GetIndex(), first.GetLeafHash())
			}
			if got := h.size(t); got != base+1 {
				t.Errorf("log size %d, want %d", got, base+1)
			}

			changed := proto.Clone(ev).(*pb.ProvenanceEvent)
			changed.Environment["region"] = "eu-central-1"
			idx := strconv.FormatUint(first.GetIndex(), 10)
			switch transport {
			case "grpc":
				var trailer metadata.MD
				_, err := h.client.Append(withToken(t.Context(), adminToken), &pb.AppendRequest{Event: changed}, grpc.Trailer(&trailer))
				grpcCode(t, err, codes.AlreadyExists, ev.GetEventId(), "index "+idx)
				if diff := cmp.Diff([]string{idx}, trailer.Get(server.ExistingIndexKey)); diff != "" {
					t.Errorf("trailer %s (-want +got):\n%s", server.ExistingIndexKey, diff)
				}
			case "rest":
				// The gateway forwards trailers to clients that accept them.
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.http.URL+"/v1/events", strings.NewReader(string(eventJSON(t, changed))))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+adminToken)
				req.Header.Set("TE", "trailers")
				resp, err := h.http.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				restCode(t, restResponse{status: resp.StatusCode, header: resp.Header, body: body}, codes.AlreadyExists, ev.GetEventId(), "index "+idx)
				if !strings.Contains(string(body), `"existing_index":"`+idx+`"`) {
					t.Errorf("error body lacks existing_index %s: %s", idx, body)
				}
				if got := resp.Trailer.Get("Grpc-Trailer-" + server.ExistingIndexKey); got != idx {
					t.Errorf("HTTP trailer %s = %q, want %q", server.ExistingIndexKey, got, idx)
				}
			}
			if got := h.size(t); got != base+1 {
				t.Errorf("log size %d after a conflicting append, want %d", got, base+1)
			}
			// The conflict did not replace the original.
			e, err := h.client.GetEntry(withToken(t.Context(), adminToken), &pb.GetEntryRequest{Index: first.GetIndex()})
			if err == nil && !proto.Equal(e.GetEntry().GetEvent(), ev) {
				t.Errorf("entry %d holds %v, want the first body", first.GetIndex(), e.GetEntry().GetEvent())
			}
		})
	}
}

// TestConcurrentSameEvent: 50 clients append the same event at once, over
// both transports; exactly one leaf results.
func TestConcurrentSameEvent(t *testing.T) {
	h := startHarness(t, "")
	h.mustAppend(t, readEvent(t, uniqueID(t, "before")), pb.WaitFor_WAIT_FOR_SEQUENCED)
	base := h.size(t)
	ev := readEvent(t, uniqueID(t, "same"))
	const n = 50
	type result struct {
		resp *pb.AppendResponse
		code codes.Code
		msg  string
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r := result{}
			r.resp, r.code, r.msg = h.appendVia(t, transports[i%2], acmeToken, proto.Clone(ev).(*pb.ProvenanceEvent), pb.WaitFor_WAIT_FOR_SEQUENCED)
			results[i] = r
		})
	}
	close(start)
	wg.Wait()
	news := 0
	for i, r := range results {
		if r.code != codes.OK {
			t.Fatalf("client %d: %v %s", i, r.code, r.msg)
		}
		if r.resp.GetIndex() != base {
			t.Errorf("client %d: index %d, want %d", i, r.resp.GetIndex(), base)
		}
		if !r.resp.GetDuplicate() {
			news++
		}
	}
	if news != 1 {
		t.Errorf("%d clients got a new entry, want exactly 1", news)
	}
	if got := h.size(t); got != base+1 {
		t.Errorf("log size %d, want %d", got, base+1)
	}
}

// TestIdempotencyAcrossRestart closes the ledger and opens the same
// directory again: duplicates are still recognised, including an event
// appended just before Close.
func TestIdempotencyAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	h := startHarness(t, dir)
	early := readEvent(t, uniqueID(t, "early"))
	earlyIdx := h.mustAppend(t, early, pb.WaitFor_WAIT_FOR_PUBLISHED).GetIndex()
	late := readEvent(t, uniqueID(t, "late"))
	lateIdx := h.mustAppend(t, late, pb.WaitFor_WAIT_FOR_SEQUENCED).GetIndex()
	h.stop(t)

	h = startHarness(t, dir)
	if got := h.size(t); got != 2 {
		t.Fatalf("log size %d after restart, want 2", got)
	}
	for _, c := range []struct {
		ev  *pb.ProvenanceEvent
		idx uint64
	}{{early, earlyIdx}, {late, lateIdx}} {
		for _, transport := range transports {
			resp, code, msg := h.appendVia(t, transport, acmeToken, c.ev, pb.WaitFor_WAIT_FOR_SEQUENCED)
			if code != codes.OK || !resp.GetDuplicate() || resp.GetIndex() != c.idx {
				t.Errorf("%s: re-append of %s over %s: %v %v %s, want duplicate of %d", t.Name(), c.ev.GetEventId(), transport, resp, code, msg, c.idx)
			}
		}
		changed := proto.Clone(c.ev).(*pb.ProvenanceEvent)
		changed.Actor.DisplayName = "someone else"
		var trailer metadata.MD
		_, err := h.client.Append(withToken(t.Context(), adminToken), &pb.AppendRequest{Event: changed}, grpc.Trailer(&trailer))
		grpcCode(t, err, codes.AlreadyExists)
		if diff := cmp.Diff([]string{strconv.FormatUint(c.idx, 10)}, trailer.Get(server.ExistingIndexKey)); diff != "" {
			t.Errorf("trailer (-want +got):\n%s", diff)
		}
	}
	if got := h.size(t); got != 2 {
		t.Errorf("log size %d after re-appends, want 2", got)
	}
	// And the log goes on where it was.
	if idx := h.mustAppend(t, readEvent(t, uniqueID(t, "after")), pb.WaitFor_WAIT_FOR_SEQUENCED).GetIndex(); idx != 2 {
		t.Errorf("first append after restart at %d, want 2", idx)
	}
}
