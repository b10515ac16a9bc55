package witness

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
)

const (
	contentTypeSize = "text/x.tlog.size"
	contentTypeText = "text/plain; charset=utf-8"
)

// Handler returns the witness's HTTP interface: POST /add-checkpoint and
// GET /<origin hash>/checkpoint (see the package documentation). Mount it
// under a prefix with http.StripPrefix.
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.serveAddCheckpoint)
	mux.HandleFunc("GET /{originhash}/checkpoint", w.serveCheckpoint)
	return mux
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestSize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxRequestSize)
	case err != nil:
		err = fmt.Errorf("%w: couldn't read body: %w", ErrMalformed, err)
	}
	var cosig []byte
	var req addRequest
	if err == nil {
		req, err = parseAddCheckpoint(body)
	}
	if err == nil {
		cosig, err = w.AddCheckpoint(r.Context(), req.OldSize, req.Proof, req.Checkpoint)
	}

	code := statusOf(err)
	w.metrics.requests.WithLabelValues("add-checkpoint", strconv.Itoa(code)).Inc()
	origin, _ := noteOrigin(req.Checkpoint)
	if len(origin) > 100 {
		origin = origin[:100] + "..."
	}
	var conflict *ConflictError
	switch {
	case code == http.StatusOK:
		rw.Header().Set("Content-Type", contentTypeText)
		rw.Write(cosig)
		return
	case errors.As(err, &conflict):
		w.logger.Info("add-checkpoint: old size conflict", "origin", origin, "old_size", req.OldSize, "witnessed_size", conflict.Size)
		rw.Header().Set("Content-Type", contentTypeSize)
		rw.WriteHeader(code)
		fmt.Fprintf(rw, "%d\n", conflict.Size)
		return
	case code == http.StatusInternalServerError:
		w.logger.Error("add-checkpoint failed", "origin", origin, "err", err)
		http.Error(rw, "internal error", code)
		return
	}
	level := slog.LevelWarn
	if code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge || code == http.StatusNotFound {
		level = slog.LevelInfo
	}
	w.logger.Log(r.Context(), level, "add-checkpoint refused", "origin", origin, "status", code, "err", err)
	http.Error(rw, err.Error(), code)
}

func (w *Witness) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	note, code := []byte(nil), http.StatusNotFound
	if ls, ok := w.byHash[r.PathValue("originhash")]; ok {
		var err error
		note, err = w.Latest(r.Context(), ls.origin)
		switch {
		case err == nil:
			code = http.StatusOK
		case !errors.Is(err, ErrNotFound):
			code = http.StatusInternalServerError
			w.logger.Error("couldn't serve checkpoint", "origin", ls.origin, "err", err)
		}
	}
	w.metrics.requests.WithLabelValues("checkpoint", strconv.Itoa(code)).Inc()
	switch code {
	case http.StatusOK:
		rw.Header().Set("Content-Type", contentTypeText)
		rw.Write(note)
	case http.StatusNotFound:
		http.Error(rw, "no cosigned checkpoint for this log", code)
	default:
		http.Error(rw, "internal error", code)
	}
}
