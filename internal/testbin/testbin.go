// Package testbin builds and starts provlog's binaries for end-to-end tests:
// each binary is built once per test process, on free loopback ports, and
// removed when the process ends (call Main from TestMain).
package testbin

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Module is the import path the package arguments of Build are under.
const Module = "github.com/provlog/provlog"

var (
	mu    sync.Mutex
	dir   string
	built = map[string]*build{}
)

type build struct {
	once sync.Once
	path string
	err  error
}

// Build returns the path of the binary of pkg (relative to the module,
// e.g. "cmd/provlogd"), built once per test process. End-to-end tests are
// skipped in -short mode.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	mu.Lock()
	b, ok := built[pkg]
	if !ok {
		b = &build{}
		built[pkg] = b
	}
	mu.Unlock()
	b.once.Do(func() {
		d, err := binDir()
		if err != nil {
			b.err = err
			return
		}
		p := filepath.Join(d, path.Base(pkg))
		out, err := exec.Command("go", "build", "-o", p, Module+"/"+pkg).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
			return
		}
		b.path = p
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func binDir() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "provlog-e2e-bin")
		if err != nil {
			return "", fmt.Errorf("temp dir for binaries: %w", err)
		}
		dir = d
	}
	return dir, nil
}

// Main runs the tests and removes the binaries Build made: a package's
// TestMain is func TestMain(m *testing.M) { testbin.Main(m) }. (A TestMain
// that returns exits with m.Run's code.)
func Main(m *testing.M) {
	m.Run()
	mu.Lock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	mu.Unlock()
}

// FreePort returns a loopback address no one listens on right now.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Process is one started binary, its output kept in Logs. Its methods
// are for the test's goroutine (and its cleanups), not for several at once.
type Process struct {
	Cmd  *exec.Cmd
	Logs *Buffer
	// exited receives the result of Wait, once; Exited re-delivers it.
	exited chan error
	err    error
	done   bool
}

// Start starts bin with args, env added to the environment. The process
// is killed when t ends unless Stop or Kill came first.
func Start(t testing.TB, bin string, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(bin, args...), Logs: &Buffer{}, exited: make(chan error, 1)}
	if env != nil {
		p.Cmd.Env = append(os.Environ(), env...)
	}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Logs, p.Logs
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { p.exited <- p.Cmd.Wait() }()
	t.Cleanup(p.Kill)
	return p
}

// wait waits up to timeout for the process to end: forever if 0, not at
// all if negative.
func (p *Process) wait(timeout time.Duration) (ended bool, err error) {
	if p.done {
		return true, p.err
	}
	if timeout < 0 {
		select {
		case p.err = <-p.exited:
			p.done = true
		default:
		}
		return p.done, p.err
	}
	var after <-chan time.Time
	if timeout > 0 {
		after = time.After(timeout)
	}
	select {
	case p.err = <-p.exited:
		p.done = true
		return true, p.err
	case <-after:
		return false, nil
	}
}

// Exited reports, without waiting, whether the process has ended, and how.
func (p *Process) Exited() (ended bool, err error) { return p.wait(-1) }

// WaitHealthy polls url until it answers 200, failing t with the logs if
// the process ends first or timeout passes.
func (p *Process) WaitHealthy(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if ended, err := p.wait(time.Millisecond); ended {
			t.Fatalf("%s exited before %s answered: %v\n%s", p.Cmd.Path, url, err, p.Logs)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not healthy after %v\n%s", url, timeout, p.Logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends SIGINT and fails t unless the process exits with status 0
// within timeout.
func (p *Process) Stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !p.done {
		if err := p.Cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatalf("SIGINT to %s: %v", p.Cmd.Path, err)
		}
	}
	ended, err := p.wait(timeout)
	switch {
	case !ended:
		t.Fatalf("%s did not stop within %v of SIGINT\n%s", p.Cmd.Path, timeout, p.Logs)
	case err != nil:
		t.Fatalf("%s did not exit cleanly on SIGINT: %v\n%s", p.Cmd.Path, err, p.Logs)
	}
}

// Interrupt sends SIGINT and waits up to timeout for the process to end,
// then kills it: for cleanups that need no verdict.
func (p *Process) Interrupt(timeout time.Duration) {
	if !p.done {
		p.Cmd.Process.Signal(syscall.SIGINT)
		if ended, _ := p.wait(timeout); ended {
			return
		}
	}
	p.Kill()
}

// Kill sends SIGKILL, if still running, and waits for the process to end.
func (p *Process) Kill() {
	if !p.done {
		p.Cmd.Process.Kill()
	}
	p.wait(0)
}

// Buffer is a bytes.Buffer safe for the process's writes and the test's
// reads at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
