package awstest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB is a private mariadbd for one test, which the test may stop and
// start again (fault tests), unlike the shared one of services.sh. It needs
// Debian's mariadb-server (scripts/ci/install-mariadb.sh installs it) and
// root, since mariadbd runs as the mysql user.
type MariaDB struct {
	t    testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// StartMariaDB starts a private MariaDB on a free loopback port, with
// grants off (anyone on loopback is root). It skips without mariadbd,
// unless CI is set; it is stopped and removed after the test.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	ServerDSN(t) // the services are expected wherever this runs
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("CI is set but %s is missing: scripts/ci/install-mariadb.sh installs it", bin)
			}
			t.Skipf("%s is missing: scripts/ci/install-mariadb.sh installs it", bin)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("a private mariadbd needs root (it runs as the mysql user)")
	}
	u, err := user.Lookup("mysql")
	if err != nil {
		t.Fatalf("mysql user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// Not t.TempDir: mariadbd, as mysql, must be able to reach it.
	dir, err := os.MkdirTemp("", "provlog-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	m := &MariaDB{t: t, dir: dir}
	t.Cleanup(func() {
		m.Stop()
		os.RemoveAll(dir)
	})
	out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=mysql", "--datadir="+filepath.Join(dir, "data"),
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	m.Start()
	return m
}

// DSN is the server's DSN for database db ("" for none).
func (m *MariaDB) DSN(db string) string {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr, c.DBName = "root", "tcp", fmt.Sprintf("127.0.0.1:%d", m.port), db
	return c.FormatDSN()
}

// Start starts the server (again) and waits until it answers.
func (m *MariaDB) Start() {
	t := m.t
	t.Helper()
	m.cmd = exec.Command("mariadbd", "--no-defaults", "--user=mysql", "--datadir="+filepath.Join(m.dir, "data"),
		"--socket="+filepath.Join(m.dir, "mysqld.sock"), "--bind-address=127.0.0.1", "--port="+strconv.Itoa(m.port),
		"--skip-grant-tables", "--innodb-buffer-pool-size=64M", "--log-error="+filepath.Join(m.dir, "error.log"))
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting mariadbd: %v", err)
	}
	m.done = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(m.cmd, m.done)
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-m.done:
			log, _ := os.ReadFile(filepath.Join(m.dir, "error.log"))
			t.Fatalf("mariadbd exited at start:\n%s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd not answering after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, a clean shutdown) and waits for it.
func (m *MariaDB) Stop() {
	if m.cmd == nil || m.cmd.Process == nil { // not started, or failed to start
		m.cmd = nil
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// NewDatabase creates a database on the server and returns its DSN.
func (m *MariaDB) NewDatabase(t testing.TB) string {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "provlog_test_" + suffix()
	if _, err := db.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating database: %v", err)
	}
	return m.DSN(name)
}
