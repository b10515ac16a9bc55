package ingest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/auth"
)

// Drift kinds.
const (
	// DriftUnknownField: a field the source's versioned schema does not
	// declare. The payload is still accepted (and its digest, which covers
	// the field, is in the leaf).
	DriftUnknownField = "unknown_field"
	// DriftUnknownFacet: an OpenLineage facet that is not one of the spec's
	// standard facets; kept in the event's extensions.
	DriftUnknownFacet = "unknown_facet"
	// DriftInvalid: a payload its schema refuses (a field of the wrong type,
	// a required field missing); nothing is appended.
	DriftInvalid = "invalid"
	// DriftUnknownVersion: a payload declaring a schema version this server
	// does not know; nothing is appended.
	DriftUnknownVersion = "unknown_version"
)

// maxDriftPaths bounds the paths remembered per source; more are counted
// under "(other)".
const maxDriftPaths = 500

// Drift counts unknown and drifted fields per source, as the metric
// provlog_ingest_drift_total{source,kind} and as a report served at
// GET /v1/ingest/drift. It is safe for concurrent use.
type Drift struct {
	metric *prometheus.CounterVec
	now    func() time.Time

	mu      sync.Mutex
	sources map[string]*sourceDrift
}

type sourceDrift struct {
	tenant  string
	entries map[driftKey]*DriftEntry
}

type driftKey struct{ kind, path, version string }

// DriftEntry is one drifted field of one source.
type DriftEntry struct {
	Kind          string    `json:"kind"`
	Path          string    `json:"path"`
	SchemaVersion string    `json:"schemaVersion,omitempty"`
	Count         uint64    `json:"count"`
	FirstSeen     time.Time `json:"firstSeen"`
	LastSeen      time.Time `json:"lastSeen"`
	// Example is the reason of the last occurrence (for invalid payloads).
	Example string `json:"example,omitempty"`
}

// SourceDrift is the report of one source.
type SourceDrift struct {
	Source  string       `json:"source"`
	Tenant  string       `json:"tenant,omitempty"`
	Entries []DriftEntry `json:"entries"`
}

// NewDrift registers the drift metric in reg (when not nil).
func NewDrift(reg prometheus.Registerer) *Drift {
	d := &Drift{
		metric: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provlog_ingest_drift_total",
			Help: "Unknown or drifted fields seen in ingested payloads, by source and kind (unknown_field, unknown_facet, invalid, unknown_version); GET /v1/ingest/drift lists them.",
		}, []string{"source", "kind"}),
		now:     time.Now,
		sources: map[string]*sourceDrift{},
	}
	if reg != nil {
		reg.MustRegister(d.metric)
	}
	return d
}

// Record counts one occurrence of a drifted field of source, for tenant:
// the tenant the payload was appended for (the request's tenant for
// OpenLineage, the source's for webhooks), which scopes who may read it.
func (d *Drift) Record(source, tenant, kind, path, version, example string) {
	d.metric.WithLabelValues(source, kind).Inc()
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	key := source + "\x00" + tenant
	sd := d.sources[key]
	if sd == nil {
		sd = &sourceDrift{tenant: tenant, entries: map[driftKey]*DriftEntry{}}
		d.sources[key] = sd
	}
	k := driftKey{kind, path, version}
	e := sd.entries[k]
	if e == nil {
		if len(sd.entries) >= maxDriftPaths {
			k.path = "(other)"
			e = sd.entries[k]
		}
		if e == nil {
			e = &DriftEntry{Kind: kind, Path: k.path, SchemaVersion: version, FirstSeen: now}
			sd.entries[k] = e
		}
	}
	e.Count++
	e.LastSeen = now
	if example != "" {
		e.Example = example
	}
}

// Report returns the drift of the sources whose tenant id may act for,
// sorted by source then path; source filters when not "".
func (d *Drift) Report(id *auth.Identity, source string) []SourceDrift {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []SourceDrift
	for key, sd := range d.sources {
		name, _, _ := strings.Cut(key, "\x00")
		if source != "" && name != source {
			continue
		}
		if !id.CanActFor(sd.tenant) {
			continue
		}
		r := SourceDrift{Source: name, Tenant: sd.tenant}
		for _, e := range sd.entries {
			r.Entries = append(r.Entries, *e)
		}
		slices.SortFunc(r.Entries, func(a, b DriftEntry) int {
			return strings.Compare(a.Kind+"\x00"+a.Path+"\x00"+a.SchemaVersion, b.Kind+"\x00"+b.Path+"\x00"+b.SchemaVersion)
		})
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b SourceDrift) int {
		return strings.Compare(a.Source+"\x00"+a.Tenant, b.Source+"\x00"+b.Tenant)
	})
	return out
}

// ServeHTTP serves the report: GET /v1/ingest/drift[?source=NAME]. The
// caller is authenticated by the wrapping auth.RequireHTTP.
func (d *Drift) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := d.Report(auth.FromContext(r.Context()), r.URL.Query().Get("source"))
	if rep == nil {
		rep = []SourceDrift{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"sources": rep})
}
