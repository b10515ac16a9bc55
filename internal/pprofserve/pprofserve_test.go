package pprofserve

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("TEST_PPROF_ADDR", addr)
	if err := Start("TEST_PPROF_ADDR"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("GET /debug/pprof/: %s\n%s", resp.Status, body)
	}
}

func TestStartRefuses(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"0.0.0.0:6060", "loopback"},
		{"example.com:6060", "loopback"},
		{"127.0.0.1", "missing port"},
	} {
		t.Setenv("TEST_PPROF_ADDR", tc.addr)
		if err := Start("TEST_PPROF_ADDR"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one about %q", tc.addr, err, tc.want)
		}
	}
	t.Setenv("TEST_PPROF_ADDR", "")
	if err := Start("TEST_PPROF_ADDR"); err != nil {
		t.Errorf("unset: %v", err)
	}
}
