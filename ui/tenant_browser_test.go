package ui_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The sample run of the warehouse load (testdata/events 10..18).
const (
	workflowB = "warehouse_load_customers"
	runB      = "dataset_triggered__2026-11-26T07:05:12+00:00"
)

// TestBrowserTenantIsolation runs a real provlogd with reader tokens of
// two tenants created through AdminService: a reader of another tenant
// sees nothing of tenant acme, in the page and in the API the page uses; a
// reader of acme sees the trace, verified, and finds a run by its workflow.
func TestBrowserTenantIsolation(t *testing.T) {
	ctx := newBrowser(t)
	pl := startProvlogd(t)
	base := pl.url
	acmeReaderToken := createToken(t, pl, "ui-acme-reader", "reader", "acme")
	otherReaderToken := createToken(t, pl, "ui-globex-reader", "reader", "globex")
	shots := artifactDir(t)

	// The API the page uses: every read of acme by the globex reader is
	// NotFound, indistinguishable from an unknown tenant.
	for _, path := range []string{
		"/v1/lineage?tenant=acme&asset.uri=" + finalRecord + "&direction=DIRECTION_UPSTREAM&depth=10",
		"/v1/lineage?tenant=acme&runId=run-7f3a9c&direction=DIRECTION_BOTH",
		"/v1/lineage/history?tenant=acme&asset.uri=" + finalRecord,
		"/v1/lineage/runs/run-7f3a9c?tenant=acme",
		"/v1/lineage/workflows/" + workflowB + "/runs?tenant=acme",
		"/v1/entries/0", "/v1/entries/6", "/v1/entries/23",
	} {
		if code, body := do(t, http.MethodGet, base+path, otherReaderToken, nil); code != http.StatusNotFound {
			t.Errorf("globex reader GET %s: %d %s, want 404", path, code, body)
		}
		if code, _ := do(t, http.MethodGet, base+path, acmeReaderToken, nil); code != http.StatusOK {
			t.Errorf("acme reader GET %s: %d, want 200", path, code)
		}
	}

	// The page, signed in as the globex reader, once asking for acme and
	// once for its own tenant.
	for _, tenant := range []string{"acme", "globex"} {
		signIn(t, ctx, base+"/ui/", otherReaderToken, tenant)
		for _, q := range [][2]string{{"asset", finalRecord}, {"run", "run-7f3a9c"}, {"event", "n8n:run-7f3a9c:approve-staging"}, {"workflow", workflowB}} {
			if st := search(t, ctx, q[0], q[1], "20"); st != "error" {
				t.Errorf("globex reader, tenant %s, %s %s: state %s: %s", tenant, q[0], q[1], st, text(t, ctx, "#status"))
			}
			if n := eval[int](t, ctx, `document.querySelectorAll("#results button.result").length`); n != 0 {
				t.Errorf("globex reader, tenant %s, %s: %d results", tenant, q[1], n)
			}
			if got := text(t, ctx, "#status"); !strings.Contains(got, "Nothing found") {
				t.Errorf("status = %q", got)
			}
		}
		screenshot(t, ctx, shots, "other-tenant-"+tenant)
		run(t, ctx, "sign out", click("#signout"))
	}

	// The acme reader sees the lineage, verified.
	signIn(t, ctx, base+"/ui/", acmeReaderToken, "acme")
	if st := search(t, ctx, "asset", finalRecord, "20"); st != "ready" {
		t.Fatalf("acme reader: %s", text(t, ctx, "#status"))
	}
	if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "verified" {
		t.Errorf("acme reader badge = %q", got)
	}
	screenshot(t, ctx, shots, "acme-reader")

	// Search by workflow: its runs, each proven; choosing one traces it.
	if st := search(t, ctx, "workflow", workflowB, "2"); st != "ready" {
		t.Fatalf("workflow search: %s", text(t, ctx, "#status"))
	}
	runSel := fmt.Sprintf(`#runs button[data-run=%q]`, runB)
	if got := eval[int](t, ctx, `document.querySelectorAll("#runs button").length`); got != 1 {
		t.Errorf("runs of %s listed: %d, want 1", workflowB, got)
	}
	if st, proof := attr(t, ctx, runSel, "data-status"), attr(t, ctx, runSel, "data-proof"); st != "completed" || proof != "verified" {
		t.Errorf("run %s: status %q, proof %q (%s)", runB, st, proof, attr(t, ctx, runSel, "title"))
	}
	screenshot(t, ctx, shots, "workflow-runs")
	run(t, ctx, "open the run",
		js(`document.getElementById("status").dataset.state = "stale"`),
		click(runSel),
		chromedp.WaitVisible(css(`#status[data-state="ready"], #status[data-state="error"]`)),
		chromedp.WaitVisible(css(`#cy[data-layout="done"]`)),
	)
	if got := attr(t, ctx, "#detail", "data-kind"); got != "run" {
		t.Errorf("after opening the run, details show a %q (%s)", got, text(t, ctx, "#status"))
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#results button.result[data-operation]').length`); n < 9 {
		t.Errorf("the run's trace lists %d steps, want its 9 events at least", n)
	}
	if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "verified" {
		t.Errorf("run trace badge = %q", got)
	}
	screenshot(t, ctx, shots, "workflow-run-trace")
}
