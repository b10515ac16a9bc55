// Package ui serves the lineage explorer, a web page where a person finds a
// record and sees where it came from and where it went, with proof status
// computed in the browser. The page is built from ui/src with esbuild (see
// ui/README.md) into ui/dist, which is committed and embedded here.
//
// The assets are public: they hold no data. Everything the page shows comes
// from the token-protected REST API under /v1/; the token lives in the
// browser's session storage and travels only in the Authorization header.
package ui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed dist
var dist embed.FS

// Config is what the page is told about the log it explores.
type Config struct {
	// Origin is the log's checkpoint origin.
	Origin string `json:"origin,omitempty"`
	// LogKey is the log's note verifier key (the line of log.pub), offered
	// as the default key the page checks checkpoints with. The page lets
	// the user pin a key obtained out of band instead, since a key served
	// by the same server proves less.
	LogKey string `json:"logKey,omitempty"`
}

// Handler serves the page under /ui/: the built assets and /ui/config.json.
func Handler(cfg Config) http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees dist exists
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // two strings always marshal
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// Everything from our origin only, nothing inline, never framed;
		// workers for the layout.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		p := strings.TrimPrefix(r.URL.Path, "/ui")
		switch {
		case p == "":
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
			return
		case p == "/config.json":
			h.Set("Content-Type", "application/json")
			w.Write(conf)
			return
		}
		if _, err := fs.Stat(sub, strings.TrimPrefix(path.Clean(p), "/")); p != "/" && err != nil {
			http.NotFound(w, r)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		files.ServeHTTP(w, r2)
	})
}
