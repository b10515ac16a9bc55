package ui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/server"
	"golang.org/x/mod/sumdb/note"
)

const (
	tenantAdminToken = "pl_ui-test-admin"
	acmeReaderToken  = "pl_ui-test-acme-reader"  // reader of tenant acme
	otherReaderToken = "pl_ui-test-other-reader" // reader of tenant globex
)

// startInProcess runs a provlogd in process (ledger, lineage index, server)
// with reader tokens for two tenants: provlogd itself can only create its
// admin token so far. It returns the HTTP base URL, loaded with
// testdata/events (tenant acme).
func startInProcess(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, vkey, err := ledger.LoadOrCreateKeys(dir, "", "provlog.test/ui")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l, err := ledger.Open(ctx, ledger.Config{
		Dir: dir, Signer: signer, Verifier: verifier,
		CheckpointInterval: 100 * time.Millisecond, BatchMaxSize: 256, BatchMaxAge: 10 * time.Millisecond,
		FollowInterval: 50 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := lineage.OpenPebbleStore(filepath.Join(dir, "lineage"), logger)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := lineage.Open(ctx, store, l.Reader(), lineage.Options{Logger: logger, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ix.Run(ctx)
	}()
	tokens := &auth.Tokens{}
	tokens.Add(tenantAdminToken, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	tokens.Add(acmeReaderToken, &auth.Identity{Name: "token:acme-reader", Roles: []auth.Role{auth.RoleReader}, Tenants: []string{"acme"}})
	tokens.Add(otherReaderToken, &auth.Identity{Name: "token:globex-reader", Roles: []auth.Role{auth.RoleReader}, Tenants: []string{"globex"}})
	srv, err := server.New(ctx, server.Config{Ledger: l, Lineage: ix, Auth: tokens, Logger: logger, LogKey: vkey,
		Now: func() time.Time { return time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServing(true)
	hs := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer ccancel()
		l.Close(cctx)
		cancel()
		<-done
		store.Close()
	})
	loadEvents(t, hs.URL, tenantAdminToken)
	return hs.URL
}

// TestBrowserTenantIsolation: a reader of another tenant sees nothing of
// tenant acme, in the page and in the API the page uses; a reader of acme
// sees the trace, verified.
func TestBrowserTenantIsolation(t *testing.T) {
	ctx := newBrowser(t)
	base := startInProcess(t)
	shots := artifactDir(t)

	// The API the page uses: every read of acme by the globex reader is
	// NotFound, indistinguishable from an unknown tenant.
	for _, path := range []string{
		"/v1/lineage?tenant=acme&asset.uri=" + finalRecord + "&direction=DIRECTION_UPSTREAM&depth=10",
		"/v1/lineage?tenant=acme&runId=run-7f3a9c&direction=DIRECTION_BOTH",
		"/v1/lineage/history?tenant=acme&asset.uri=" + finalRecord,
		"/v1/lineage/runs/run-7f3a9c?tenant=acme",
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
		for _, q := range [][2]string{{"asset", finalRecord}, {"run", "run-7f3a9c"}, {"event", "n8n:run-7f3a9c:approve-staging"}} {
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
}
