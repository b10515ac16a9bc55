package main

import (
	"context"
	"encoding/binary"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/lineage"
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
	// Every input is what an earlier event wrote or read, as in
	// testdata/events: the lineage index has chains to walk, and no gap
	// to report (an unproduced input in every other event would make the
	// benchmark an anomaly detector's worst case, not a pipeline's log).
	g, err := newGenerator(1024)
	if err != nil {
		t.Fatal(err)
	}
	evs := g.nextN(2000)
	byID := map[string]*provlogv1.ProvenanceEvent{}
	var leaves [][]byte
	written := map[string]bool{} // uri@version of outputs and of what reads read
	for _, e := range evs {
		byID[e.GetEventId()] = e
		for _, in := range e.GetInputs() {
			if e.GetOperation() != provlogv1.Operation_OPERATION_READ && !written[in.GetUri()+"@"+in.GetVersion()] && !strings.HasPrefix(in.GetVersion(), "snapshot-0") {
				t.Errorf("%s (%v) reads %s@%s, which no earlier event wrote or read", e.GetEventId(), e.GetOperation(), in.GetUri(), in.GetVersion())
			}
		}
		for _, a := range append(e.GetOutputs(), e.GetInputs()...) {
			written[a.GetUri()+"@"+a.GetVersion()] = true
		}
		_, leaf, err := event.NewLeaf(e, time.Now(), benchSubmitter)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	if got := g.build(250, shapeRead, 0).GetWorkflow().GetParentRunId(); got != g.runID+"-r1" {
		t.Errorf("parent run of event 250 = %q, want %q", got, g.runID+"-r1")
	}

	// And the real index says so: no gap but one run_without_start per
	// run (the generator emits no RUN_START).
	quiet := slog.New(slog.DiscardHandler)
	store, err := lineage.OpenPebbleStore(t.TempDir(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ix, err := lineage.Open(t.Context(), store, leafSource(leaves), lineage.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Watermark() != uint64(len(leaves)) {
		t.Fatalf("indexed %d of %d leaves", ix.Watermark(), len(leaves))
	}
	runs := int64(len(leaves)/eventsPerRun + 1) // events 1..2000: runs 0..20
	for kind, n := range ix.GapCounts() {
		if want := map[lineage.GapKind]int64{lineage.GapRunWithoutStart: runs}[kind]; n != want {
			t.Errorf("%d gaps of kind %v in %d generated events, want %d", n, kind, len(leaves), want)
		}
	}
}

// leafSource serves leaves as a log's entry bundles, for lineage.Open.
type leafSource [][]byte

func (s leafSource) IntegratedSize(context.Context) (uint64, error) { return uint64(len(s)), nil }

func (s leafSource) ReadEntryBundle(_ context.Context, index uint64, p uint8) ([]byte, error) {
	n := uint64(256)
	if p != 0 {
		n = uint64(p)
	}
	var b []byte
	for _, l := range s[index*256 : index*256+n] {
		b = binary.BigEndian.AppendUint16(b, uint16(len(l)))
		b = append(b, l...)
	}
	return b, nil
}

func TestNewGeneratorRejectsSizes(t *testing.T) {
	for _, size := range []int{0, minEventSize - 1, maxEventSize + 1} {
		if _, err := newGenerator(size); err == nil {
			t.Errorf("newGenerator(%d) succeeded, want an error", size)
		}
	}
}
