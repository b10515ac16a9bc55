package main

import (
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

func TestGeneratedEventsAreValid(t *testing.T) {
	for _, size := range []int{minEventSize, 1500, 4096, 20_000, maxEventSize} {
		g, err := newGenerator(size)
		if err != nil {
			t.Fatalf("newGenerator(%d): %v", size, err)
		}
		ops := map[provlogv1.Operation]int{}
		for range 3 * len(shapeCycle) {
			e := g.next()
			if err := event.Validate(e, time.Now()); err != nil {
				t.Fatalf("size %d: event %s (%v) fails validation: %v", size, e.GetEventId(), e.GetOperation(), err)
			}
			if e.GetTenant() != benchTenant {
				t.Errorf("tenant = %q, want %q", e.GetTenant(), benchTenant)
			}
			ops[e.GetOperation()]++
			_, leaf, err := event.NewLeaf(e, time.Now(), benchSubmitter)
			if err != nil {
				t.Fatalf("size %d: NewLeaf(%s): %v", size, e.GetEventId(), err)
			}
			// Padding makes every shape the same size, give or take a
			// CBOR header's step.
			if d := len(leaf) - size; d < -8 || d > 8 {
				t.Errorf("size %d: %v leaf is %d bytes, want within 8 of %d", size, e.GetOperation(), len(leaf), size)
			}
		}
		for _, op := range []provlogv1.Operation{
			provlogv1.Operation_OPERATION_READ,
			provlogv1.Operation_OPERATION_TRANSFORM,
			provlogv1.Operation_OPERATION_EXTERNAL_CALL,
			provlogv1.Operation_OPERATION_WRITE,
		} {
			if ops[op] == 0 {
				t.Errorf("size %d: no %v event generated", size, op)
			}
		}
	}
}

func TestGeneratedEventIDsAreUnique(t *testing.T) {
	g1, err := newGenerator(1024)
	if err != nil {
		t.Fatal(err)
	}
	g2, err := newGenerator(1024)
	if err != nil {
		t.Fatal(err)
	}
	seen := sync.Map{}
	var wg sync.WaitGroup
	for _, g := range []*generator{g1, g1, g1, g1, g2, g2} {
		wg.Go(func() {
			for range 2000 {
				id := g.next().GetEventId()
				if _, dup := seen.LoadOrStore(id, true); dup {
					t.Errorf("event id %q generated twice", id)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestGeneratedLineageChains(t *testing.T) {
	// A transform reads the part the previous event wrote, as in
	// testdata/events, so the lineage index has chains to walk.
	g, err := newGenerator(1024)
	if err != nil {
		t.Fatal(err)
	}
	a := g.build(7, shapeTransform, 0)
	b := g.build(8, shapeTransform, 0)
	if got, want := b.GetInputs()[0].GetUri(), a.GetOutputs()[0].GetUri(); got != want {
		t.Errorf("event 8 reads %q, want event 7's output %q", got, want)
	}
	if got, want := b.GetInputs()[0].GetDigest(), a.GetOutputs()[0].GetDigest(); got != want {
		t.Errorf("event 8 input digest %q, want event 7's output digest %q", got, want)
	}
	if got := g.build(250, shapeRead, 0).GetWorkflow().GetParentRunId(); got != g.runID+"-r1" {
		t.Errorf("parent run of event 250 = %q, want %q", got, g.runID+"-r1")
	}
}

func TestNewGeneratorRejectsSizes(t *testing.T) {
	for _, size := range []int{0, minEventSize - 1, maxEventSize + 1} {
		if _, err := newGenerator(size); err == nil {
			t.Errorf("newGenerator(%d) succeeded, want an error", size)
		}
	}
}
