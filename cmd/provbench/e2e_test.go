package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/internal/testbin"
	"github.com/provlog/provlog/log/ledger"
)

func freeAddr(t *testing.T) string { return testbin.FreePort(t) }

// startProc starts bin with args, waits until healthURL answers 200, and
// stops it with SIGINT (requiring a clean exit) at cleanup.
func startProc(t *testing.T, bin, healthURL string, args ...string) {
	t.Helper()
	p := testbin.Start(t, bin, nil, args...)
	t.Cleanup(func() { p.Stop(t, 30*time.Second) })
	p.WaitHealthy(t, healthURL, 30*time.Second)
}

// TestRunAgainstProvlogd runs provbench against the real binaries: a
// provlogd with a vault, whose checkpoints need the cosignature of a real
// provwitness. Every mode and every kind of event is appended and
// acknowledged; signed events are signed with a key provbench registered;
// appends waiting for publication come back with witnessed checkpoints.
func TestRunAgainstProvlogd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts provlogd and provwitness")
	}
	provlogd, provwitness := testbin.Build(t, "cmd/provlogd"), testbin.Build(t, "cmd/provwitness")
	const origin = "provbench-e2e.example/log"
	dataDir := t.TempDir()
	if _, _, err := ledger.LoadOrCreateKeys(dataDir, origin, origin); err != nil {
		t.Fatal(err)
	}
	logPub, err := os.ReadFile(filepath.Join(dataDir, ledger.VerifierKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	wDir, wAddr := t.TempDir(), freeAddr(t)
	startProc(t, provwitness, "http://"+wAddr+"/healthz",
		"--data-dir", wDir, "--addr", wAddr, "--name", "w1.provbench-e2e.example/w",
		"--log", origin+" "+strings.TrimSpace(string(logPub)))
	wPub, err := os.ReadFile(filepath.Join(wDir, "witness.pub"))
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(t.TempDir(), "witnesses.policy")
	if err := os.WriteFile(policy, fmt.Appendf(nil, "witness w1 %s http://%s/\nquorum w1\n", strings.TrimSpace(string(wPub)), wAddr), 0o644); err != nil {
		t.Fatal(err)
	}
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	startProc(t, provlogd, "http://"+httpAddr+"/healthz",
		"--data-dir", dataDir, "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--origin", origin,
		"--checkpoint-interval", "200ms", "--batch-max-age", "20ms", "--log-level", "warn",
		"--witness-policy", policy, "--vault-master-key", filepath.Join(t.TempDir(), "master.key"))

	for _, tc := range []struct{ kind, wait string }{
		{kindPlain, "published"},
		{kindSigned, "sequenced"},
		{kindSensitive, "sequenced"},
		{kindSigned, "published"},
	} {
		t.Run(tc.kind+"-"+tc.wait, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.GRPCAddr, cfg.DataDir = grpcAddr, dataDir
			cfg.Baseline = false
			cfg.Mode, cfg.Events, cfg.Wait = "all", tc.kind, tc.wait
			cfg.Concurrency, cfg.BatchSize, cfg.StreamEvents, cfg.Streams = 4, 5, 2, 2
			cfg.Count, cfg.Warmup = 20, 300*time.Millisecond
			cfg.JSON = true
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			if err := run(ctx, cfg, &out, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatal(err)
			}
			var rep report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("--json output doesn't parse: %v\n%s", err, out.String())
			}
			if len(rep.Results) != 3 || rep.EventKind != tc.kind {
				t.Fatalf("report %+v: want 3 results for %s events", rep, tc.kind)
			}
			for _, r := range rep.Results {
				if r.Events != cfg.Count || r.Abandoned != 0 || r.Latency.Calls == 0 || r.WarmupEvents == 0 {
					t.Errorf("%s: %+v: want %d events, none abandoned, and some warm-up", r.Mode, r, cfg.Count)
				}
				if c := r.IndexCatchUpSeconds; c == nil || *c < 0 || r.SustainedEventsPerSecond <= 0 || r.SustainedEventsPerSecond > r.EventsPerSecond {
					t.Errorf("%s: index catch-up %v, sustained %v events/s of %v: want the wait for the lineage index measured", r.Mode, c, r.SustainedEventsPerSecond, r.EventsPerSecond)
				}
				if c := r.ToCheckpoint; c == nil || c.Calls != r.Latency.Calls || c.Max <= 0 {
					t.Errorf("%s: time to checkpoint %+v: want one per call (%d)", r.Mode, c, r.Latency.Calls)
				}
				s := r.CheckpointSignatures
				switch {
				case tc.wait == "sequenced" && s != nil:
					t.Errorf("%s: checkpoint signatures %+v without waiting for publication", r.Mode, s)
				case tc.wait == "published" && (s == nil || s.Min != 2):
					t.Errorf("%s: checkpoint signatures %+v, want the log's and the witness's on every one", r.Mode, s)
				}
			}
		})
	}
}
