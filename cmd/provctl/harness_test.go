package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

var (
	buildOnce, witnessOnce sync.Once
	binPath                string
	buildErr, witnessErr   error
)

// provwitnessBinary builds cmd/provwitness next to provlogd.
func provwitnessBinary(t *testing.T) string {
	t.Helper()
	p := filepath.Join(filepath.Dir(provlogdBinary(t)), "provwitness")
	witnessOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", p, "../provwitness").CombinedOutput()
		if err != nil {
			witnessErr = fmt.Errorf("go build provwitness: %v\n%s", err, out)
		}
	})
	if witnessErr != nil {
		t.Fatal(witnessErr)
	}
	return p
}

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
	cmd := exec.Command(provwitnessBinary(t), "--data-dir", dir, "--addr", addr, "--log", logArg, "--name", "w1.provctl-e2e.example")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("provwitness exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("provwitness not healthy after 20s\n%s", logs.String())
		}
	}
	return addr, strings.TrimSpace(string(mustRead(t, filepath.Join(dir, "witness.pub"))))
}

// provlogdBinary builds cmd/provlogd once per test binary.
func provlogdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "provctl-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "provlogd")
		out, err := exec.Command("go", "build", "-o", binPath, "../provlogd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is one running provlogd.
type daemon struct {
	t                  *testing.T
	dataDir            string
	grpcAddr, httpAddr string
	cmd                *exec.Cmd
	logs               *bytes.Buffer
	exited             chan error
}

func startDaemon(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dataDir: dataDir, grpcAddr: freePort(t), httpAddr: freePort(t)}
	d.cmd = exec.Command(provlogdBinary(t), append([]string{"--data-dir", dataDir, "--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr,
		"--checkpoint-interval", "200ms", "--batch-max-age", "20ms"}, extra...)...)
	d.logs = &bytes.Buffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(d.cmd, d.exited)
	t.Cleanup(d.kill)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + d.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		select {
		case err := <-d.exited:
			t.Fatalf("provlogd exited before becoming healthy: %v\n%s", err, d.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("provlogd not healthy after 30s\n%s", d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGINT and waits for a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			d.t.Fatalf("provlogd did not exit cleanly: %v\n%s", err, d.logs)
		}
	case <-time.After(40 * time.Second):
		d.t.Fatalf("provlogd did not stop within 40s\n%s", d.logs)
	}
	d.cmd = nil
}

func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
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
