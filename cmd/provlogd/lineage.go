package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
)

type lineageIndex struct {
	index *lineage.Index
	close func() error
}

// openLineage opens the lineage index in DATA/lineage, rebuilding it from
// the log first when --reindex is set, and exports its gaps and watermark.
func openLineage(ctx context.Context, cfg config, l *ledger.Ledger, reg *prometheus.Registry, log *slog.Logger) (*lineageIndex, error) {
	store, err := lineage.OpenPebbleStore(filepath.Join(cfg.DataDir, "lineage"), log)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the lineage store: %w", err)
	}
	gaps := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "provlog_lineage_gaps_total",
		Help: "Completeness gaps found by the lineage index, by kind (missing events).",
	}, []string{"kind"})
	reg.MustRegister(gaps)
	// Zero series from the start, so increase() sees the first gap.
	for _, k := range lineage.GapKinds {
		gaps.WithLabelValues(string(k))
	}
	gapLog := &gapLogger{log: log, every: 10 * time.Second}
	if cfg.LineageMaxBusy <= 0 || cfg.LineageMaxBusy > 1 {
		store.Close()
		return nil, fmt.Errorf("--lineage-max-busy %v: want a value in (0,1]", cfg.LineageMaxBusy)
	}
	opts := lineage.Options{
		Logger:  log,
		MaxBusy: cfg.LineageMaxBusy,
		OnGap: func(g lineage.Gap) {
			gaps.WithLabelValues(string(g.Kind)).Inc()
			gapLog.gap(g)
		},
	}
	ix, err := lineage.Open(ctx, store, l.Reader(), opts)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("couldn't open the lineage index: %w", err)
	}
	if cfg.Reindex {
		log.Info("rebuilding the lineage index from the log")
		if err := ix.Rebuild(ctx); err != nil {
			store.Close()
			return nil, fmt.Errorf("couldn't rebuild the lineage index: %w", err)
		}
		size, d, err := ix.Digest(ctx)
		if err != nil {
			store.Close()
			return nil, err
		}
		log.Info("lineage index rebuilt", "tree_size", size, "digest", fmt.Sprintf("%x", d))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "provlog_lineage_watermark",
		Help: "Tree size the lineage index has indexed.",
	}, func() float64 { return float64(ix.Watermark()) }))
	return &lineageIndex{index: ix, close: store.Close}, nil
}

// gapLogger logs gaps at WARN, at most one line per kind every interval
// (with how many were opened since), so a flood of incomplete runs cannot
// flood the log. The metric counts every one.
type gapLogger struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	last  map[lineage.GapKind]time.Time
	since map[lineage.GapKind]int
}

func (l *gapLogger) gap(g lineage.Gap) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.since = map[lineage.GapKind]time.Time{}, map[lineage.GapKind]int{}
	}
	l.since[g.Kind]++
	if now := time.Now(); now.Sub(l.last[g.Kind]) >= l.every {
		l.log.Warn("lineage gap: events are missing", "kind", string(g.Kind), "tenant", g.Tenant, "run", g.RunID,
			"leaves", g.Leaves, "opened_since_last_line", l.since[g.Kind])
		l.last[g.Kind], l.since[g.Kind] = now, 0
	}
}
