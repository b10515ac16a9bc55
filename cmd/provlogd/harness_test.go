package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// provlogdBinary builds cmd/provlogd once per test binary.
func provlogdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "provlogd-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "provlogd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
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
	t        *testing.T
	dataDir  string
	grpcAddr string
	httpAddr string
	args     []string
	env      []string // added to the environment, e.g. AWS credentials
	cmd      *exec.Cmd
	logs     *bytes.Buffer
	exited   chan error
	conn     *grpc.ClientConn
	token    string
}

func startDaemon(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, dataDir, nil, extra...)
}

// startDaemonEnv is startDaemon with env added to provlogd's environment.
func startDaemonEnv(t *testing.T, dataDir string, env []string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dataDir: dataDir, grpcAddr: freePort(t), httpAddr: freePort(t), args: extra, env: env}
	d.start()
	t.Cleanup(func() { d.kill() })
	return d
}

func (d *daemon) start() {
	t := d.t
	t.Helper()
	args := append([]string{"--data-dir", d.dataDir, "--grpc-addr", d.grpcAddr, "--http-addr", d.httpAddr,
		"--checkpoint-interval", "200ms", "--batch-max-age", "20ms", "--log-level", "debug"}, d.args...)
	d.cmd = exec.Command(provlogdBinary(t), args...)
	if d.env != nil {
		d.cmd.Env = append(os.Environ(), d.env...)
	}
	d.logs = &bytes.Buffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(d.cmd, d.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + d.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-d.exited:
			t.Fatalf("provlogd exited before becoming healthy: %v\n%s", err, d.logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("provlogd not healthy after 20s\n%s", d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(d.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	d.token = strings.TrimSpace(string(tok))
	d.conn, err = grpc.NewClient(d.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
}

// stop sends SIGINT and requires a clean exit.
func (d *daemon) stop() {
	t := d.t
	t.Helper()
	d.conn.Close()
	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		d.cmd = nil // exited: nothing for kill to wait for
		if err != nil {
			t.Fatalf("provlogd did not exit cleanly on SIGINT: %v\n%s", err, d.logs)
		}
		if !strings.Contains(d.logs.String(), "stopped cleanly") {
			t.Fatalf("provlogd exited without logging a clean stop:\n%s", d.logs)
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("provlogd did not stop within 40s of SIGINT\n%s", d.logs)
	}
	d.cmd = nil
}

// kill sends SIGKILL, if still running.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
	if d.conn != nil {
		d.conn.Close()
	}
}

func (d *daemon) client() pb.LogServiceClient { return pb.NewLogServiceClient(d.conn) }

func (d *daemon) ctx() context.Context {
	return metadata.AppendToOutgoingContext(d.t.Context(), "authorization", "Bearer "+d.token)
}

// rest sends a request to the REST gateway with the admin token and decodes
// returns the status and body.
func (d *daemon) rest(method, path string, body []byte) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequestWithContext(d.t.Context(), method, "http://"+d.httpAddr+path, bytes.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// get GETs path anonymously.
func (d *daemon) get(path string) (int, []byte) { return d.fetch(path, "") }

// authGet GETs path with the admin token.
func (d *daemon) authGet(path string) (int, []byte) { return d.fetch(path, d.token) }

func (d *daemon) fetch(path, token string) (int, []byte) {
	d.t.Helper()
	req, err := http.NewRequestWithContext(d.t.Context(), http.MethodGet, "http://"+d.httpAddr+path, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// verifier returns the log's note verifier from log.pub.
func (d *daemon) verifier() note.Verifier {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dataDir, "log.pub"))
	if err != nil {
		d.t.Fatal(err)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		d.t.Fatal(err)
	}
	return v
}

// checkpoint is a verified checkpoint, parsed with x/mod code only.
type checkpoint struct {
	raw    []byte
	origin string
	size   int64
	root   tlog.Hash
}

// openCheckpoint verifies the note signature with x/mod/sumdb/note and
// parses the C2SP checkpoint body by hand: origin, size, base64 root.
func openCheckpoint(t *testing.T, v note.Verifier, raw []byte) checkpoint {
	t.Helper()
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, raw)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		t.Fatalf("checkpoint body has %d lines: %q", len(lines), n.Text)
	}
	var size int64
	if _, err := fmt.Sscanf(lines[1], "%d", &size); err != nil {
		t.Fatalf("checkpoint size %q: %v", lines[1], err)
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		t.Fatalf("checkpoint root %q: %v", lines[2], err)
	}
	return checkpoint{raw: raw, origin: lines[0], size: size, root: root}
}

// latestCheckpoint fetches /log/checkpoint anonymously and verifies it.
func (d *daemon) latestCheckpoint() checkpoint {
	d.t.Helper()
	code, b := d.get("/log/checkpoint")
	if code != http.StatusOK {
		d.t.Fatalf("GET /log/checkpoint: %d %s", code, b)
	}
	return openCheckpoint(d.t, d.verifier(), b)
}

// waitForSize waits until the published checkpoint covers n leaves.
func (d *daemon) waitForSize(n int64) checkpoint {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, b := d.get("/log/checkpoint")
		if code == http.StatusOK {
			if cp := openCheckpoint(d.t, d.verifier(), b); cp.size >= n {
				return cp
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("no checkpoint of size >= %d within 30s\n%s", n, d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// loadSamples reads testdata/events in order.
func loadSamples(t *testing.T) (names []string, bodies [][]byte, events []*pb.ProvenanceEvent) {
	t.Helper()
	files, err := filepath.Glob("../../testdata/events/*.json")
	if err != nil || len(files) < 20 {
		t.Fatalf("want >= 20 sample events, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ev pb.ProvenanceEvent
		if err := protojson.Unmarshal(b, &ev); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		names, bodies, events = append(names, filepath.Base(f)), append(bodies, b), append(events, &ev)
	}
	return names, bodies, events
}

func jsonField(t *testing.T, b []byte, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	v, _ := m[field].(string)
	return v
}
