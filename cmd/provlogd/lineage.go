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
	index   *lineage.Index
	close   func() error
	run     func(context.Context) error // follows the log until ctx ends
	catchUp func(context.Context) error // the final pass at shutdown
}

// appendQuiet is how long after the last append the lineage indexer stops
// yielding to appends (--lineage-max-busy).
const appendQuiet = time.Second

// openLineage opens the lineage index in DATA/lineage (--storage posix) or
// in the shared table of the --mysql-dsn database (--storage aws),
// rebuilding it from the log first when --reindex is set, and exports its
// gaps and watermark.
func openLineage(ctx context.Context, cfg config, l *ledger.Ledger, reg *prometheus.Registry, log *slog.Logger) (*lineageIndex, error) {
	opts, err := lineageOptions(cfg, reg, log)
	if err != nil {
		return nil, err
	}
	// The cap holds only while this frontend takes appends: with none
	// arriving, the index catches up at full speed.
	opts.Contended = func() bool { return l.AppendedWithin(appendQuiet) }
	if cfg.Storage == "aws" {
		return openSharedLineage(ctx, cfg, l, reg, opts)
	}
	store, err := lineage.OpenPebbleStore(filepath.Join(cfg.DataDir, "lineage"), log)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the lineage store: %w", err)
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
	registerWatermark(reg, ix)
	registerPebbleMemory(reg, "lineage", func() (int64, int64, bool) { return lineage.PebbleMemory(store) })
	return &lineageIndex{index: ix, close: store.Close, run: ix.Run, catchUp: ix.CatchUp}, nil
}

// lineageOptions are the index options of both storages, with the gap
// metric registered.
func lineageOptions(cfg config, reg *prometheus.Registry, log *slog.Logger) (lineage.Options, error) {
	if cfg.LineageMaxBusy <= 0 || cfg.LineageMaxBusy > 1 {
		return lineage.Options{}, fmt.Errorf("--lineage-max-busy %v: want a value in (0,1]", cfg.LineageMaxBusy)
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
	return lineage.Options{
		Logger:  log,
		MaxBusy: cfg.LineageMaxBusy,
		MaxLag:  cfg.LineageMaxLag,
		OnGap: func(g lineage.Gap) {
			gaps.WithLabelValues(string(g.Kind)).Inc()
			gapLog.gap(g)
		},
	}, nil
}

// lineageTable is the table of the shared lineage index under --storage
// aws, in the --mysql-dsn database.
const lineageTable = "provlog_lineage"

// openSharedLineage opens the lineage index that every frontend of the
// database shares: one of them at a time writes it (lineage.Shared), all
// answer queries from it.
func openSharedLineage(ctx context.Context, cfg config, l *ledger.Ledger, reg *prometheus.Registry, opts lineage.Options) (*lineageIndex, error) {
	sh, err := lineage.OpenShared(ctx, cfg.MySQLDSN, lineageTable, l.Reader(), opts, cfg.Reindex)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the shared lineage index: %w", err)
	}
	if cfg.Reindex {
		opts.Logger.Info("--reindex: the shared lineage index is rebuilt from the log when this frontend next takes its writer lock")
	}
	registerWatermark(reg, sh.Index())
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "provlog_lineage_writer",
		Help: "1 when this frontend writes the shared lineage index (--storage aws), else 0.",
	}, func() float64 {
		if sh.Writer() {
			return 1
		}
		return 0
	}))
	return &lineageIndex{index: sh.Index(), close: sh.Close, run: sh.Run, catchUp: sh.CatchUp}, nil
}

func registerWatermark(reg *prometheus.Registry, ix *lineage.Index) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "provlog_lineage_watermark",
		Help: "Tree size the lineage index has indexed.",
	}, func() float64 { return float64(ix.Watermark()) }))
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
