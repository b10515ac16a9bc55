package lineage

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// synth generates a log shaped like real workflows, as a pure function of
// the leaf index, so that any size can be served without holding it.
//
// Runs of eight events, round robin over tenants. Each run starts from an
// output of an earlier run of its tenant (or, one time in ten, from an
// external CRM), sometimes joins a second earlier output (fan-in: every
// other run), reads it, transforms it through three staging steps (the last
// one sometimes joining an external reference API), is checked or approved,
// and writes a new version of one of 997 warehouse tables, which later runs
// read (fan-out). Following upstream from a table version walks a long
// chain of runs, four activity hops per run.
//
//	0 RUN_START   (parent: the run that produced input A)
//	1 READ        [A]
//	2 TRANSFORM   [A, B?] -> T1
//	3 TRANSFORM   [T1] -> T2
//	4 TRANSFORM   [T2, S?] -> T3
//	5 APPROVAL of 4 (every fourth run), else READ [T3] (a check)
//	6 WRITE       [T3] -> OUT
//	7 RUN_COMPLETE -> OUT
type synth struct {
	tenants int
	// bad lists leaves that are garbage instead of events.
	bad map[uint64]bool
}

const synthRunLen = 8

var synthBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mix(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func h(r, salt uint64) uint64 { return mix(r*0x100000001b3 + salt) }

// prev picks an earlier run of the same tenant as r, or false for the first
// runs of a tenant.
func (g synth) prev(r, salt uint64) (uint64, bool) {
	t := uint64(g.tenants)
	if r < t {
		return 0, false
	}
	k := min(r/t, 250)
	return r - t*(1+h(r, salt)%k), true
}

func digestOf(s string) string {
	d := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(d[:])
}

func asset(uri, version, class string, fields ...string) *provlogv1.Asset {
	return &provlogv1.Asset{Uri: uri, Version: version, Digest: digestOf(uri + "@" + version), Classification: class, Fields: fields}
}

func synthOut(r uint64) *provlogv1.Asset {
	return asset(fmt.Sprintf("warehouse://dw/table-%d", r%997), fmt.Sprintf("r%d", r), "internal", "id", "value", "amount")
}

func synthStage(r uint64, n int) *provlogv1.Asset {
	return asset(fmt.Sprintf("s3://lake/stage/t%d-%d", n, r%101), fmt.Sprintf("r%d", r), "confidential", "id", "value")
}

// inputA is the run's main input and the run that produced it, if any.
func (g synth) inputA(r uint64) (*provlogv1.Asset, uint64, bool) {
	if p, ok := g.prev(r, 2); ok && h(r, 1)%10 != 0 {
		return synthOut(p), p, true
	}
	return asset(fmt.Sprintf("crm://src-%d/objects", h(r, 5)%50), fmt.Sprintf("snap-%d", r/5000), "pii", "id", "email", "name"), 0, false
}

func (g synth) inputB(r uint64) (*provlogv1.Asset, bool) {
	if p, ok := g.prev(r, 4); ok && h(r, 3)%2 == 0 {
		return synthOut(p), true
	}
	return nil, false
}

func (g synth) event(i uint64) *provlogv1.ProvenanceEvent {
	r, slot := i/synthRunLen, i%synthRunLen
	a, parent, internal := g.inputA(r)
	e := &provlogv1.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       fmt.Sprintf("e-%d", i),
		Tenant:        fmt.Sprintf("tenant-%d", r%uint64(g.tenants)),
		EventTime:     timestamppb.New(synthBase.Add(time.Duration(i) * time.Millisecond)),
		Actor:         &provlogv1.Actor{Type: provlogv1.ActorType_ACTOR_TYPE_SERVICE, Id: fmt.Sprintf("svc-%d@example.com", r%13)},
		Workflow: &provlogv1.Workflow{
			Platform: "airflow", WorkflowId: fmt.Sprintf("wf-%d", r%37), RunId: fmt.Sprintf("run-%d", r),
			StepId: fmt.Sprintf("s%d", slot),
		},
	}
	if internal {
		e.Workflow.ParentRunId = fmt.Sprintf("run-%d", parent)
	}
	lineage := func(out *provlogv1.Asset, in *provlogv1.Asset) []*provlogv1.FieldLineage {
		return []*provlogv1.FieldLineage{{OutputUri: out.Uri, OutputField: "id", Sources: []*provlogv1.FieldRef{{Uri: in.Uri, Field: "id"}}, Transformation: "identity"}}
	}
	switch slot {
	case 0:
		e.Operation = provlogv1.Operation_OPERATION_RUN_START
		e.Actor.Type = provlogv1.ActorType_ACTOR_TYPE_WORKFLOW
	case 1:
		e.Operation = provlogv1.Operation_OPERATION_READ
		e.Inputs = []*provlogv1.Asset{a}
	case 2:
		e.Operation = provlogv1.Operation_OPERATION_TRANSFORM
		e.Inputs = []*provlogv1.Asset{a}
		if b, ok := g.inputB(r); ok {
			e.Inputs = append(e.Inputs, b)
		}
		e.Outputs = []*provlogv1.Asset{synthStage(r, 1)}
		e.FieldLineage = lineage(e.Outputs[0], a)
	case 3:
		e.Operation = provlogv1.Operation_OPERATION_TRANSFORM
		e.Inputs = []*provlogv1.Asset{synthStage(r, 1)}
		e.Outputs = []*provlogv1.Asset{synthStage(r, 2)}
		e.FieldLineage = lineage(e.Outputs[0], e.Inputs[0])
	case 4:
		e.Operation = provlogv1.Operation_OPERATION_TRANSFORM
		e.Inputs = []*provlogv1.Asset{synthStage(r, 2)}
		if h(r, 6)%10 < 3 {
			e.Inputs = append(e.Inputs, asset(fmt.Sprintf("https://api.ref-%d.example/data", h(r, 7)%20), fmt.Sprintf("d%d", r/1000), "public", "id", "region"))
		}
		e.Outputs = []*provlogv1.Asset{synthStage(r, 3)}
		e.FieldLineage = lineage(e.Outputs[0], e.Inputs[0])
	case 5:
		if r%4 == 0 {
			e.Operation = provlogv1.Operation_OPERATION_APPROVAL
			e.Actor = &provlogv1.Actor{Type: provlogv1.ActorType_ACTOR_TYPE_PERSON, Id: fmt.Sprintf("steward-%d@example.com", r%5)}
			e.SubjectEventIds = []string{fmt.Sprintf("e-%d", i-1)}
			e.Rationale = "reviewed the staging output"
		} else {
			e.Operation = provlogv1.Operation_OPERATION_READ
			e.Inputs = []*provlogv1.Asset{synthStage(r, 3)}
		}
	case 6:
		e.Operation = provlogv1.Operation_OPERATION_WRITE
		e.Inputs = []*provlogv1.Asset{synthStage(r, 3)}
		e.Outputs = []*provlogv1.Asset{synthOut(r)}
		e.FieldLineage = lineage(e.Outputs[0], e.Inputs[0])
	case 7:
		e.Operation = provlogv1.Operation_OPERATION_RUN_COMPLETE
		e.Actor.Type = provlogv1.ActorType_ACTOR_TYPE_WORKFLOW
		e.Outputs = []*provlogv1.Asset{synthOut(r)}
	}
	return e
}

func (g synth) leaf(i uint64) ([]byte, error) {
	if g.bad[i] {
		return []byte(fmt.Sprintf("garbage leaf %d", i)), nil
	}
	_, leaf, err := event.NewLeaf(g.event(i), synthBase.Add(time.Duration(i)*time.Millisecond+time.Second), "token:synth")
	return leaf, err
}

// synthSource serves a synth log of size leaves, building each bundle on
// demand.
type synthSource struct {
	g    synth
	mu   sync.Mutex
	size uint64
	// failBundle, when set, fails reads of that bundle once (a flaky log).
	failBundle func(index uint64) error
}

func (s *synthSource) setSize(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = n
}

func (s *synthSource) IntegratedSize(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, nil
}

func (s *synthSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	s.mu.Lock()
	size, fail := s.size, s.failBundle
	s.mu.Unlock()
	if fail != nil {
		if err := fail(index); err != nil {
			return nil, err
		}
	}
	n := uint64(p)
	if p == 0 {
		n = 256
	}
	first := index * 256
	if first+n > size {
		return nil, fmt.Errorf("bundle %d.p/%d beyond size %d: %w", index, p, size, os.ErrNotExist)
	}
	return synthBundle(s.g, first, n)
}

// leafGen makes leaf i of a generated log.
type leafGen interface {
	leaf(i uint64) ([]byte, error)
}

func synthBundle(g leafGen, first, n uint64) ([]byte, error) {
	var out []byte
	for i := first; i < first+n; i++ {
		l, err := g.leaf(i)
		if err != nil {
			return nil, err
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(l)))
		out = append(out, l...)
	}
	return out, nil
}

// benchLike generates the plain events cmd/provbench generated until
// 2026-11-27 (gen.go, build), without padding or sensitive values: one
// tenant, runs of 100 events, each naming the previous run as its parent,
// in a cycle of read, transform, external call, transform, write,
// transform, read, transform. Event n's transform reads the part event n-1
// wrote, and event n-1 is never a transform: every transform's input is
// unproduced. provbench's chains now link up; this gap-heavy shape stays
// here as the index's worst case.
type benchLike struct{}

func (benchLike) event(n uint64) *provlogv1.ProvenanceEvent {
	seq := fmt.Sprint(n)
	run := n / 100
	wf := &provlogv1.Workflow{
		Platform: "provbench", WorkflowId: "bench-pipeline", WorkflowVersion: "1",
		RunId: fmt.Sprintf("b-r%d", run), StepId: fmt.Sprintf("step-%d", n%100),
	}
	if run > 0 {
		wf.ParentRunId = fmt.Sprintf("b-r%d", run-1)
	}
	part := func(i uint64) *provlogv1.Asset {
		return asset(fmt.Sprintf("s3://bench-staging/b/part-%d.parquet", i), fmt.Sprintf("v%d", i), "pii", "email", "first_name", "last_name", "full_name")
	}
	e := &provlogv1.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       "bench:b:" + seq,
		Tenant:        "bench",
		EventTime:     timestamppb.New(synthBase.Add(time.Duration(n) * time.Millisecond)),
		Actor:         &provlogv1.Actor{Type: provlogv1.ActorType_ACTOR_TYPE_SERVICE, Id: "svc-provbench@bench.example", OnBehalfOf: "workflow:bench-pipeline"},
		Workflow:      wf,
		Environment:   map[string]string{"host": "bench", "region": "local"},
		Extensions:    map[string]string{"bench.seq": seq},
	}
	switch n % 8 {
	case 0, 6:
		e.Operation = provlogv1.Operation_OPERATION_READ
		in := asset("crm://bench-crm/contacts", "snapshot-"+seq, "pii", "contact_id", "first_name", "last_name", "email", "company_domain")
		in.RecordKey = "C-" + seq
		e.Inputs = []*provlogv1.Asset{in}
	case 1, 3, 5, 7:
		in, out := part(n-1), part(n)
		e.Operation = provlogv1.Operation_OPERATION_TRANSFORM
		e.Inputs = []*provlogv1.Asset{in}
		e.Outputs = []*provlogv1.Asset{out}
		e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: out.Uri, OutputField: "email", Sources: []*provlogv1.FieldRef{{Uri: in.Uri, Field: "email"}}, Transformation: "lowercase"}}
	case 2:
		e.Operation = provlogv1.Operation_OPERATION_EXTERNAL_CALL
		e.Inputs = []*provlogv1.Asset{part(n - 1)}
		e.Outputs = []*provlogv1.Asset{asset("https://api.enrich.example/v2/companies", "2026-11-01", "public", "domain", "legal_name", "industry")}
	case 4:
		e.Operation = provlogv1.Operation_OPERATION_WRITE
		e.Inputs = []*provlogv1.Asset{part(n - 1)}
		e.Outputs = []*provlogv1.Asset{asset("postgres://warehouse/bench.customers", "txid:"+seq, "pii", "customer_key", "email", "full_name")}
	}
	return e
}

func (g benchLike) leaf(i uint64) ([]byte, error) {
	_, leaf, err := event.NewLeaf(g.event(i), synthBase.Add(time.Duration(i)*time.Millisecond+time.Second), "admin")
	return leaf, err
}
