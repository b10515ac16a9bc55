package ui_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/chromedp/chromedp"
)

const (
	finalRecord = "postgres://warehouse/analytics.customers"
	source      = "crm://acme-crm/contacts"
)

// TestBrowserTrace: sign in to a real provlogd loaded with the sample
// workflows, search the final warehouse table, expand upstream to its
// sources, open the approval: the proof badge says verified. Through a
// proxy that edits one proof hash, the badge says failed; through one that
// edits a node but no proof, that node's badge says failed.
func TestBrowserTrace(t *testing.T) {
	ctx := newBrowser(t)
	pl := startProvlogd(t)
	shots := artifactDir(t)

	signIn(t, ctx, pl.url+"/ui/", pl.token, "acme")
	// The key was prefilled from /ui/config.json; the token is in session
	// storage and nowhere in the URL.
	if got := eval[string](t, ctx, `sessionStorage.getItem("provlog.logKey")`); got != pl.logKey {
		t.Errorf("key used = %q, want log.pub %q", got, pl.logKey)
	}
	if got := eval[string](t, ctx, `sessionStorage.getItem("provlog.token")`); got != pl.token {
		t.Errorf("token in session storage = %q", got)
	}
	if u := eval[string](t, ctx, `location.href`); strings.Contains(u, pl.token) {
		t.Errorf("token in the URL %s", u)
	}
	if got := text(t, ctx, "#keyinfo"); !strings.Contains(got, strings.SplitN(pl.logKey, "+", 3)[0]) || !strings.Contains(got, "announced by this server") {
		t.Errorf("key info = %q", got)
	}

	if st := search(t, ctx, "asset", finalRecord, "1"); st != "ready" {
		t.Fatalf("search: %s", text(t, ctx, "#status"))
	}
	screenshot(t, ctx, shots, "1-search")
	if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "verified" {
		t.Errorf("answer badge after search = %q (%s); status %s", got, text(t, ctx, "#answer-badge"), text(t, ctx, "#status"))
	}
	if got := attr(t, ctx, "#detail", "data-kind"); got != "asset" {
		t.Errorf("start node not shown in details: kind %q", got)
	}
	before := eval[int](t, ctx, `document.querySelectorAll("#results button.result").length`)
	if eval[bool](t, ctx, `!!document.querySelector('#results button.result[aria-label*="`+source+`"]')`) {
		t.Fatalf("depth 1 already reaches the sources: the expansion below would prove nothing")
	}

	// Expand upstream from the start node to the end.
	run(t, ctx, "expand upstream",
		chromedp.SetValue(css("#expand-depth"), "20"),
		js(`document.getElementById("status").dataset.state = "stale"`),
		chromedp.Click(css("#expand-up")),
		chromedp.WaitVisible(css(`#status[data-state="ready"]`)),
		chromedp.WaitVisible(css(`#cy[data-layout="done"]`)),
	)
	screenshot(t, ctx, shots, "2-upstream")
	after := eval[int](t, ctx, `document.querySelectorAll("#results button.result").length`)
	if after <= before {
		t.Errorf("expanding upstream: %d results, before %d", after, before)
	}
	for _, want := range []string{source, "crm://acme-crm/consents", "https://api.enrich.example/v2/companies"} {
		if !eval[bool](t, ctx, `!!document.querySelector('#results button.result[aria-label*="`+want+`"]')`) {
			t.Errorf("source %s not reached upstream", want)
		}
	}
	if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "verified" {
		t.Errorf("answer badge after expansion = %q", got)
	}

	// Open the approval.
	run(t, ctx, "open approval",
		chromedp.Click(css(`#results button.result[data-operation="OPERATION_APPROVAL"]`)),
		chromedp.WaitVisible(css(`#detail[data-kind="human approval"]`)),
		chromedp.WaitVisible(css(`#detail .entry dl`)),
	)
	screenshot(t, ctx, shots, "3-approval")
	if got := attr(t, ctx, "#detail .badge", "data-proof"); got != "verified" {
		t.Errorf("approval badge = %q: %s", got, text(t, ctx, "#detail"))
	}
	detail := text(t, ctx, "#detail")
	for _, want := range []string{"priya", "approval", "match the verified leaf", "leaf index"} {
		if !strings.Contains(strings.ToLower(detail), strings.ToLower(want)) {
			t.Errorf("approval details lack %q:\n%s", want, detail)
		}
	}
	// Readable contrast: every visible text of the page against its
	// background, at least 4.5:1 (WCAG AA for normal text).
	if bad := eval[[]string](t, ctx, contrastJS); len(bad) > 0 {
		t.Errorf("text below 4.5:1 contrast:\n%s", strings.Join(bad, "\n"))
	}
	// The probe itself catches grey on white.
	run(t, ctx, "low-contrast probe", js(`const p = document.createElement("p"); p.id = "probe"; p.style.color = "#aaa"; p.textContent = "faint"; document.getElementById("detail").append(p)`))
	if bad := eval[[]string](t, ctx, contrastJS); len(bad) != 1 || !strings.Contains(bad[0], "probe") {
		t.Errorf("contrast probe missed a #aaa-on-white text: %q", bad)
	}
	run(t, ctx, "remove probe", js(`document.getElementById("probe").remove()`))
	// Everything fits 1280x800: no horizontal scrolling of the page.
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 1280 {
		t.Errorf("page is %d px wide at 1280x800", w)
	}

	t.Run("tampered proof", func(t *testing.T) {
		var tamperedLeaf atomic.Value
		target, err := url.Parse(pl.url)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ModifyResponse = func(resp *http.Response) error {
			if resp.Request.URL.Path != "/v1/lineage" || resp.StatusCode != http.StatusOK {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b, leaf, err := tamperOneProofHash(b)
			if err != nil {
				return err
			}
			tamperedLeaf.Store(leaf)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		}
		srv := httptest.NewServer(proxy)
		defer srv.Close()

		signIn(t, ctx, srv.URL+"/ui/", pl.token, "acme")
		if st := search(t, ctx, "asset", finalRecord, "1"); st != "ready" {
			t.Fatalf("search: %s", text(t, ctx, "#status"))
		}
		if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "failed" {
			t.Errorf("answer badge with a tampered proof = %q (%s)", got, text(t, ctx, "#answer-badge"))
		}
		leaf, _ := tamperedLeaf.Load().(string)
		run(t, ctx, "open the node of the tampered leaf",
			chromedp.Click(css(`#results button.result[data-leaf="`+leaf+`"]`)),
			chromedp.WaitVisible(css(`#detail .badge`)),
		)
		screenshot(t, ctx, shots, "4-tampered")
		if got := attr(t, ctx, "#detail .badge", "data-proof"); got != "failed" {
			t.Errorf("badge of leaf %s with a tampered proof = %q: %s", leaf, got, text(t, ctx, "#detail"))
		}
		if !strings.Contains(text(t, ctx, "#status"), "FAILED") {
			t.Errorf("status does not report the failure: %s", text(t, ctx, "#status"))
		}
	})

	t.Run("forged node, genuine proofs", func(t *testing.T) {
		var forged atomic.Value
		target, err := url.Parse(pl.url)
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.ModifyResponse = func(resp *http.Response) error {
			if resp.Request.URL.Path != "/v1/lineage" || resp.StatusCode != http.StatusOK {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			b, id, err := forgeStep(b)
			if err != nil {
				return err
			}
			forged.Store(id)
			resp.Body = io.NopCloser(bytes.NewReader(b))
			resp.ContentLength = int64(len(b))
			resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
			return nil
		}
		srv := httptest.NewServer(proxy)
		defer srv.Close()

		signIn(t, ctx, srv.URL+"/ui/", pl.token, "acme")
		if st := search(t, ctx, "asset", finalRecord, "1"); st != "ready" {
			t.Fatalf("search: %s", text(t, ctx, "#status"))
		}
		// Every proof verifies: the status says so. The forged node fails.
		if !strings.Contains(text(t, ctx, "#status"), "verified") || strings.Contains(text(t, ctx, "#status"), "FAILED") {
			t.Errorf("status: %s", text(t, ctx, "#status"))
		}
		id, _ := forged.Load().(string)
		run(t, ctx, "open the forged node",
			click(`#results button.result[data-node="`+id+`"]`),
			chromedp.WaitVisible(css(`#detail .badge`)),
		)
		screenshot(t, ctx, shots, "5-forged-node")
		if got := attr(t, ctx, "#detail .badge", "data-proof"); got != "failed" {
			t.Errorf("badge of forged node %s = %q", id, got)
		}
		if d := text(t, ctx, "#detail"); !strings.Contains(d, "does not say this") {
			t.Errorf("forged node details do not say why:\n%s", d)
		}
		if got := attr(t, ctx, "#answer-badge", "data-proof"); got != "failed" {
			t.Errorf("answer badge with a forged node = %q", got)
		}
	})
}

// forgeStep rewrites the step id of the first step node of a TraceResponse,
// leaving every proof intact, and returns that node's id.
func forgeStep(body []byte) ([]byte, string, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", err
	}
	nodes, _ := m["nodes"].([]any)
	for _, n := range nodes {
		nm, _ := n.(map[string]any)
		if nm["kind"] == "NODE_KIND_ACTIVITY" {
			nm["stepId"] = "forged-step"
			b, err := json.Marshal(m)
			return b, nm["id"].(string), err
		}
	}
	return body, "", nil
}

// tamperOneProofHash flips one bit of the first proof hash of the first
// leaf of a TraceResponse, returning the new body and that leaf's index.
func tamperOneProofHash(body []byte) ([]byte, string, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, "", err
	}
	proofs, _ := m["proofs"].(map[string]any)
	nodes, _ := proofs["nodes"].([]any)
	leaves, _ := proofs["leaves"].([]any)
	if len(nodes) == 0 || len(leaves) == 0 {
		return body, "", nil
	}
	l0, _ := leaves[0].(map[string]any)
	path, _ := l0["proof"].([]any)
	if len(path) == 0 {
		return body, "", nil
	}
	ref := int(path[0].(float64))
	h, err := base64.StdEncoding.DecodeString(nodes[ref].(string))
	if err != nil {
		return nil, "", err
	}
	h[0] ^= 1
	nodes[ref] = base64.StdEncoding.EncodeToString(h)
	idx, _ := l0["index"].(string)
	if idx == "" {
		idx = "0"
	}
	b, err := json.Marshal(m)
	return b, idx, err
}

// contrastJS lists the visible elements whose own text has less than 4.5:1
// contrast with the first opaque background behind it (WCAG 2 formula).
const contrastJS = `(() => {
  const rgba = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const [r, g, b] = rgba(c).slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const a = rgba(getComputedStyle(e).backgroundColor);
      if (a.length === 3 || (a.length === 4 && a[3] > 0.5)) return getComputedStyle(e).backgroundColor;
    }
    return "rgb(255, 255, 255)";
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.getClientRects().length === 0) continue;
    if (![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden") continue;
    const l1 = lum(st.color), l2 = lum(bg(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName + "#" + el.id + "." + el.className + " " + ratio.toFixed(2) + ": " + el.textContent.trim().slice(0, 40));
  }
  return bad;
})()`
