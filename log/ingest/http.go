package ingest

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/auth"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxBody bounds one ingestion request body, after decompression.
const MaxBody = 16 << 20

// TokenRegistry registers a bearer token for an identity; *auth.Tokens is
// one. Webhook sources get a random token each, known only in process, so
// their appends go through the same authorization as anyone's.
type TokenRegistry interface {
	Add(token string, id *auth.Identity)
}

// Config configures the ingestion endpoints.
type Config struct {
	// Conn is the log server's in-process gRPC connection.
	Conn grpc.ClientConnInterface
	// Auth authenticates OpenLineage and drift-report callers before any
	// parsing (the append is authorized again, by the gRPC server).
	Auth auth.Authenticator
	// Hooks is the webhook configuration (LoadHooksConfig); nil serves no
	// webhooks.
	Hooks *HooksConfig
	// Tokens receives the webhook sources' internal tokens; required when
	// Hooks has sources.
	Tokens TokenRegistry
	// Registry receives the ingestion metrics; none when nil.
	Registry prometheus.Registerer
	Logger   *slog.Logger
	// Now is the clock for webhook timestamps; time.Now when nil.
	Now func() time.Time
}

// Route is one HTTP handler and the ServeMux pattern it serves.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Routes builds the ingestion handlers:
//
//	POST /api/v1/lineage       OpenLineage HTTP transport (bearer token)
//	POST /v1/hooks/{source}    webhooks (HMAC per source)
//	GET  /v1/ingest/drift      unknown and drifted fields, per source
func Routes(cfg Config) ([]Route, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	drift := NewDrift(cfg.Registry)
	ol, err := newOpenLineage(drift)
	if err != nil {
		return nil, err
	}
	app := newAppender(cfg.Conn)
	olh := &olHandler{ol: ol, app: app, log: cfg.Logger}
	routes := []Route{
		{"POST /api/v1/lineage", auth.RequireHTTP(cfg.Auth, auth.PermAppend, olh)},
		{"GET /v1/ingest/drift", auth.RequireHTTP(cfg.Auth, auth.PermRead, drift)},
	}
	if cfg.Hooks != nil && len(cfg.Hooks.Sources) > 0 {
		hh, err := newHooksHandler(cfg, app, drift)
		if err != nil {
			return nil, err
		}
		routes = append(routes, Route{"POST /v1/hooks/{source}", hh})
	}
	return routes, nil
}

// readBody reads a request body, gunzipping it when Content-Encoding says
// gzip (the OpenLineage HTTP transport's compression option).
func readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, &httpError{http.StatusBadRequest, "body: bad gzip: " + err.Error()}
		}
		defer gz.Close()
		rd = gz
	default:
		return nil, &httpError{http.StatusUnsupportedMediaType, "Content-Encoding " + r.Header.Get("Content-Encoding") + " is not supported (gzip or none)"}
	}
	b, err := io.ReadAll(io.LimitReader(rd, MaxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{http.StatusRequestEntityTooLarge, "body: too large"}
		}
		return nil, &httpError{http.StatusBadRequest, "body: " + err.Error()}
	}
	if len(b) > MaxBody {
		return nil, &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body: more than %d bytes", MaxBody)}
	}
	return b, nil
}

type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

// Result is the outcome for one ingested event.
type Result struct {
	EventID   string       `json:"eventId,omitempty"`
	Index     *uint64      `json:"index,omitempty"`
	Duplicate bool         `json:"duplicate,omitempty"`
	Skipped   string       `json:"skipped,omitempty"`
	Error     *ResultError `json:"error,omitempty"`
}

// ResultError says why an event was not appended.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Response is the body of every ingestion answer.
type Response struct {
	Results []Result `json:"results,omitempty"`
	// Error is set when the request as a whole was refused: nothing was
	// appended.
	Error *ResultError `json:"error,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeRefusal answers a request refused as a whole.
func writeRefusal(w http.ResponseWriter, err error) {
	var se *SchemaError
	var he *httpError
	switch {
	case errors.As(err, &se):
		writeJSON(w, http.StatusBadRequest, Response{Error: &ResultError{Code: codes.InvalidArgument.String(), Message: se.Error(), Field: se.Field}})
	case errors.As(err, &he):
		writeJSON(w, he.code, Response{Error: &ResultError{Code: codes.InvalidArgument.String(), Message: he.msg}})
	default:
		st, _ := status.FromError(err)
		writeJSON(w, runtime.HTTPStatusFromCode(st.Code()), Response{Error: &ResultError{Code: st.Code().String(), Message: st.Message()}})
	}
}

// appendMapped appends the mapped events of one request and answers with
// one result per event: 200 when none failed, otherwise the HTTP status of
// the first failure (appended events stay appended; a retry of the whole
// request is answered as duplicates for them).
func appendMapped(ctx context.Context, w http.ResponseWriter, log *slog.Logger, app *appender, token string, results []Result, evs []*pb.ProvenanceEvent, pos []int) {
	if len(evs) > 0 {
		rs, err := app.appendAll(ctx, token, evs)
		if err != nil && len(rs) == 0 {
			if status.Code(err) == codes.Unknown {
				log.ErrorContext(ctx, "ingestion append failed", "err", err)
				err = status.Error(codes.Internal, "internal error")
			}
			writeRefusal(w, err)
			return
		}
		for j, r := range rs {
			res := &results[pos[j]]
			if e := r.GetError(); e != nil {
				// The batch is ours: name the field of the mapped event.
				field, msg := stripBatchPrefix(e.GetField()), e.GetMessage()
				if f := e.GetField(); f != "" && strings.HasPrefix(msg, f) {
					msg = field + msg[len(f):]
				}
				res.Error = &ResultError{Code: codes.Code(e.GetCode()).String(), Message: msg, Field: field}
				continue
			}
			idx := r.GetIndex()
			res.Index, res.Duplicate = &idx, r.GetDuplicate()
		}
		for j := len(rs); j < len(evs); j++ {
			st, _ := status.FromError(err)
			results[pos[j]].Error = &ResultError{Code: st.Code().String(), Message: st.Message()}
		}
	}
	code := http.StatusOK
	for _, r := range results {
		if r.Error != nil {
			c, _ := codeFromString(r.Error.Code)
			code = runtime.HTTPStatusFromCode(c)
			break
		}
	}
	writeJSON(w, code, Response{Results: results})
}

// stripBatchPrefix turns "events[3].inputs[0].uri" into "inputs[0].uri".
func stripBatchPrefix(f string) string {
	if !strings.HasPrefix(f, "events[") {
		return f
	}
	i := strings.IndexByte(f, ']')
	if i < 0 {
		return f
	}
	return strings.TrimPrefix(f[i+1:], ".")
}

func codeFromString(s string) (codes.Code, bool) {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == s {
			return c, true
		}
	}
	return codes.Unknown, false
}

// olHandler serves POST /api/v1/lineage: one OpenLineage event (a JSON
// object) or a batch (a JSON array of them).
type olHandler struct {
	ol  *openLineage
	app *appender
	log *slog.Logger
}

func (h *olHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, _ := auth.BearerToken(r.Header.Get("Authorization"))
	tenant, err := requestTenant(r)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	v, err := decodeJSON(body)
	if err != nil {
		writeRefusal(w, &SchemaError{Reason: err.Error()})
		return
	}
	items, batch := v.([]any)
	if !batch {
		items = []any{v}
	}
	if len(items) == 0 {
		writeRefusal(w, &SchemaError{Reason: "an empty batch"})
		return
	}
	results := make([]Result, len(items))
	var evs []*pb.ProvenanceEvent
	var pos []int
	for i, it := range items {
		p := ""
		if batch {
			p = pathIndex("", i)
		}
		m, err := h.ol.mapEvent(it, tenant, p)
		if err != nil {
			// One invalid event refuses the request: nothing is appended.
			writeRefusal(w, err)
			return
		}
		if m.event == nil {
			results[i].Skipped = m.skipped
			continue
		}
		results[i].EventID = m.event.GetEventId()
		evs, pos = append(evs, m.event), append(pos, i)
	}
	appendMapped(r.Context(), w, h.log, h.app, token, results, evs, pos)
}

// requestTenant is the tenant OpenLineage events are appended for: the
// "tenant" query parameter, else the X-Provlog-Tenant header, else the
// caller's only tenant.
func requestTenant(r *http.Request) (string, error) {
	if t := r.URL.Query().Get("tenant"); t != "" {
		return t, nil
	}
	if t := r.Header.Get("X-Provlog-Tenant"); t != "" {
		return t, nil
	}
	id := auth.FromContext(r.Context())
	if id != nil && len(id.Tenants) == 1 && id.Tenants[0] != auth.AllTenants {
		return id.Tenants[0], nil
	}
	return "", &httpError{http.StatusBadRequest, "tenant: required (the tenant query parameter or the X-Provlog-Tenant header) for a caller that may act for several tenants"}
}
