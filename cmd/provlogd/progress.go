package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/ledger"
)

// progressMetrics exports how far the log has got (sequenced, integrated,
// published) and how old the published checkpoint is, polled every
// interval. They feed the checkpoint-age and integration-lag alerts in
// deploy/prometheus.
type progressMetrics struct {
	mu        sync.Mutex
	p         ledger.Progress
	changedAt time.Time // when this process first saw the current checkpoint size
}

// startProgressMetrics registers the gauges on reg and polls l until ctx
// ends. A failed poll keeps the last values: the checkpoint age keeps
// growing while storage is down, which is what the alert is for.
func startProgressMetrics(ctx context.Context, reg prometheus.Registerer, l *ledger.Ledger, interval time.Duration, log *slog.Logger) {
	m := &progressMetrics{changedAt: time.Now()}
	gauge := func(opts prometheus.GaugeOpts, f func(p ledger.Progress, age time.Duration) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(opts, func() float64 {
			m.mu.Lock()
			defer m.mu.Unlock()
			return f(m.p, time.Since(m.changedAt))
		})
	}
	reg.MustRegister(
		gauge(prometheus.GaugeOpts{Name: "provlog_sequenced_size", Help: "Entries given an index by the storage (with --storage aws: by every frontend)."},
			func(p ledger.Progress, _ time.Duration) float64 { return float64(p.Sequenced) }),
		gauge(prometheus.GaugeOpts{Name: "provlog_integrated_size", Help: "Size of the tree the storage has integrated (tiles and entry bundles written)."},
			func(p ledger.Progress, _ time.Duration) float64 { return float64(p.Integrated) }),
		gauge(prometheus.GaugeOpts{Name: "provlog_checkpoint_size", Help: "Size of the latest published checkpoint."},
			func(p ledger.Progress, _ time.Duration) float64 { return float64(p.Published) }),
		gauge(prometheus.GaugeOpts{Name: "provlog_integration_lag_entries", Help: "Entries sequenced but not yet integrated into the tree (tessera pushes back at 4096 with --storage aws; always 0 with posix, which integrates as it sequences)."},
			func(p ledger.Progress, _ time.Duration) float64 {
				return float64(p.Sequenced - min(p.Sequenced, p.Integrated))
			}),
		gauge(prometheus.GaugeOpts{Name: "provlog_checkpoint_age_seconds", Help: "Seconds since the published checkpoint's size last changed (as seen by this process, which polls it; restarts at 0 when the process starts). An idle log's checkpoint grows old: alert on it only while entries wait (provlog_integrated_size > provlog_checkpoint_size)."},
			func(_ ledger.Progress, age time.Duration) float64 { return age.Seconds() }),
	)
	poll := func() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		p, err := l.Progress(pctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("reading the log's progress for /metrics failed", "err", err)
			}
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if p.Published != m.p.Published {
			m.changedAt = time.Now()
		}
		m.p = p
	}
	poll()
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				poll()
			}
		}
	}()
}
