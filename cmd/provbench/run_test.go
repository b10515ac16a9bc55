package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/provlog/provlog/internal/testbin"
	"github.com/provlog/provlog/log/ledger"
	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	// Tessera logs through klog; keep test output to the tests.
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	testbin.Main(m)
}

// baseConfig is the flag defaults, with overrides for a quick run.
func baseConfig(t *testing.T) Config {
	t.Helper()
	var cfg Config
	if err := newFlagSet(&cfg, new(bytes.Buffer)).Parse(nil); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestRunOnlyBaseline(t *testing.T) {
	if testing.Short() {
		t.Skip("appends to real tessera logs on disk")
	}
	cfg := baseConfig(t)
	cfg.OnlyBaseline = true
	cfg.BaselineDir = t.TempDir()
	cfg.Concurrency = 4
	cfg.BatchSize = 10
	cfg.Count = 40
	cfg.Duration = 20 * time.Second
	cfg.JSON = true
	// Publish often, so that waiting for publication stays quick.
	cfg.Tessera.checkpointInterval = 200 * time.Millisecond
	for _, tc := range []struct {
		wait, kind string
		cpu        time.Duration // -baseline-cpu-per-event
	}{
		{"sequenced", kindPlain, 0}, {"published", kindPlain, 0}, {"sequenced", kindSigned, 0}, {"sequenced", kindSensitive, 0},
		{"sequenced", kindPlain, 50 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("%s-%s-cpu%v", tc.wait, tc.kind, tc.cpu), func(t *testing.T) {
			cfg.Wait, cfg.Events, cfg.Tessera.cpuPerEvent = tc.wait, tc.kind, tc.cpu
			var out bytes.Buffer
			log := slog.New(slog.NewTextHandler(new(bytes.Buffer), nil))
			if err := run(t.Context(), cfg, &out, log); err != nil {
				t.Fatal(err)
			}
			var rep report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("--json output doesn't parse: %v\n%s", err, out.String())
			}
			if want := map[time.Duration]string{0: "", 50 * time.Microsecond: "50µs"}[tc.cpu]; rep.Settings.CPUPerEvent != want {
				t.Errorf("baseline_tessera.cpu_per_event = %q, want %q", rep.Settings.CPUPerEvent, want)
			}
			if len(rep.Results) != 2 {
				t.Fatalf("%d results, want 2 (unary and batch baseline)", len(rep.Results))
			}
			for _, r := range rep.Results {
				if r.Target != "tessera" || r.Events != cfg.Count || r.EventsPerSecond <= 0 || r.Latency.Calls == 0 {
					t.Errorf("result %+v: want tessera, %d events, a rate and latencies", r, cfg.Count)
				}
				// Every call is covered by a checkpoint published at most
				// a few intervals after it; a call that waited for
				// publication returned after the watch (polling every
				// 10ms) saw its checkpoint.
				if c := r.ToCheckpoint; c == nil || c.Calls != r.Latency.Calls || c.Max > 2000 || tc.wait == "published" && c.P50 > r.Latency.P50+15 {
					t.Errorf("%s: time to checkpoint %+v, want one per call (%d), within 2s (call latency %+v)", r.Mode, c, r.Latency.Calls, r.Latency)
				}
			}
			if rep.LeafBytes < cfg.EventSize-8 || rep.LeafBytes > cfg.EventSize+200 || (tc.kind == kindPlain && rep.LeafBytes > cfg.EventSize+8) {
				t.Errorf("leaf_bytes = %d, want about %d", rep.LeafBytes, cfg.EventSize)
			}
			// Each phase's log is removed afterwards.
			left, err := os.ReadDir(cfg.BaselineDir)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("baseline dir still holds %v", left)
			}
		})
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"mode", func(c *Config) { c.Mode = "pigeon" }, "-mode"},
		{"mode twice", func(c *Config) { c.Mode = "batch,stream,batch" }, "batch twice"},
		{"events", func(c *Config) { c.Events = "loud" }, "-events"},
		{"streams", func(c *Config) { c.Streams = 0 }, "-streams"},
		{"stream events", func(c *Config) { c.StreamEvents = 0 }, "-stream-events"},
		{"warmup", func(c *Config) { c.Warmup = -time.Second }, "-warmup"},
		{"no address", func(c *Config) { c.GRPCAddr = " , " }, "no address"},
		{"one remote frontend", func(c *Config) { c.GRPCAddr = "127.0.0.1:8090,192.0.2.1:8090" }, "loopback"},
		{"wait", func(c *Config) { c.Wait = "never" }, "-wait"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "-concurrency"},
		{"batch size", func(c *Config) { c.BatchSize = 0 }, "-batch-size"},
		{"duration", func(c *Config) { c.Duration = 0 }, "-duration"},
		{"checkpoint poll", func(c *Config) { c.CheckpointPoll = time.Microsecond }, "-checkpoint-poll"},
		{"event size", func(c *Config) { c.EventSize = 10 }, "-event-size"},
		{"negative baseline CPU", func(c *Config) { c.Tessera.cpuPerEvent = -time.Microsecond }, "-baseline-cpu-per-event"},
		{"baseline CPU too large", func(c *Config) { c.Tessera.cpuPerEvent = time.Second }, "-baseline-cpu-per-event"},
		{"remote address", func(c *Config) { c.GRPCAddr = "192.0.2.1:8090" }, "loopback"},
		{"no token", func(c *Config) { c.DataDir = t.TempDir() }, "no bearer token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.edit(&cfg)
			err := run(t.Context(), cfg, new(bytes.Buffer), slog.New(slog.NewTextHandler(new(bytes.Buffer), nil)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("run error = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func TestReportRatios(t *testing.T) {
	batch := result{Target: "provlog", Mode: "batch", Events: 90000, Seconds: 10, EventsPerSecond: 9000}
	batch.indexCaughtUp(5 * time.Second) // 90000 events in 15 s: 6000/s sustained
	rep := &report{Results: []result{
		{Target: "provlog", Mode: "unary", EventsPerSecond: 800},
		{Target: "tessera", Mode: "unary", EventsPerSecond: 1000},
		batch,
		{Target: "tessera", Mode: "batch", EventsPerSecond: 10000},
	}}
	rep.compare()
	want := []ratio{
		{Mode: "unary", ProvlogOverTessera: 0.8},
		{Mode: "batch", ProvlogOverTessera: 0.9, SustainedOverTessera: 0.6},
	}
	if diff := cmp.Diff(want, rep.Ratios, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("ratios (-want +got):\n%s", diff)
	}
	var out bytes.Buffer
	if err := rep.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"provlog/tessera batch: 0.90\n",
		"provlog/tessera batch sustained: 0.60\n",
		"note: provlog batch: the lineage index covered every event 5.0s after the phase: 6000 events/s sustained\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("table lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "unary sustained") {
		t.Errorf("table has a sustained ratio for a phase without -index-wait:\n%s", out.String())
	}
}

// TestBaselineBatchDefault: without -baseline-batch-max-size the baseline
// sequences in batches of provlogd's default for the same storage, so that
// the two sides of a default run are set alike.
func TestBaselineBatchDefault(t *testing.T) {
	for _, tc := range []struct {
		storage string
		set     uint
		want    uint
	}{
		{"posix", 0, ledger.DefaultBatchMaxSize(false)},
		{"aws", 0, ledger.DefaultBatchMaxSize(true)},
		{"posix", 300, 300},
	} {
		cfg := baseConfig(t)
		cfg.Tessera.storage, cfg.Tessera.batchMaxSize = tc.storage, tc.set
		cfg.Tessera.awsCfg.DSN, cfg.Tessera.awsCfg.Bucket = "user@tcp(127.0.0.1:3306)/", "b"
		cfg.Tessera.checkpointInterval = ledger.AWSMinCheckpointInterval
		if err := cfg.check(); err != nil {
			t.Fatalf("%s: %v", tc.storage, err)
		}
		if got := cfg.Tessera.batchMaxSize; got != tc.want {
			t.Errorf("%s, -baseline-batch-max-size %d: batch size %d, want %d", tc.storage, tc.set, got, tc.want)
		}
	}
	if ledger.DefaultBatchMaxSize(false) == ledger.DefaultBatchMaxSize(true) {
		t.Errorf("posix and aws defaults are both %d: the table above proves nothing", ledger.DefaultBatchMaxSize(false))
	}
}
