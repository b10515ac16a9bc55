package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

// TestRateLimits: an identity over its rate gets ResourceExhausted with
// RetryInfo and nothing is appended; the tenant bucket is shared by the
// tenant's callers; admins are not limited; REST maps it to 429.
func TestRateLimits(t *testing.T) {
	h := startAdminHarnessWith(t, func(c *server.Config, _ string) {
		c.Limits = server.Limits{IdentityRate: 0.01, IdentityBurst: 3, TenantRate: 0.01, TenantBurst: 5}
	})
	a1 := h.token(t, "a1", []string{"appender"}, []string{"acme"}, "")
	a2 := h.token(t, "a2", []string{"appender"}, []string{"acme"}, "")
	app := func(tok, id string) error {
		_, err := h.client.Append(withToken(t.Context(), tok), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, id))})
		return err
	}
	for i := range 3 {
		if err := app(a1, "a1-"+string(rune('0'+i))); err != nil {
			t.Fatalf("append %d within the burst: %v", i, err)
		}
	}
	before := h.size(t)
	st := grpcCode(t, app(a1, "a1-over"), codes.ResourceExhausted, "identity token:a1", "retry after")
	var ri *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			ri = r
		}
	}
	if ri == nil || ri.GetRetryDelay().AsDuration() <= 0 {
		t.Errorf("ResourceExhausted without a positive RetryInfo: %v", st.Details())
	}
	// A batch larger than the burst can never pass: said so, no RetryInfo.
	evs := []*pb.ProvenanceEvent{readEvent(t, uniqueID(t, "b1")), readEvent(t, uniqueID(t, "b2")), readEvent(t, uniqueID(t, "b3")), readEvent(t, uniqueID(t, "b4"))}
	_, err := h.client.AppendBatch(withToken(t.Context(), a2), &pb.AppendBatchRequest{Events: evs})
	grpcCode(t, err, codes.ResourceExhausted, "burst")
	// a2 has its own identity bucket, but shares acme's: 3 of 5 are gone.
	if err := app(a2, "a2-1"); err != nil {
		t.Fatalf("a2 within the tenant's burst: %v", err)
	}
	if err := app(a2, "a2-2"); err != nil {
		t.Fatalf("a2 within the tenant's burst: %v", err)
	}
	grpcCode(t, app(a2, "a2-3"), codes.ResourceExhausted, "tenant acme")
	restCode429 := h.rest(t, http.MethodPost, "/v1/events", a2, eventJSON(t, readEvent(t, uniqueID(t, "rest"))))
	if restCode429.status != http.StatusTooManyRequests {
		t.Errorf("REST over the limit: %d %s, want 429", restCode429.status, restCode429.body)
	}
	if got := h.size(t); got != before+2 {
		t.Errorf("log grew from %d to %d, want exactly the 2 allowed appends", before, got)
	}
	// Admins are not limited.
	for i := range 10 {
		if err := app(adminToken, "admin-"+string(rune('0'+i))); err != nil {
			t.Fatalf("admin append %d: %v", i, err)
		}
	}
	body := string(h.rest(t, http.MethodGet, "/metrics", adminToken, nil).body)
	for _, want := range []string{`provlog_rate_limited_total{kind="identity"} 2`, `provlog_rate_limited_total{kind="tenant"} 2`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAccessAudit: reads are counted per identity; many NotFound answers
// and a read spike far above the identity's baseline raise the alert
// metric and a WARN line that names the identity and never the token.
func TestAccessAudit(t *testing.T) {
	var logs syncBuffer
	clk := &storeClock{t: testNow}
	h := startAdminHarnessWith(t, func(c *server.Config, _ string) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
		c.AccessAudit = server.AccessAudit{Window: time.Minute, SpikeFactor: 5, MinSpike: 20, Probes: 10, Now: clk.now}
	})
	reader := h.token(t, "probe-reader", []string{"reader"}, []string{"other"}, "")
	idx := h.mustAppend(t, readEvent(t, uniqueID(t, "acme")), pb.WaitFor_WAIT_FOR_PUBLISHED).GetIndex()
	own := readEvent(t, uniqueID(t, "own"))
	own.Tenant = "other"
	ownIdx := h.mustAppend(t, own, pb.WaitFor_WAIT_FOR_PUBLISHED).GetIndex()
	get := func(i uint64) error {
		_, err := h.client.GetEntry(withToken(t.Context(), reader), &pb.GetEntryRequest{Index: i})
		return err
	}
	// Probing acme's entry: NotFound each time; the 10th raises the alert.
	for range 10 {
		grpcCode(t, get(idx), codes.NotFound)
	}
	// Baseline: a few reads a minute for five minutes...
	for range 5 {
		clk.add(time.Minute)
		for range 3 {
			if err := get(ownIdx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// ...then a burst: more than max(20, 5 x baseline) in one minute.
	clk.add(time.Minute)
	for range 25 {
		if err := get(ownIdx); err != nil {
			t.Fatal(err)
		}
	}
	body := string(h.rest(t, http.MethodGet, "/metrics", adminToken, nil).body)
	for _, want := range []string{
		`provlog_access_alerts_total{identity="token:probe-reader",kind="not_found_probes"} 1`,
		`provlog_access_alerts_total{identity="token:probe-reader",kind="read_spike"} 1`,
		`provlog_access_not_found_total{identity="token:probe-reader"} 10`,
		`provlog_access_reads_total{identity="token:probe-reader",method="/provlog.v1.LogService/GetEntry"} 50`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	out := logs.String()
	for _, want := range []string{"level=WARN msg=\"access alert: many NotFound answers (probing?)\"", "kind=read_spike", "identity=token:probe-reader"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, reader) || strings.Contains(out, reader[3:]) || strings.Contains(out, adminToken) {
		t.Error("a token appears in the log")
	}
}
