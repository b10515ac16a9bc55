package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// buildBinary builds provwitness into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	bin := filepath.Join(dir, "provwitness")
	cmd := exec.Command(gotool, "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running provwitness.
type proc struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{} // closed when stderr is drained
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// start runs the binary with JSON logs on a kernel-chosen loopback port and
// waits for /healthz.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "provwitness listening" {
				addr <- rec.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		t.Fatalf("provwitness exited before listening:\n%s", p.output())
	case <-time.After(20 * time.Second):
		t.Fatalf("provwitness did not listen within 20s:\n%s", p.output())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz not OK within 10s (%v):\n%s", err, p.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eLog is a test log built with x/mod's tlog.
type e2eLog struct {
	origin string
	signer note.Signer
	hashes []tlog.Hash
}

func newE2ELog(t *testing.T, origin, skey, prefix string, size int) *e2eLog {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &e2eLog{origin: origin, signer: s}
	for i := range size {
		hs, err := tlog.StoredHashes(int64(i), fmt.Appendf(nil, "%s%d", prefix, i), l)
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
	}
	return l
}

func (l *e2eLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *e2eLog) checkpoint(t *testing.T, size int) []byte {
	t.Helper()
	root, err := tlog.TreeHash(int64(size), l)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", l.origin, size, base64.StdEncoding.EncodeToString(root[:]))
	signed, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// body is the add-checkpoint body taking the witness from old to size.
func (l *e2eLog) body(t *testing.T, old, size int) []byte {
	t.Helper()
	b := fmt.Appendf(nil, "old %d\n", old)
	if old > 0 && old < size {
		p, err := tlog.ProveTree(int64(size), int64(old), l)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range p {
			b = fmt.Appendf(b, "%s\n", base64.StdEncoding.EncodeToString(h[:]))
		}
	}
	return append(append(b, '\n'), l.checkpoint(t, size)...)
}

type reply struct {
	code int
	ct   string
	body string
}

func do(t *testing.T, method, url string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// TestEndToEnd runs the real binary: it cosigns, survives SIGKILL without
// forgetting what it cosigned, and stops cleanly on SIGINT.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	data := filepath.Join(tmp, "data")
	const origin = "example.com/e2e"
	skey, vkey := newLogKey(t, origin)
	good := newE2ELog(t, origin, skey, "good", 12)
	evil := newE2ELog(t, origin, skey, "evil", 12)
	args := []string{"--data-dir", data, "--name", "witness.example/e2e", "--log", origin + " " + vkey}
	checkpointURL := func(p *proc) string {
		h := sha256.Sum256([]byte(origin))
		return p.url + "/" + hex.EncodeToString(h[:]) + "/checkpoint"
	}

	p := start(t, bin, args...)
	pub, err := os.ReadFile(filepath.Join(data, "witness.pub"))
	if err != nil {
		t.Fatal(err)
	}
	cosigVerifier, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(string(pub)))
	if err != nil {
		t.Fatalf("witness.pub: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(data, "witness.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("witness.key: %v, %v", fi, err)
	}
	for _, s := range [][2]int{{0, 3}, {3, 7}} {
		r := do(t, "POST", p.url+"/add-checkpoint", good.body(t, s[0], s[1]))
		if r.code != 200 {
			t.Fatalf("old %d size %d: %d %q\n%s", s[0], s[1], r.code, r.body, p.output())
		}
		if _, err := note.Open(append(good.checkpoint(t, s[1]), r.body...), note.VerifierList(cosigVerifier)); err != nil {
			t.Fatalf("cosignature for size %d does not verify with witness.pub: %v", s[1], err)
		}
	}

	// Crash. What was cosigned must survive.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()

	p = start(t, bin, args...)
	if pub2, _ := os.ReadFile(filepath.Join(data, "witness.pub")); !bytes.Equal(pub, pub2) {
		t.Fatalf("witness.pub changed across restart: %q -> %q", pub, pub2)
	}
	for i, s := range []struct {
		body []byte
		want reply
	}{
		{good.body(t, 0, 3), reply{409, "text/x.tlog.size", "7\n"}}, // older than what it cosigned
		{good.body(t, 3, 9), reply{409, "text/x.tlog.size", "7\n"}},
		{evil.body(t, 7, 7), reply{422, "text/plain; charset=utf-8", ""}}, // a fork of size 7
		{evil.body(t, 7, 12), reply{422, "text/plain; charset=utf-8", ""}},
	} {
		r := do(t, "POST", p.url+"/add-checkpoint", s.body)
		if s.want.body == "" {
			r.body = ""
		}
		if r != s.want {
			t.Errorf("after restart, request %d: got %+v, want %+v", i, r, s.want)
		}
	}
	r := do(t, "POST", p.url+"/add-checkpoint", good.body(t, 7, 12))
	if r.code != 200 {
		t.Fatalf("growth after restart: %d %q", r.code, r.body)
	}
	r = do(t, "GET", checkpointURL(p), nil)
	n, err := note.Open([]byte(r.body), note.VerifierList(cosigVerifier))
	if r.code != 200 || err != nil || !strings.HasPrefix(n.Text, origin+"\n12\n") {
		t.Errorf("GET checkpoint: %d %q (%v), want size 12 cosigned", r.code, r.body, err)
	}
	r = do(t, "GET", p.url+"/metrics", nil)
	for _, want := range []string{
		`provwitness_forks_detected_total{kind="root-mismatch",origin="example.com/e2e"} 1`,
		`provwitness_forks_detected_total{kind="bad-consistency-proof",origin="example.com/e2e"} 1`,
		`provwitness_cosignatures_total{origin="example.com/e2e"} 1`,
		`provwitness_http_requests_total{code="409",endpoint="add-checkpoint"} 2`,
	} {
		if !strings.Contains(r.body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(p.output(), `"level":"ERROR","msg":"FORK DETECTED`) {
		t.Errorf("no ERROR log for the fork:\n%s", p.output())
	}

	// SIGINT: graceful stop, exit 0.
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-p.done
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("after SIGINT: %v, want exit 0\n%s", err, p.output())
	}
	if !strings.Contains(p.output(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", p.output())
	}

	// It refuses to start with a key others can read.
	if err := os.Chmod(filepath.Join(data, "witness.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "open to group or others") {
		t.Errorf("start with a 0644 key: %v\n%s", err, out)
	}
	// Usage errors exit 2.
	if err := exec.Command(bin, "--log", origin+" "+vkey).Run(); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("start without --data-dir: %v, want exit status 2", err)
	}
}
