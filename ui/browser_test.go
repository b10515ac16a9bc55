package ui_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/provlog/provlog/internal/testbin"
)

// The browser tests drive Debian's chromium (scripts/ci/install-chromium.sh)
// headless through chromedp against provlogd. Screenshots go to
// $PROVLOG_UI_ARTIFACTS when set (kept), else to a t.TempDir() (removed).
// Without chromium they skip, unless PROVLOG_UI_REQUIRE_BROWSER=1 (set by
// scripts/test.sh), which makes a missing browser a failure.

const chromiumPath = "/usr/bin/chromium"

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PROVLOG_UI_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts a fresh headless chromium at 1280x800 and returns a
// context for one tab.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	bin := chromiumPath
	if p := os.Getenv("PROVLOG_CHROMIUM"); p != "" {
		bin = p
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("PROVLOG_UI_REQUIRE_BROWSER") == "1" {
			t.Fatalf("chromium not found at %s: run scripts/ci/install-chromium.sh", bin)
		}
		t.Skipf("chromium not found at %s (scripts/ci/install-chromium.sh installs it)", bin)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancelB()
		cancelA()
	})
	// The page must work at 1280x800: the viewport, not the window.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// run runs browser actions with a deadline, failing the test with the
// step's name.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(actx, actions...); err != nil {
		// Say where the page was.
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		state, _ := chromedp.Run(sctx, chromedp.Evaluate[string](`JSON.stringify({status: document.getElementById("status")?.textContent, layout: document.getElementById("cy")?.dataset.layout})`))
		t.Fatalf("%s: %v (page: %s)", step, err, state)
	}
}

// stepTimeout bounds one step; the machine may be shared and loaded.
const stepTimeout = 60 * time.Second

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// js runs a script for its side effect.
func js(expr string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool]("(() => { "+expr+"; return true })()")(ctx, t)
		return err
	})
}

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png := get(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot())
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// signIn signs in on the page at base (…/ui/) with token and tenant, with
// the key the page prefilled, after clearing the tab's session.
func signIn(t *testing.T, ctx context.Context, base, token, tenant string) {
	t.Helper()
	run(t, ctx, "sign in",
		chromedp.Navigate(base),
		js(`sessionStorage.clear()`),
		chromedp.Navigate(base),
		chromedp.WaitVisible(css("#signin-form")),
		chromedp.SendKeys(css("#token"), token),
		chromedp.SendKeys(css("#tenant"), tenant),
		chromedp.Click(css(`#signin-form button[type="submit"]`)),
		chromedp.WaitVisible(css("#search-value")),
	)
}

// search runs one search from the form and waits for the answer and, when
// it found something, its layout.
func search(t *testing.T, ctx context.Context, kind, value, depth string) string {
	t.Helper()
	run(t, ctx, "search "+value,
		chromedp.SetValue(css("#search-kind"), kind),
		chromedp.SetValue(css("#search-value"), value),
		chromedp.SetValue(css("#search-depth"), depth),
		js(`document.getElementById("status").dataset.state = "stale"`),
		chromedp.Click(css(`#search-form button[type="submit"]`)),
		chromedp.WaitVisible(css(`#status[data-state="ready"], #status[data-state="error"]`)),
	)
	state := attr(t, ctx, "#status", "data-state")
	if state == "ready" && kind != "workflow" { // a workflow search lists runs, draws nothing
		run(t, ctx, "layout", chromedp.WaitVisible(css(`#cy[data-layout="done"]`)))
	}
	return state
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return get(t, ctx, "text of "+sel, chromedp.Text(css(sel)))
}

func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	return get(t, ctx, "attribute of "+sel, chromedp.AttributeValue(css(sel), name)).Value
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	return get(t, ctx, "evaluate "+js, chromedp.Evaluate[T](js))
}

// ---- a real provlogd ----

type provlogd struct {
	url, token, logKey string
}

func provlogdBinary(t *testing.T) string { return testbin.Build(t, "cmd/provlogd") }

func TestMain(m *testing.M) { testbin.Main(m) }

// startProvlogd builds cmd/provlogd (once), starts it on loopback ports with a
// fresh data dir and the extra flags args, appends testdata/events and
// waits until the lineage index and a checkpoint cover them all.
func startProvlogd(t *testing.T, args ...string) *provlogd {
	t.Helper()
	dir := t.TempDir()
	bin := provlogdBinary(t)
	httpAddr, grpcAddr := freeAddr(t), freeAddr(t)
	data := filepath.Join(dir, "data")
	proc := testbin.Start(t, bin, nil, append([]string{"--data-dir", data, "--http-addr", httpAddr, "--grpc-addr", grpcAddr,
		"--checkpoint-interval", "200ms", "--batch-max-age", "20ms"}, args...)...)
	t.Cleanup(func() { proc.Interrupt(20 * time.Second) })
	p := &provlogd{url: "http://" + httpAddr}
	proc.WaitHealthy(t, p.url+"/healthz", 20*time.Second)
	p.token = readTrimmed(t, filepath.Join(data, "admin.token"))
	p.logKey = readTrimmed(t, filepath.Join(data, "log.pub"))
	loadEvents(t, p.url, p.token)
	return p
}

// loadEvents appends testdata/events in order and waits until traces see
// them all under a checkpoint.
func loadEvents(t *testing.T, base, token string) {
	t.Helper()
	files, err := filepath.Glob("../testdata/events/*.json")
	if err != nil || len(files) < 20 {
		t.Fatalf("want the sample events, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		code, body := do(t, http.MethodPost, base+"/v1/events", token, b)
		if code != http.StatusOK {
			t.Fatalf("append %s: %d %s", f, code, body)
		}
	}
	want := len(files)
	waitFor(t, 30*time.Second, func() bool {
		code, body := do(t, http.MethodGet, base+"/v1/lineage?tenant=acme&runId=a3f1c9e2-5b7d-4e11-9c3a-77d2be0f6a41&direction=DIRECTION_UPSTREAM&depth=20", token, nil)
		if code != http.StatusOK {
			return false
		}
		var tr struct {
			Proofs struct {
				TreeSize string `json:"treeSize"`
			} `json:"proofs"`
		}
		return json.Unmarshal(body, &tr) == nil && tr.Proofs.TreeSize == fmt.Sprint(want)
	})
}

func do(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func freeAddr(t *testing.T) string { return testbin.FreePort(t) }

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func waitFor(t *testing.T, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createToken creates a token through AdminService's REST mapping
// (POST /v1/admin/tokens) with the admin token and returns its secret,
// registering its tenants first (POST /v1/admin/tenants) when they are not.
func createToken(t *testing.T, p *provlogd, name, role string, tenants ...string) string {
	t.Helper()
	for _, tenant := range tenants {
		req, _ := json.Marshal(map[string]any{"name": tenant})
		code, body := do(t, http.MethodPost, p.url+"/v1/admin/tenants", p.token, req)
		if code != http.StatusOK && code != http.StatusConflict {
			t.Fatalf("create tenant %s: %d %s", tenant, code, body)
		}
	}
	req, _ := json.Marshal(map[string]any{"name": name, "roles": []string{role}, "tenants": tenants})
	code, body := do(t, http.MethodPost, p.url+"/v1/admin/tokens", p.token, req)
	if code != http.StatusOK {
		t.Fatalf("create token %s: %d %s", name, code, body)
	}
	var resp struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.Secret == "" {
		t.Fatalf("create token %s: %v %s", name, err, body)
	}
	return resp.Secret
}

func click(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(css(sel)) }
