package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestCheckPlaintext(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8090", true},
		{"127.0.0.2:0", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"example.com:8080", false},
		{"127.0.0.1", false}, // no port
	} {
		err := checkPlaintext("grpc-addr", tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkPlaintext(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

// TestRunRefusesPlaintextOffLoopback: provlogd does not start on a public
// address without TLS, and says which flag to give.
func TestRunRefusesPlaintextOffLoopback(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, cfg := range []config{
		{DataDir: t.TempDir(), Storage: "posix", GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0"},
		{DataDir: t.TempDir(), Storage: "posix", GRPCAddr: "127.0.0.1:0", HTTPAddr: ":0"},
	} {
		err := run(t.Context(), cfg, log)
		if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
			t.Errorf("run(%s, %s) = %v, want a refusal naming --tls-cert", cfg.GRPCAddr, cfg.HTTPAddr, err)
		}
	}
	for _, tc := range []struct {
		cfg  config
		want string
	}{
		{config{ClientCA: "ca.pem"}, "--client-ca needs"},
		{config{TLSCert: "c.pem"}, "go together"},
		{config{TLSCert: "missing.pem", TLSKey: "missing.key"}, "couldn't load"},
	} {
		if _, err := serverTLS(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serverTLS(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
