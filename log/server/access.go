package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/auth"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
)

// AccessAudit tunes the access auditor, which counts data reads per
// identity and flags unusual patterns: a window with far more reads than
// the identity's baseline, or many NotFound answers (probing for other
// tenants' data). Zero fields take the defaults.
type AccessAudit struct {
	// Window is the counting period (default 1 minute).
	Window time.Duration
	// SpikeFactor: a window with more than SpikeFactor x the baseline
	// reads, and at least MinSpike, is a spike (defaults 10 and 200).
	SpikeFactor float64
	MinSpike    int
	// Probes is the NotFound answers in one window that are a probe
	// (default 50).
	Probes int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// auditedReads are the methods that read tenant data (lineage and
// entries; evidence bundles will join them).
var auditedReads = map[string]bool{
	pb.LineageService_Trace_FullMethodName:         true,
	pb.LineageService_History_FullMethodName:       true,
	pb.LineageService_ListRunEvents_FullMethodName: true,
	pb.LogService_GetEntry_FullMethodName:          true,
	pb.LogService_GetInclusionProof_FullMethodName: true,

	pb.LineageService_ListWorkflowRuns_FullMethodName: true, // issue 9
}

type accessAudit struct {
	cfg   AccessAudit
	log   *slog.Logger
	reads *prometheus.CounterVec
	nf    *prometheus.CounterVec
	alert *prometheus.CounterVec

	mu  sync.Mutex
	ids map[string]*accessWindow
}

// accessWindow is one identity's counts in the current window, and its
// baseline: an exponentially weighted mean of reads per past window.
type accessWindow struct {
	start    time.Time
	reads    int
	notFound int
	baseline float64
	windows  int // past windows folded into baseline
	spiked   bool
	probed   bool
}

func newAccessAudit(cfg AccessAudit, reg prometheus.Registerer, log *slog.Logger) *accessAudit {
	if cfg.Window <= 0 {
		cfg.Window = time.Minute
	}
	if cfg.SpikeFactor <= 0 {
		cfg.SpikeFactor = 10
	}
	if cfg.MinSpike <= 0 {
		cfg.MinSpike = 200
	}
	if cfg.Probes <= 0 {
		cfg.Probes = 50
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &accessAudit{cfg: cfg, log: log, ids: map[string]*accessWindow{},
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provlog_access_reads_total",
			Help: "Data reads (lineage, entries, leaf proofs) per authenticated identity and method."}, []string{"identity", "method"}),
		nf: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provlog_access_not_found_total",
			Help: "Data reads answered NotFound, per identity."}, []string{"identity"}),
		alert: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "provlog_access_alerts_total",
			Help: "Unusual access patterns per identity: read_spike (reads far above the identity's baseline), not_found_probes (many NotFound answers)."}, []string{"identity", "kind"}),
	}
	reg.MustRegister(a.reads, a.nf, a.alert)
	return a
}

// observe counts one finished call.
func (a *accessAudit) observe(ctx context.Context, id *auth.Identity, method string, code codes.Code) {
	if id == nil || !auditedReads[method] {
		return
	}
	a.reads.WithLabelValues(id.Name, method).Inc()
	if code == codes.NotFound {
		a.nf.WithLabelValues(id.Name).Inc()
	}
	now := a.cfg.Now()
	a.mu.Lock()
	w, ok := a.ids[id.Name]
	if !ok {
		w = &accessWindow{start: now}
		a.ids[id.Name] = w
	}
	// Close the windows that ended: fold their reads into the baseline
	// (empty windows count, as zero).
	for now.Sub(w.start) >= a.cfg.Window {
		w.fold()
		w.start = w.start.Add(a.cfg.Window)
		if now.Sub(w.start) >= 100*a.cfg.Window { // long idle: jump ahead
			w.start = now
		}
	}
	w.reads++
	if code == codes.NotFound {
		w.notFound++
	}
	var spike, probe bool
	limit := max(float64(a.cfg.MinSpike), a.cfg.SpikeFactor*w.baseline)
	if !w.spiked && float64(w.reads) > limit {
		w.spiked, spike = true, true
	}
	if !w.probed && w.notFound >= a.cfg.Probes {
		w.probed, probe = true, true
	}
	reads, nf, base := w.reads, w.notFound, w.baseline
	a.mu.Unlock()
	if spike {
		a.alert.WithLabelValues(id.Name, "read_spike").Inc()
		a.log.WarnContext(ctx, "access alert: reads far above baseline", "kind", "read_spike", "identity", id.Name,
			"reads_in_window", reads, "baseline", base, "window", a.cfg.Window)
	}
	if probe {
		a.alert.WithLabelValues(id.Name, "not_found_probes").Inc()
		a.log.WarnContext(ctx, "access alert: many NotFound answers (probing?)", "kind", "not_found_probes", "identity", id.Name,
			"not_found_in_window", nf, "reads_in_window", reads, "window", a.cfg.Window)
	}
}

func (w *accessWindow) fold() {
	const alpha = 0.3
	if w.windows == 0 {
		w.baseline = float64(w.reads)
	} else {
		w.baseline = alpha*float64(w.reads) + (1-alpha)*w.baseline
	}
	w.windows++
	w.reads, w.notFound, w.spiked, w.probed = 0, 0, false, false
}
