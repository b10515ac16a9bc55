// Command provlogd is the provlog log server: gRPC and REST appends, signed
// checkpoints, proofs, and the C2SP tlog-tiles read API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/server"
	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"
)

// config is every setting of provlogd; the flags fill it.
type config struct {
	DataDir            string
	GRPCAddr           string
	HTTPAddr           string
	Origin             string
	Storage            string
	MySQLDSN           string
	S3Endpoint         string
	S3Bucket           string
	WitnessPolicy      string
	WitnessFailOpen    bool
	WitnessTimeout     time.Duration
	CheckpointInterval time.Duration
	BatchMaxSize       uint
	BatchMaxAge        time.Duration
	PublishTimeout     time.Duration
	ShutdownTimeout    time.Duration
	MinFreeMiB         uint64
	Reindex            bool
	LineageMaxBusy     float64
	LineageMaxLag      uint64
	LogFormat          string
	LogLevel           string
	Vault              vaultFlags
	NextLogKey         string
	HooksConfig        string
	RateIdentity       float64
	RateTenant         float64
	TLSCert            string
	TLSKey             string
	ClientCA           string
}

// defaultOrigin names a new log when --origin is not given.
const defaultOrigin = "localhost/provlog"

func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("provlogd", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data-dir", "./provlog-data", "directory for the log, its keys (log.key, log.pub), the admin token and indexes")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:8090", "gRPC listen address")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "HTTP listen address (/log/ tiles, /v1/ REST, /metrics, /healthz)")
	fs.StringVar(&cfg.Origin, "origin", "", "checkpoint origin of a new log (default \""+defaultOrigin+"\"); must match log.key's name for an existing log")
	fs.StringVar(&cfg.Storage, "storage", "posix", "storage backend: posix (embedded, on --data-dir) or aws (tessera's AWS driver: --mysql-dsn, --s3-bucket, --s3-endpoint; credentials from the standard AWS environment)")
	fs.StringVar(&cfg.MySQLDSN, "mysql-dsn", "", "--storage aws: MySQL/MariaDB DSN (go-sql-driver form, user:pass@tcp(host:3306)/db) for sequencing and the shared indexes")
	fs.StringVar(&cfg.S3Endpoint, "s3-endpoint", "", "--storage aws: URL of an S3-compatible store (path-style requests); empty means AWS S3")
	fs.StringVar(&cfg.S3Bucket, "s3-bucket", "", "--storage aws: bucket holding the tiles, entry bundles and checkpoint (must exist)")
	fs.StringVar(&cfg.WitnessPolicy, "witness-policy", "", "witness policy file (tessera policy format); checkpoints are published only once its quorum has cosigned")
	fs.BoolVar(&cfg.WitnessFailOpen, "witness-fail-open", false, "publish checkpoints even when the witness quorum is not met (default: fail closed)")
	fs.DurationVar(&cfg.WitnessTimeout, "witness-timeout", 5*time.Second, "how long publication waits for witness cosignatures")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", time.Second, "how often a new checkpoint is published (at least 100ms)")
	fs.UintVar(&cfg.BatchMaxSize, "batch-max-size", 0, fmt.Sprintf("most entries sequenced in one storage batch; 0 means %d with --storage posix, %d with aws", ledger.DefaultPOSIXBatchMaxSize, ledger.DefaultAWSBatchMaxSize))
	fs.DurationVar(&cfg.BatchMaxAge, "batch-max-age", 100*time.Millisecond, "longest an entry waits for its storage batch to fill")
	fs.DurationVar(&cfg.PublishTimeout, "publish-timeout", 30*time.Second, "longest an append asking to wait for publication waits")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "longest a graceful shutdown waits for requests to finish and entries to publish")
	fs.Uint64Var(&cfg.MinFreeMiB, "min-free-mib", 256, "free space (MiB) kept in reserve on --data-dir's file system: below it appends fail with ResourceExhausted until space is freed, so the log and its indexes never meet a full disk; 0: no reserve")
	fs.BoolVar(&cfg.Reindex, "reindex", false, "rebuild the lineage index from the log alone before serving")
	fs.Float64Var(&cfg.LineageMaxBusy, "lineage-max-busy", 0.5, "share of one core the lineage indexer may use while it is behind the log and appends are arriving, in (0,1]; 1 means no cap (it then competes with appends). With no append for a second, or more than --lineage-max-lag leaves behind, it indexes at full speed")
	fs.Uint64Var(&cfg.LineageMaxLag, "lineage-max-lag", 1_000_000, "leaves the lineage index may fall behind the log before it stops yielding to appends (--lineage-max-busy) and indexes at full speed; 0 means no bound")
	fs.StringVar(&cfg.HooksConfig, "hooks-config", "", "webhook sources for POST /v1/hooks/{source} (JSON, mode 0600: tenant, HMAC secret, mapping file per source); none when empty")
	fs.Float64Var(&cfg.RateIdentity, "rate-identity", 1000, "requests (batch events) per second one non-admin identity may make, bursts of max(2x, 1000); 0: no limit")
	fs.Float64Var(&cfg.RateTenant, "rate-tenant", 5000, "requests (batch events) per second all non-admin callers of one tenant may make, bursts of max(2x, 1000); 0: no limit")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) of both listeners; without it (and --tls-key) both serve plaintext, which is allowed on loopback only")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&cfg.ClientCA, "client-ca", "", "PEM CA bundle for client certificates (mTLS); a verified certificate's URI/DNS/email SAN or CN is mapped to roles by AdminService.GrantCertificate")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.NextLogKey, "log-next-key", "", "checkpoint key rotation: also sign every checkpoint with this note signer key (created when missing, with FILE.pub, under the log's origin) during the overlap; afterwards make it log.key")
	cfg.Vault.register(fs)
	return fs
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(migrateMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	var cfg config
	fs := newFlagSet(&cfg)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "provlogd: unexpected arguments: %q\n", fs.Args())
		os.Exit(2)
	}
	logger, err := newLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "provlogd:", err)
		os.Exit(2)
	}
	klog.SetSlogLogger(logger) // tessera logs through klog
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("provlogd failed", "err", err)
		os.Exit(1)
	}
}

func newLogger(w *os.File, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad --log-format %q: want text or json", format)
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	awsCfg, err := storageConfig(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("couldn't create data dir: %w", err)
	}
	signer, vkey, err := ledger.LoadOrCreateKeys(cfg.DataDir, cfg.Origin, defaultOrigin)
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return fmt.Errorf("couldn't parse log verifier key: %w", err)
	}
	adminToken, err := auth.LoadOrCreateBootstrapToken(filepath.Join(cfg.DataDir, "admin.token"), ledger.WriteSecretFile)
	if err != nil {
		return err
	}
	vlt, vpolicy, err := openVault(cfg, log)
	if err != nil {
		return err
	}
	if vlt != nil {
		defer vlt.Close()
	}
	tokens, stopAuth, err := openAuthStore(ctx, cfg, adminToken, log)
	if err != nil {
		return err
	}
	defer stopAuth()

	reg := prometheus.NewRegistry()
	lcfg := ledger.Config{
		Dir:                cfg.DataDir,
		AWS:                awsCfg,
		Signer:             signer,
		Verifier:           verifier,
		CheckpointInterval: cfg.CheckpointInterval,
		BatchMaxSize:       cfg.BatchMaxSize,
		BatchMaxAge:        cfg.BatchMaxAge,
		WitnessFailOpen:    cfg.WitnessFailOpen,
		WitnessTimeout:     cfg.WitnessTimeout,
		MinFreeBytes:       cfg.MinFreeMiB << 20,
		HTTPClient:         ledger.NewWitnessHTTPClient(reg, cfg.WitnessTimeout),
		Logger:             log,
	}
	if cfg.NextLogKey != "" {
		next, nextPub, err := loadNextKey(cfg.NextLogKey, signer.Name())
		if err != nil {
			return err
		}
		lcfg.AdditionalSigners = []note.Signer{next}
		log.Info("signing checkpoints with the next log key too", "next_verifier_key", nextPub)
	}
	if cfg.WitnessPolicy != "" {
		p, err := os.ReadFile(cfg.WitnessPolicy)
		if err != nil {
			return fmt.Errorf("couldn't read witness policy: %w", err)
		}
		wg, err := tessera.NewWitnessGroupFromPolicy(p)
		if err != nil {
			return fmt.Errorf("couldn't parse witness policy %s: %w", cfg.WitnessPolicy, err)
		}
		lcfg.Witnesses = &wg
	}

	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return err
	}
	if tlsCfg == nil {
		if err := errors.Join(checkPlaintext("grpc-addr", cfg.GRPCAddr), checkPlaintext("http-addr", cfg.HTTPAddr)); err != nil {
			return err
		}
	}
	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("couldn't listen for gRPC: %w", err)
	}
	httpLis, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("couldn't listen for HTTP: %w", err)
	}

	l, err := ledger.Open(ctx, lcfg)
	if err != nil {
		grpcLis.Close()
		httpLis.Close()
		return fmt.Errorf("couldn't open the log: %w", err)
	}
	registerPebbleMemory(reg, "idempotency", l.IndexMemory)
	if vlt != nil {
		registerPebbleMemory(reg, "vault", vlt.StoreMemory)
	}
	ix, err := openLineage(ctx, cfg, l, reg, log)
	if err != nil {
		l.Close(context.WithoutCancel(ctx))
		return err
	}
	ingestCfg, err := ingestConfig(cfg, tokens)
	if err != nil {
		ix.close()
		l.Close(context.WithoutCancel(ctx))
		return err
	}
	srv, err := server.New(ctx, server.Config{Ledger: l, Lineage: ix.index, Auth: tokens, Admin: tokens, TLS: tlsCfg, Limits: limits(cfg), Logger: log, PublishTimeout: cfg.PublishTimeout, Registry: reg, Vault: vlt, VaultPolicy: vpolicy, Ingest: ingestCfg, LogKey: vkey})
	if err != nil {
		ix.close()
		l.Close(context.WithoutCancel(ctx))
		return err
	}
	hs := &http.Server{Handler: srv.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, TLSConfig: tlsCfg}

	log.Info("provlogd serving", "origin", l.Origin(), "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(),
		"data_dir", cfg.DataDir, "verifier_key", vkey, "witnessed", lcfg.Witnesses != nil, "tls", tlsCfg != nil, "mtls", cfg.ClientCA != "")
	srv.SetServing(true)

	stopRetention := startRetention(context.WithoutCancel(ctx), l, vlt, vpolicy, cfg.Vault.RetentionInterval, log)
	g, gctx := errgroup.WithContext(ctx)
	lctx, stopLineage := context.WithCancel(context.WithoutCancel(ctx))
	lineageDone := make(chan struct{})
	startProgressMetrics(lctx, reg, l, time.Second, log) // issue 8: checkpoint age, integration lag
	go func() {
		defer close(lineageDone)
		if err := ix.run(lctx); err != nil && lctx.Err() == nil {
			log.Error("lineage index stopped", "err", err)
		}
	}()
	g.Go(func() error {
		if err := srv.GRPC.Serve(grpcLis); err != nil {
			return fmt.Errorf("gRPC server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		serve := func() error { return hs.Serve(httpLis) }
		if tlsCfg != nil {
			serve = func() error { return hs.ServeTLS(httpLis, "", "") }
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("HTTP server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		srv.SetServing(false)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		var errs []error
		if err := hs.Shutdown(sctx); err != nil {
			errs = append(errs, fmt.Errorf("HTTP shutdown: %w", err))
		}
		stopped := make(chan struct{})
		go func() { srv.GRPC.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-sctx.Done():
			srv.GRPC.Stop()
			errs = append(errs, errors.New("gRPC graceful stop timed out"))
		}
		srv.Close()
		stopRetention()
		// Every acknowledged entry is already durable; Close also waits for
		// it to be integrated and published, and indexes it.
		if err := l.Close(sctx); err != nil {
			errs = append(errs, fmt.Errorf("closing the log: %w", err))
		}
		// Index what the log published last, then stop the index.
		if err := ix.catchUp(sctx); err != nil {
			errs = append(errs, fmt.Errorf("final lineage pass: %w", err))
		}
		stopLineage()
		<-lineageDone
		if err := ix.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the lineage index: %w", err))
		}
		return errors.Join(errs...)
	})
	err = g.Wait()
	if ctx.Err() != nil && err == nil {
		log.Info("stopped cleanly")
	}
	return err
}
