// Command provwitness is a C2SP tlog-witness server: it cosigns checkpoints
// of the transparency logs it is configured with, after checking that each
// is consistent with the last one it cosigned. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/provlog/provlog/witness"
)

const shutdownTimeout = 10 * time.Second

// config is everything the flags set.
type config struct {
	dataDir    string
	addr       string
	name       string
	logs       logFlag
	configFile string
	logFormat  string
	logLevel   slog.Level
}

func main() {
	code := 0
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		code = 2 // parseFlags printed the problem and the usage
	default:
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err = run(ctx, cfg, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintf(os.Stderr, "provwitness: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const usageHeader = `Usage: provwitness --data-dir DIR --log "ORIGIN VKEY" [flags]

provwitness is a C2SP tlog-witness (https://c2sp.org/tlog-witness). It cosigns
a log's checkpoint only if it is consistent with the last checkpoint it
cosigned for that log, and answers:

  POST /add-checkpoint            tlog-witness add-checkpoint
  GET  /<origin hash>/checkpoint  the latest checkpoint cosigned for a log,
                                  <origin hash> = lowercase hex SHA-256(origin)
  GET  /healthz                   liveness
  GET  /metrics                   Prometheus metrics

The first start creates DIR/witness.key (the Ed25519 cosigner key, mode 0600)
and DIR/witness.pub (its cosignature/v1 verifier key, one line); later starts
reuse them. State lives in DIR/witness.db: losing it lets the witness cosign a
fork, so back it up and never share it between instances.

Flags:
`

// parseFlags parses args. On -help it writes the usage to out and returns
// flag.ErrHelp; on a usage error it writes the error and a hint to out.
func parseFlags(args []string, out io.Writer) (config, error) {
	var cfg config
	fs := flag.NewFlagSet("provwitness", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.dataDir, "data-dir", "", "`directory` for the witness key and state (required)")
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:8070", "`address` to serve HTTP on")
	fs.StringVar(&cfg.name, "name", "", "witness `name` put in the key created on first start; a schema-less URL\nsuch as witness.example.com/w1 (default <hostname>/provwitness). Later\nstarts take the name from witness.key and refuse a different --name")
	fs.Var(&cfg.logs, "log", "a log to witness, as \"`ORIGIN VKEY`\": its checkpoint origin line and a\nnote verifier key of the log (repeatable; several keys per origin allowed)")
	fs.StringVar(&cfg.configFile, "config", "", "`file` listing logs to witness, one \"log ORIGIN VKEY\" per line;\nblank lines and lines starting with # are ignored")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log output `format`: text or json")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "minimum log `level`: debug, info, warn or error")
	fs.Usage = func() {} // printed below: in full for -help, a hint otherwise
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(out, usageHeader)
		fs.PrintDefaults()
		return cfg, err
	} else if err != nil {
		fmt.Fprintln(out, "Run provwitness -help for usage.")
		return cfg, err
	}
	var problem string
	switch {
	case fs.NArg() > 0:
		problem = fmt.Sprintf("unexpected arguments: %q", fs.Args())
	case cfg.dataDir == "":
		problem = "--data-dir is required"
	case len(cfg.logs) == 0 && cfg.configFile == "":
		problem = "no logs to witness: use --log or --config"
	case cfg.logFormat != "text" && cfg.logFormat != "json":
		problem = fmt.Sprintf("--log-format must be text or json, not %q", cfg.logFormat)
	}
	if problem != "" {
		fmt.Fprintf(out, "%s\nRun provwitness -help for usage.\n", problem)
		return cfg, errors.New(problem)
	}
	return cfg, nil
}

func newLogger(format string, level slog.Level, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// run serves the witness until ctx is done, then shuts down gracefully.
func run(ctx context.Context, cfg config, logOut io.Writer) error {
	logger := newLogger(cfg.logFormat, cfg.logLevel, logOut)
	specs := cfg.logs
	if cfg.configFile != "" {
		more, err := readConfigFile(cfg.configFile)
		if err != nil {
			return err
		}
		specs = append(specs, more...)
	}
	logs, err := buildLogs(specs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("couldn't create data directory: %w", err)
	}
	key, err := loadOrCreateKey(cfg.dataDir, cfg.name)
	if err != nil {
		return err
	}
	if key.created {
		logger.Info("created witness key", "path", filepath.Join(cfg.dataDir, keyFile), "vkey", key.vkey)
	}
	store, err := witness.OpenBoltStore(filepath.Join(cfg.dataDir, "witness.db"))
	if err != nil {
		return err
	}
	defer store.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := witness.New(witness.Config{
		Signer:     key.signer,
		Logs:       logs,
		Store:      store,
		Logger:     logger,
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", w.Handler())
	mux.HandleFunc("GET /healthz", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(rw, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("couldn't listen: %w", err)
	}
	origins := make([]string, len(logs))
	for i, l := range logs {
		origins[i] = l.Origin
	}
	logger.Info("provwitness listening", "addr", ln.Addr().String(), "name", key.signer.Name(),
		"vkey", key.vkey, "logs", strings.Join(origins, ", "))

	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server failed: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("couldn't shut down HTTP server: %w", err)
		}
		return nil
	})
	err = g.Wait()
	logger.Info("stopped", "err", err)
	return err
}
