package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/internal/testbin"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// provwitnessBinary builds cmd/provwitness once per test binary.
func provwitnessBinary(t *testing.T) string { return testbin.Build(t, "cmd/provwitness") }

// startWitness starts provwitness for one log, with the signer key in
// keyFile (named w1.provctl-e2e.example), and returns its address and its
// cosignature/v1 verifier key as provwitness wrote it.
func startWitness(t *testing.T, logArg, keyFile string) (addr, vkey string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "witness.key"), mustRead(t, keyFile), 0o600); err != nil {
		t.Fatal(err)
	}
	addr = freePort(t)
	p := testbin.Start(t, provwitnessBinary(t), nil, "--data-dir", dir, "--addr", addr, "--log", logArg, "--name", "w1.provctl-e2e.example")
	p.WaitHealthy(t, "http://"+addr+"/healthz", 20*time.Second)
	return addr, strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "witness.pub"))))
}

// provlogdBinary builds cmd/provlogd once per test binary.
func provlogdBinary(t *testing.T) string { return testbin.Build(t, "cmd/provlogd") }

func TestMain(m *testing.M) { testbin.Main(m) }

func freePort(t *testing.T) string { return testbin.FreePort(t) }

// daemon is one running provlogd.
type daemon struct {
	t                  *testing.T
	dataDir            string
	grpcAddr, httpAddr string
	proc               *testbin.Process
	logs               *testbin.Buffer
}

func startDaemon(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dataDir: dataDir, grpcAddr: freePort(t), httpAddr: freePort(t)}
	d.proc = testbin.Start(t, provlogdBinary(t), nil, append([]string{"--data-dir", dataDir, "--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr,
		"--checkpoint-interval", "200ms", "--batch-max-age", "20ms"}, extra...)...)
	d.logs = d.proc.Logs
	d.proc.WaitHealthy(t, "http://"+d.httpAddr+"/healthz", 30*time.Second)
	return d
}

// stop sends SIGINT and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.proc.Stop(d.t, 40*time.Second)
	d.proc = nil
}

func (d *daemon) kill() {
	if d.proc == nil {
		return
	}
	d.proc.Kill()
	d.proc = nil
}

// env is the provctl environment for this daemon: no flags needed.
func (d *daemon) env() map[string]string {
	tok, err := os.ReadFile(filepath.Join(d.dataDir, "admin.token"))
	if err != nil {
		d.t.Fatal(err)
	}
	return map[string]string{
		"PROVLOG_ADDR":    d.grpcAddr,
		"PROVLOG_HTTP":    "http://" + d.httpAddr,
		"PROVLOG_TOKEN":   strings.TrimSpace(string(tok)),
		"PROVLOG_LOG_KEY": filepath.Join(d.dataDir, "log.pub"),
	}
}

// sampleNDJSON writes the sample events from..to (1-based file order) as
// NDJSON and returns the file name and the events.
func sampleNDJSON(t *testing.T, from, to int) (string, []*pb.ProvenanceEvent) {
	t.Helper()
	files, err := filepath.Glob("../../testdata/events/*.json")
	if err != nil || len(files) < to {
		t.Fatalf("want %d sample events, got %d (%v)", to, len(files), err)
	}
	var buf bytes.Buffer
	var evs []*pb.ProvenanceEvent
	for _, f := range files[from-1 : to] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ev := &pb.ProvenanceEvent{}
		if err := protojson.Unmarshal(b, ev); err != nil {
			t.Fatal(err)
		}
		line, err := protojson.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(bytes.ReplaceAll(line, []byte("\n"), nil))
		buf.WriteByte('\n')
		evs = append(evs, ev)
	}
	p := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, evs
}

// mustRun runs provctl and requires the exit code.
func mustRun(t *testing.T, vars map[string]string, want int, args ...string) (string, string) {
	t.Helper()
	code, out, errs := provctl(t, vars, args...)
	if code != want {
		t.Fatalf("provctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}
