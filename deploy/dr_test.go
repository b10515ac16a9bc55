package deploy

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// proc is a running provlogd or provwitness, stopped with SIGINT.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  bytes.Buffer
	addr string // HTTP
	done chan error
}

func start(t *testing.T, addr string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, addr: addr, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited: %v\n%s", filepath.Base(bin), err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy in 20s:\n%s", filepath.Base(bin), p.out.String())
		}
	}
}

func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			p.t.Fatalf("unclean stop: %v\n%s", err, p.out.String())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("did not stop in 30s:\n%s", p.out.String())
	}
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return b
}

// appendEvents appends sample events to a running provlogd and waits for
// each to be published (witnessed, with a policy).
func appendEvents(t *testing.T, p *proc, token string, files []string) {
	t.Helper()
	for i, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Waiting for the last one to be published covers the others.
		url := "http://" + p.addr + "/v1/events"
		if i == len(files)-1 {
			url += "?wait=WAIT_FOR_PUBLISHED"
		}
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("append %s: %s\n%s\n%s", f, resp.Status, b, p.out.String())
		}
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
}

// TestDisasterRecovery plays the runbook's disaster-recovery check on real
// binaries: a witnessed log is backed up, grows, and then several copies are
// checked against what the witness last cosigned.
func TestDisasterRecovery(t *testing.T) {
	bins := binaries(t)
	dir := t.TempDir()
	origin := "dr.example.com/provlog"
	events, err := filepath.Glob("../testdata/events/*.json")
	if err != nil || len(events) < 20 {
		t.Fatalf("want 20 sample events, got %d (%v)", len(events), err)
	}
	slices.Sort(events)

	// Keys as the runbook makes them; the witness URL is known only now.
	wAddr := freeAddr(t)
	kg := exec.Command("./keygen.sh", filepath.Join(dir, "keys"), origin, "w1=http://"+wAddr)
	kg.Env = append(os.Environ(), "PROVLOGD="+bins+"/provlogd", "PROVWITNESS="+bins+"/provwitness")
	if out, err := kg.CombinedOutput(); err != nil {
		t.Fatalf("keygen.sh: %v\n%s", err, out)
	}
	keys := filepath.Join(dir, "keys")
	policy := filepath.Join(keys, "witness-policy.txt")
	logPub := filepath.Join(keys, "log/log.pub")
	token, err := os.ReadFile(filepath.Join(keys, "log/admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(token))

	w := start(t, wAddr, bins+"/provwitness", "--data-dir", filepath.Join(keys, "witness-w1"),
		"--addr", wAddr, "--config", filepath.Join(keys, "provwitness.conf"))
	originHash := sha256.Sum256([]byte(origin))
	witnessURL := "http://" + wAddr + "/" + hex.EncodeToString(originHash[:]) + "/checkpoint"

	data := filepath.Join(dir, "data")
	copyDir(t, filepath.Join(keys, "log"), data)
	provlogd := func(dataDir string, extra ...string) *proc {
		addr := freeAddr(t)
		args := append([]string{"--data-dir", dataDir, "--origin", origin, "--grpc-addr", freeAddr(t), "--http-addr", addr,
			"--checkpoint-interval", "200ms", "--log-level", "warn"}, extra...)
		return start(t, addr, bins+"/provlogd", args...)
	}
	saveWitnessed := func(name string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, get(t, witnessURL), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// 10 events, witnessed; stop; back up.
	l := provlogd(data, "--witness-policy", policy)
	appendEvents(t, l, tok, events[:10])
	l.stop()
	witnessed10 := saveWitnessed("witnessed-10")
	backup := filepath.Join(dir, "backup")
	copyDir(t, data, backup)

	// 10 more, witnessed.
	l = provlogd(data, "--witness-policy", policy)
	appendEvents(t, l, tok, events[10:20])
	l.stop()
	witnessed20 := saveWitnessed("witnessed-20")

	// A copy that diverged from the backup: the same key, other entries
	// (the witness would refuse it, so no policy).
	fork := filepath.Join(dir, "fork")
	copyDir(t, backup, fork)
	l = provlogd(fork)
	rev := slices.Clone(events[10:20])
	slices.Reverse(rev)
	appendEvents(t, l, tok, rev)
	l.stop()

	// check runs drcheck: its output and exit code.
	check := func(logLoc string, witnessed ...string) (string, int) {
		args := append([]string{"--log-key", logPub, "--witness-policy", policy, "--log", logLoc}, witnessed...)
		out, err := exec.Command(bins+"/drcheck", args...).CombinedOutput()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return string(out), 0
		case errors.As(err, &ee):
			return string(out), ee.ExitCode()
		}
		t.Fatalf("drcheck: %v", err)
		return "", -1
	}
	for _, tc := range []struct {
		name      string
		log       string
		witnessed []string
		want      string // in the error; "" for consistent
	}{
		{"current copy, same size", filepath.Join(data, "log"), []string{witnessed20}, ""},
		{"current copy, grown since", filepath.Join(data, "log"), []string{witnessed10}, ""},
		{"largest witnessed wins", filepath.Join(data, "log"), []string{witnessed10, witnessed20}, ""},
		{"backup behind the witness", filepath.Join(backup, "log"), []string{witnessed20}, "behind the witnessed checkpoint (size 20): entries 10..19 are missing"},
		{"backup at the witnessed size", filepath.Join(backup, "log"), []string{witnessed10}, ""},
		{"fork, same size", filepath.Join(fork, "log"), []string{witnessed20}, "different roots"},
		{"fork, grown from an older witnessed size", filepath.Join(fork, "log"), []string{witnessed10}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code := check(tc.log, tc.witnessed...)
			switch {
			case tc.want == "" && (code != 0 || !strings.Contains(out, "OK: the restored log")):
				t.Fatalf("want consistent, got exit %d\n%s", code, out)
			case tc.want != "" && (code != 1 || !strings.Contains(out, tc.want)):
				t.Fatalf("want exit 1 and %q, got exit %d\n%s", tc.want, code, out)
			}
		})
	}

	// Over HTTP, as the runbook does it after starting the restored copy
	// (without its witness policy, so nothing is published to the witness
	// before the check).
	t.Run("HTTP", func(t *testing.T) {
		l := provlogd(data)
		defer l.stop()
		if out, code := check("http://"+l.addr+"/log/", witnessed20); code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})

	// A checkpoint that is not cosigned by a policy witness proves nothing.
	t.Run("uncosigned", func(t *testing.T) {
		l := provlogd(fork)
		raw := get(t, "http://"+l.addr+"/log/checkpoint")
		l.stop()
		f := filepath.Join(dir, "uncosigned")
		os.WriteFile(f, raw, 0o644)
		if out, code := check(filepath.Join(data, "log"), f); code != 1 || !strings.Contains(out, "no valid cosignature") {
			t.Fatalf("want exit 1 for lack of cosignature, got %d\n%s", code, out)
		}
	})
	// Wrong inputs: another key for the same origin (exit 1), a policy
	// without witnesses and missing arguments (exit 2).
	t.Run("bad inputs", func(t *testing.T) {
		_, otherPub, err := note.GenerateKey(rand.Reader, origin)
		if err != nil {
			t.Fatal(err)
		}
		otherKey, noWitnesses := filepath.Join(dir, "other.pub"), filepath.Join(dir, "empty-policy.txt")
		os.WriteFile(otherKey, []byte(otherPub+"\n"), 0o644)
		os.WriteFile(noWitnesses, []byte("# nobody\n"), 0o644)
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--log-key", otherKey, "--witness-policy", policy, "--log", filepath.Join(data, "log"), witnessed20}, 1, "log signature"},
			{[]string{"--log-key", logPub, "--witness-policy", noWitnesses, "--log", filepath.Join(data, "log"), witnessed20}, 2, "names no witness"},
			{[]string{"--log-key", logPub, "--witness-policy", policy, "--log", filepath.Join(data, "log")}, 2, "required"},
			{[]string{"--log-key", logPub, "--witness-policy", policy, "--log", filepath.Join(dir, "nowhere"), witnessed20}, 2, "not a URL or a directory"},
		} {
			out, err := exec.Command(bins+"/drcheck", tc.args...).CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(string(out), tc.want) {
				t.Errorf("drcheck %q: %v, want exit %d and %q\n%s", tc.args, err, tc.code, tc.want, out)
			}
		}
	})
	w.stop()
}
