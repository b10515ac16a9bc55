package awstest

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// VersityGW is a private versitygw (posix backend) for one test, which the
// test may stop and start again (fault tests), unlike the shared one of
// services.sh. Its buckets live in a directory of the test.
type VersityGW struct {
	S3
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartVersityGW starts a private versitygw on a free loopback port with
// the credentials of Store. It skips or fails as the package doc says.
func StartVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	st := Store(t)
	bin := need(t, "PROVLOG_TEST_VERSITYGW_BIN")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	st.Endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
	g := &VersityGW{S3: st, t: t, bin: bin, dir: t.TempDir(), port: port}
	t.Cleanup(g.Stop)
	g.Start()
	return g
}

// Start starts the gateway (again) and waits until it accepts connections.
func (g *VersityGW) Start() {
	t := g.t
	t.Helper()
	g.cmd = exec.Command(g.bin, "--port", "127.0.0.1:"+strconv.Itoa(g.port), "--region", g.Region, "posix", g.dir)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+g.AccessKey, "ROOT_SECRET_KEY="+g.SecretKey)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting versitygw: %v", err)
	}
	g.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(g.cmd, g.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(g.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-g.done:
			t.Fatalf("versitygw exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw not listening after 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the gateway (SIGTERM) and waits for it.
func (g *VersityGW) Stop() {
	if g.cmd == nil || g.cmd.Process == nil { // not started, or failed to start
		g.cmd = nil
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
	g.cmd = nil
}
