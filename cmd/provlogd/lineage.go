package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

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
	opts := lineage.Options{
		Logger: log,
		OnGap: func(g lineage.Gap) {
			gaps.WithLabelValues(string(g.Kind)).Inc()
			log.Warn("lineage gap", "kind", string(g.Kind), "tenant", g.Tenant, "run", g.RunID, "leaves", g.Leaves)
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
