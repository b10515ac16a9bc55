package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const (
	benchTenant = "bench"
	// padChunk is the longest padding value put in one extensions entry;
	// event.Validate allows map values up to 4096 bytes.
	padChunk = 4000
	// minEventSize and maxEventSize bound --event-size: every shape is
	// smaller than the minimum without padding (provlog events are about
	// 1 KB), and the largest leaf must stay under tessera's 64 KiB entry
	// limit.
	minEventSize = 1024
	maxEventSize = 60000
	// benchSubmitter is the submitter written into baseline leaves: the
	// name provlogd gives its bootstrap admin token, so the baseline's
	// leaves have the same size as provlogd's.
	benchSubmitter = "admin"
)

// shape is one kind of synthetic event; the generator cycles through them
// so the stream looks like a pipeline: mostly transforms, some reads,
// writes and external calls.
type shape int

const (
	shapeRead shape = iota
	shapeTransform
	shapeExternalCall
	shapeWrite
	shapeTransformRead
	numShapes
)

// shapeCycle is the order events are generated in, by sequence number.
// Every input is what an earlier event of the cycle wrote or read, as in
// a real pipeline (build says which), so the lineage index links every
// event and reports no gap.
var shapeCycle = [...]shape{
	shapeRead, shapeTransformRead, shapeExternalCall, shapeTransform,
	shapeWrite, shapeTransform, shapeRead, shapeTransformRead,
}

// maxDigits is the most decimal digits a uint64 has.
const maxDigits = 20

func digits(n uint64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// eventsPerRun groups consecutive events into one synthetic workflow run.
const eventsPerRun = 100

// generator makes valid, unique synthetic events of about one encoded size.
// It is safe for concurrent use.
type generator struct {
	runID string // unique per generator, so runs never collide on event ids
	host  string
	pad   string // padChunk random characters
	// padTo[s][d] is the padding that brings an event of shape s whose
	// sequence number has d decimal digits to the target size.
	padTo [numShapes][maxDigits + 1]int
	seq   atomic.Uint64
	now   func() time.Time
	kind  eventKind
}

// newGenerator returns a generator of plain events whose leaves
// (event.NewLeaf) are about size bytes, within a few bytes: the event id
// and the submitter vary a little in length.
func newGenerator(size int) (*generator, error) {
	return newKindGenerator(size, eventKind{name: kindPlain})
}

// newKindGenerator is newGenerator for events of kind: padded so that the
// leaf the log makes of them (signature included, sensitive values
// sealed) is about size bytes, or as small as the kind allows.
func newKindGenerator(size int, kind eventKind) (*generator, error) {
	if size < minEventSize || size > maxEventSize {
		return nil, fmt.Errorf("event size %d is outside [%d, %d]", size, minEventSize, maxEventSize)
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("couldn't make a run id: %w", err)
	}
	raw := make([]byte, padChunk)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("couldn't make padding: %w", err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	g := &generator{
		runID: hex.EncodeToString(id[:]),
		host:  host,
		pad:   base64.RawURLEncoding.EncodeToString(raw)[:padChunk],
		now:   time.Now,
		kind:  kind,
	}
	// Calibrate each shape and length of sequence number once, so that
	// generating an event never has to encode it.
	for s := range numShapes {
		probe := uint64(1)
		for d := 1; d <= maxDigits; d++ {
			pad, err := g.calibrate(probe, s, size)
			if err != nil {
				return nil, err
			}
			g.padTo[s][d] = pad
			probe *= 10
		}
	}
	return g, nil
}

// calibrate returns the padding that brings event n of shape s to size
// bytes, or 0 if it is that big already.
func (g *generator) calibrate(n uint64, s shape, size int) (int, error) {
	base, err := g.leaf(g.dress(g.build(n, s, 0), n))
	if err != nil {
		return 0, fmt.Errorf("couldn't encode a %v event: %w", s, err)
	}
	pad := size - len(base)
	if pad <= 0 {
		return 0, nil
	}
	// Each padding entry costs a key and CBOR headers besides its value:
	// measure and correct by the difference until it fits, as header sizes
	// step with length.
	for range 4 {
		b, err := g.leaf(g.dress(g.build(n, s, pad), n))
		if err != nil {
			return 0, fmt.Errorf("couldn't encode a padded %v event: %w", s, err)
		}
		if len(b) == size {
			break
		}
		pad = max(pad+size-len(b), 0)
	}
	return pad, nil
}

// leaf returns the leaf provlog would make of e, submitted by
// benchSubmitter: with sensitive values sealed (sealedCopy).
func (g *generator) leaf(e *provlogv1.ProvenanceEvent) ([]byte, error) {
	if len(e.GetSensitive()) > 0 {
		e = sealedCopy(e)
	}
	_, b, err := event.NewLeaf(e, g.now(), benchSubmitter)
	return b, err
}

// next returns a new event with a fresh event id and the current time.
func (g *generator) next() *provlogv1.ProvenanceEvent {
	n := g.seq.Add(1)
	s := shapeCycle[n%uint64(len(shapeCycle))]
	return g.dress(g.build(n, s, g.padTo[s][digits(n)]), n)
}

// nextN returns n new events.
func (g *generator) nextN(n int) []*provlogv1.ProvenanceEvent {
	evs := make([]*provlogv1.ProvenanceEvent, n)
	for i := range evs {
		evs[i] = g.next()
	}
	return evs
}

func (s shape) String() string {
	switch s {
	case shapeRead:
		return "read"
	case shapeTransform:
		return "transform"
	case shapeTransformRead:
		return "transform of a read"
	case shapeExternalCall:
		return "external call"
	case shapeWrite:
		return "write"
	}
	return "shape(" + strconv.Itoa(int(s)) + ")"
}

func digestOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// build makes event number n of shape s with pad bytes of padding. The
// events of one generator form chains like testdata/events, following
// shapeCycle: a read (event n-1) of CRM contacts is transformed (event n,
// shapeTransformRead) into staging part n; the external call and the write
// after a transform read the part it wrote (n-1); a transform after one of
// them reads the part the transform before it wrote (n-2).
func (g *generator) build(n uint64, s shape, pad int) *provlogv1.ProvenanceEvent {
	seq := strconv.FormatUint(n, 10)
	run := n / eventsPerRun
	wf := &provlogv1.Workflow{
		Platform:        "provbench",
		PlatformVersion: runtime.Version(),
		WorkflowId:      "bench-pipeline",
		WorkflowVersion: "1",
		RunId:           g.runID + "-r" + strconv.FormatUint(run, 10),
		StepId:          "step-" + strconv.FormatUint(n%eventsPerRun, 10),
	}
	if run > 0 {
		wf.ParentRunId = g.runID + "-r" + strconv.FormatUint(run-1, 10)
	}
	// Part i of the staging data, written by event i.
	part := func(i uint64) *provlogv1.Asset {
		p := strconv.FormatUint(i, 10)
		return &provlogv1.Asset{
			Uri:            "s3://bench-staging/" + g.runID + "/part-" + p + ".parquet",
			Version:        "v" + p,
			Digest:         digestOf(g.runID, "part", p),
			Fields:         []string{"email", "first_name", "last_name", "full_name"},
			Classification: "pii",
		}
	}
	e := &provlogv1.ProvenanceEvent{
		SchemaVersion: 1,
		EventId:       "bench:" + g.runID + ":" + seq,
		Tenant:        benchTenant,
		EventTime:     timestamppb.New(g.now()),
		Actor: &provlogv1.Actor{
			Type:        provlogv1.ActorType_ACTOR_TYPE_SERVICE,
			Id:          "svc-provbench@bench.example",
			OnBehalfOf:  "workflow:bench-pipeline",
			DisplayName: "provbench",
		},
		Workflow: wf,
		Environment: map[string]string{
			"host":    g.host,
			"region":  "local",
			"runtime": runtime.Version(),
		},
		Extensions: map[string]string{
			"bench.seq": seq,
		},
	}
	// The CRM contacts event i read.
	contacts := func(i uint64) *provlogv1.Asset {
		s := strconv.FormatUint(i, 10)
		return &provlogv1.Asset{
			Uri:            "crm://bench-crm/contacts",
			Version:        "snapshot-" + s,
			Digest:         digestOf(g.runID, "contacts", s),
			Fields:         []string{"contact_id", "first_name", "last_name", "email", "company_domain"},
			Classification: "pii",
			RecordKey:      "C-" + s,
		}
	}
	switch s {
	case shapeRead:
		e.Operation = provlogv1.Operation_OPERATION_READ
		e.Inputs = []*provlogv1.Asset{contacts(n)}
	case shapeTransform, shapeTransformRead:
		in, out := part(max(n, 2)-2), part(n)
		if s == shapeTransformRead {
			in = contacts(n - 1)
		}
		e.Operation = provlogv1.Operation_OPERATION_TRANSFORM
		e.Inputs = []*provlogv1.Asset{in}
		e.Outputs = []*provlogv1.Asset{out}
		e.FieldLineage = []*provlogv1.FieldLineage{
			{OutputUri: out.Uri, OutputField: "email", Sources: []*provlogv1.FieldRef{{Uri: in.Uri, Field: "email"}}, Transformation: "lowercase"},
			{OutputUri: out.Uri, OutputField: "full_name", Sources: []*provlogv1.FieldRef{{Uri: in.Uri, Field: "first_name"}, {Uri: in.Uri, Field: "last_name"}}, Transformation: "concat"},
		}
	case shapeExternalCall:
		in := part(n - 1)
		in.Fields = []string{"email"} // enriched by email domain
		e.Operation = provlogv1.Operation_OPERATION_EXTERNAL_CALL
		e.Inputs = []*provlogv1.Asset{in}
		e.Outputs = []*provlogv1.Asset{{
			Uri:            "https://api.enrich.example/v2/companies",
			Version:        "2026-11-01",
			Digest:         digestOf(g.runID, "enrich", seq),
			Fields:         []string{"domain", "legal_name", "industry"},
			Classification: "public",
		}}
		e.Extensions["http.method"] = "POST"
		e.Extensions["http.status"] = "200"
	case shapeWrite:
		in := part(n - 1)
		e.Operation = provlogv1.Operation_OPERATION_WRITE
		e.Inputs = []*provlogv1.Asset{in}
		e.Outputs = []*provlogv1.Asset{{
			Uri:            "postgres://warehouse/bench.customers",
			Version:        "txid:" + seq,
			Digest:         digestOf(g.runID, "customers", seq),
			Fields:         []string{"customer_key", "email", "full_name"},
			Classification: "pii",
		}}
	}
	for i := 0; pad > 0; i++ {
		k := min(pad, padChunk)
		e.Extensions[fmt.Sprintf("bench.pad.%02d", i)] = g.pad[:k]
		pad -= k
	}
	return e
}
