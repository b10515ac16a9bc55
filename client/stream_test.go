package client

import (
	"errors"
	"sync"
	"testing"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
)

// TestAppendStreamer: appends from many goroutines share one stream, each
// gets its own answer with verified receipts; a retryable per-event error
// is handed back as is; a receipt for another leaf is caught.
func TestAppendStreamer(t *testing.T) {
	f := newFakeServer(t, 1)
	c := f.newClient(t, nil)
	s := c.AppendStreamer(t.Context())
	evs := f.l.events[:6]
	f.batchFail = map[string]bool{evs[4].GetEventId(): true}
	var wg sync.WaitGroup
	results := make([]*pb.AppendStreamResponse, len(evs))
	errs := make([]error, len(evs))
	for i, ev := range evs {
		wg.Go(func() {
			results[i], errs[i] = s.Append(t.Context(), []*pb.ProvenanceEvent{ev}, pb.WaitFor_WAIT_FOR_PUBLISHED)
		})
	}
	wg.Wait()
	for i := range evs {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		r := results[i].GetResults()
		if len(r) != 1 {
			t.Fatalf("append %d: %d results", i, len(r))
		}
		if i == 4 {
			if codes.Code(r[0].GetError().GetCode()) != codes.Unavailable {
				t.Errorf("append 4: %v, want the per-event Unavailable", r[0])
			}
			continue
		}
		if r[0].GetError() != nil || r[0].GetIndex() != uint64(i) || r[0].GetReceipt() == nil {
			t.Errorf("append %d: %v, want index %d with a receipt", i, r[0], i)
		}
	}
	if n := s.Opened(); n != 1 {
		t.Errorf("%d streams opened, want 1", n)
	}
	s.Close()

	f.setLie(lieReceipt)
	s = c.AppendStreamer(t.Context())
	defer s.Close()
	if _, err := s.Append(t.Context(), evs[:1], pb.WaitFor_WAIT_FOR_PUBLISHED); !errors.Is(err, ErrVerification) {
		t.Errorf("receipt for another leaf: %v, want ErrVerification", err)
	}
}
