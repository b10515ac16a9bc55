package server

import (
	"errors"
	"net/http"
	"os"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
)

// tilesHandler serves the C2SP tlog-tiles read API from a LogReader:
// /checkpoint, /tile/L/N[.p/W] and /tile/entries/N[.p/W], relative to its
// mount point. It is public: tiles hold commitments, not sensitive values.
func tilesHandler(r tessera.LogReader) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", func(w http.ResponseWriter, req *http.Request) {
		cp, err := r.ReadCheckpoint(req.Context())
		if err != nil {
			tileErr(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(cp)
	})
	mux.HandleFunc("GET /tile/entries/{index...}", func(w http.ResponseWriter, req *http.Request) {
		idx, p, err := layout.ParseTileIndexPartial(req.PathValue("index"))
		if err != nil {
			http.Error(w, "bad entry bundle path: "+err.Error(), http.StatusBadRequest)
			return
		}
		b, err := r.ReadEntryBundle(req.Context(), idx, p)
		if err != nil {
			tileErr(w, err)
			return
		}
		serveImmutable(w, b)
	})
	mux.HandleFunc("GET /tile/{level}/{index...}", func(w http.ResponseWriter, req *http.Request) {
		l, idx, p, err := layout.ParseTileLevelIndexPartial(req.PathValue("level"), req.PathValue("index"))
		if err != nil {
			http.Error(w, "bad tile path: "+err.Error(), http.StatusBadRequest)
			return
		}
		b, err := r.ReadTile(req.Context(), l, idx, p)
		if err != nil {
			tileErr(w, err)
			return
		}
		serveImmutable(w, b)
	})
	return mux
}

func serveImmutable(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

func tileErr(w http.ResponseWriter, err error) {
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	http.Error(w, "internal error", http.StatusInternalServerError)
}
