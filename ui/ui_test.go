package ui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provlog/provlog/ui"
)

func TestHandler(t *testing.T) {
	cfg := ui.Config{Origin: "example.com/log", LogKey: "example.com/log+01234567+AAAA"}
	mux := http.NewServeMux()
	mux.Handle("/ui/", ui.Handler(cfg))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, tc := range []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/ui/", 200, "text/html", `<div id="cy"`},
		{"HEAD", "/ui/", 200, "text/html", ""},
		{"GET", "/ui/app.js", 200, "text/javascript", ""},
		{"GET", "/ui/app.css", 200, "text/css", ""},
		{"GET", "/ui/layout-worker.js", 200, "text/javascript", ""},
		{"GET", "/ui/verify-worker.js", 200, "text/javascript", ""},
		{"GET", "/ui/config.json", 200, "application/json", `"logKey":"example.com/log+01234567+AAAA"`},
		{"GET", "/ui/nope.js", 404, "", ""},
		{"GET", "/ui/dist/app.js", 404, "", ""},
		{"GET", "/ui/src/main.ts", 404, "", ""},
		{"POST", "/ui/", 405, "", ""},
		{"GET", "/ui", http.StatusTemporaryRedirect, "", ""}, // ServeMux adds the slash
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
			continue
		}
		if tc.code != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %s", tc.method, tc.path, ct, tc.ctype)
		}
		if !strings.Contains(string(b), tc.body) {
			t.Errorf("%s %s: body lacks %q", tc.method, tc.path, tc.body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s %s: CSP %q lacks %q", tc.method, tc.path, csp, want)
			}
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s %s: security headers missing: %v", tc.method, tc.path, resp.Header)
		}
	}

	// config.json is exactly the config.
	resp, err := http.Get(srv.URL + "/ui/config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got ui.Config
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got != cfg {
		t.Errorf("config.json = %+v, %v; want %+v", got, err, cfg)
	}
}
