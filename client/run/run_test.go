package run_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/client/run"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// memLog is an Appender that keeps what it is sent, checking every event
// with the log's own validation.
type memLog struct {
	t      *testing.T
	mu     sync.Mutex
	events []*pb.ProvenanceEvent
	calls  int
}

func (m *memLog) AppendBatch(_ context.Context, evs []*pb.ProvenanceEvent) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	for _, e := range evs {
		if err := event.Validate(e, time.Now()); err != nil {
			m.t.Errorf("event %s is invalid: %v", e.GetEventId(), err)
		}
	}
	m.events = append(m.events, evs...)
	return nil
}

func (m *memLog) ops() []string {
	var out []string
	for _, e := range m.events {
		out = append(out, strings.TrimPrefix(e.GetOperation().String(), "OPERATION_")+"@"+e.GetWorkflow().GetStepId())
	}
	return out
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestStepAndTransport(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer api.Close()
	log := &memLog{t: t}
	rec := &run.Recorder{Appender: log, Tenant: "acme", WorkflowID: "wf"}
	ctx, r, err := rec.Start(t.Context(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &run.Transport{Classification: "internal"}}
	err = run.Step(ctx, "enrich", []*pb.Asset{{Uri: "crm://acme/contacts"}}, nil, func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, api.URL+"/v1/enrich?api_key=SECRET", strings.NewReader(`{"email":"a@b"}`))
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		run.FromContext(ctx).AddOutput(&pb.Asset{Uri: "crm://acme/contacts_enriched"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	failErr := errors.New("quota exceeded")
	if err := run.Step(ctx, "notify", nil, nil, func(context.Context) error { return failErr }); !errors.Is(err, failErr) {
		t.Fatalf("failing step: %v", err)
	}
	if err := r.End(ctx, nil); err != nil {
		t.Fatal(err)
	}
	want := "RUN_START@enrich EXTERNAL_CALL@enrich TRANSFORM@enrich RUN_COMPLETE@enrich RUN_START@notify RUN_FAIL@notify RUN_START@ RUN_COMPLETE@"
	if got := strings.Join(log.ops(), " "); got != want {
		t.Errorf("events:\n%s\nwant:\n%s", got, want)
	}
	if log.calls != 3 {
		t.Errorf("%d AppendBatch calls, want 3 (one per step, one for the run)", log.calls)
	}
	call := log.events[1]
	if call.GetWorkflow().GetRunId() != "run-1/enrich" || call.GetWorkflow().GetParentRunId() != "run-1" {
		t.Errorf("step run links: %v", call.GetWorkflow())
	}
	ext := call.GetExtensions()
	if ext["http.method"] != "POST" || ext["http.status"] != "200" || ext["http.query_digest"] != sha("api_key=SECRET") {
		t.Errorf("call extensions: %v", ext)
	}
	if in := call.GetInputs()[0]; in.GetUri() != api.URL+"/v1/enrich" || in.GetDigest() != sha(`{"ok":true}`) || in.GetClassification() != "internal" {
		t.Errorf("call input (the response): %v", in)
	}
	if out := call.GetOutputs()[0]; out.GetUri() != api.URL+"/v1/enrich#request" || out.GetDigest() != sha(`{"email":"a@b"}`) {
		t.Errorf("call output (the request): %v", out)
	}
	for _, e := range log.events {
		for k, v := range e.GetExtensions() {
			if strings.Contains(v, "SECRET") {
				t.Errorf("%s %s leaks the query", e.GetEventId(), k)
			}
		}
	}
	step := log.events[2]
	var uris []string
	for _, a := range step.GetInputs() {
		uris = append(uris, a.GetUri())
	}
	if strings.Join(uris, " ") != "crm://acme/contacts "+api.URL+"/v1/enrich" || len(step.GetOutputs()) != 2 {
		t.Errorf("step event inputs %v outputs %v", uris, step.GetOutputs())
	}
	if got := log.events[5].GetExtensions()["error"]; got != "quota exceeded" {
		t.Errorf("RUN_FAIL error %q", got)
	}
	if err := run.Step(t.Context(), "x", nil, nil, func(context.Context) error { return nil }); !errors.Is(err, run.ErrNoRun) {
		t.Errorf("Step without a run: %v", err)
	}
}

func TestDB(t *testing.T) {
	sql.Register("provlog-fake", fakeDriver{})
	raw, err := sql.Open("provlog-fake", "")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	db := &run.DB{DB: raw, URI: "postgres://warehouse/analytics", Classification: "pii"}
	log := &memLog{t: t}
	ctx, r, _ := (&run.Recorder{Appender: log, Tenant: "acme", WorkflowID: "wf"}).Start(t.Context(), "r")
	err = run.Step(ctx, "copy", nil, nil, func(ctx context.Context) error {
		rows, err := db.Read(ctx, "public.customers", []string{"id", "email"}, "SELECT id, email FROM public.customers")
		if err != nil {
			return err
		}
		rows.Close()
		_, err = db.Write(ctx, "public.customers_copy", []string{"id", "email"}, "INSERT INTO public.customers_copy SELECT * FROM public.customers")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r.End(ctx, nil)
	if got := strings.Join(log.ops(), " "); got != "RUN_START@copy READ@copy WRITE@copy TRANSFORM@copy RUN_COMPLETE@copy RUN_START@ RUN_COMPLETE@" {
		t.Fatalf("events: %s", got)
	}
	w := log.events[2]
	if w.GetOutputs()[0].GetUri() != "postgres://warehouse/analytics/public.customers_copy" || w.GetExtensions()["sql.rows_affected"] != "3" {
		t.Errorf("write event: %v", w)
	}
	tr := log.events[3]
	if tr.GetInputs()[0].GetUri() != "postgres://warehouse/analytics/public.customers" || tr.GetOutputs()[0].GetClassification() != "pii" {
		t.Errorf("step event: %v", tr)
	}
}

// fakeDriver is a database/sql driver that answers every query with no
// rows and every statement with 3 rows affected.
type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return fakeConn{}, nil }

type fakeConn struct{}

func (fakeConn) Prepare(q string) (driver.Stmt, error) { return fakeStmt{}, nil }
func (fakeConn) Close() error                          { return nil }
func (fakeConn) Begin() (driver.Tx, error)             { return nil, errors.New("no transactions") }

type fakeStmt struct{}

func (fakeStmt) Close() error                               { return nil }
func (fakeStmt) NumInput() int                              { return -1 }
func (fakeStmt) Exec([]driver.Value) (driver.Result, error) { return driver.RowsAffected(3), nil }
func (fakeStmt) Query([]driver.Value) (driver.Rows, error)  { return fakeRows{}, nil }

type fakeRows struct{}

func (fakeRows) Columns() []string         { return []string{"id", "email"} }
func (fakeRows) Close() error              { return nil }
func (fakeRows) Next([]driver.Value) error { return io.EOF }
