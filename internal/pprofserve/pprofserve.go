// Package pprofserve serves net/http/pprof on a loopback address taken from
// an environment variable, for profiling runs (scripts/profile.sh). Only
// builds made with -tags pprof import it (cmd/provlogd/pprof.go,
// cmd/provbench/pprof.go): a release build has no profiling endpoint.
package pprofserve

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"
)

// Start serves the profiles on the address in the environment variable env
// (host:port, loopback only), in the background, for the life of the
// process. It does nothing when env is unset.
func Start(env string) error {
	addr := os.Getenv(env)
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", env, addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s=%q: profiles are served on a loopback IP address only", env, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", env, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil {
			slog.Error("pprof server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	slog.Info("serving pprof", "addr", ln.Addr().String())
	return nil
}
