// Command provbench is provlog's load generator. It appends synthetic
// provenance events to a running provlogd over gRPC and, in the same run,
// appends the same leaf bytes to a bare tessera POSIX log on the same
// filesystem, then reports both throughputs, latency percentiles and the
// ratio between them. See README.md.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/provlog/provlog/log/ledger"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"k8s.io/klog/v2"
)

// Config is everything a run needs; the flag help is its reference.
type Config struct {
	GRPCAddr       string // one address, or several separated by commas
	Token          string
	TokenFile      string
	DataDir        string
	Mode           string
	Events         string // plain, signed or sensitive
	Streams        int    // AppendStream streams per frontend
	StreamEvents   int    // events per AppendStream request
	Warmup         time.Duration
	Concurrency    int
	BatchSize      int
	Duration       time.Duration
	Count          uint64
	Wait           string
	EventSize      int
	Baseline       bool
	OnlyBaseline   bool
	IndexWait      time.Duration // 0: do not wait for the lineage index
	CheckpointPoll time.Duration // 0: do not watch the published checkpoint
	BaselineDir    string
	Tessera        tesseraSettings
	JSON           bool
	LogFormat      string
	LogLevel       string
}

const usageHeader = `Usage: provbench [flags]

provbench appends synthetic provenance events (tenant "bench") to a running
provlogd (or several frontends of one log) over gRPC and, in the same run,
appends the same leaf bytes to a bare tessera log on the same storage, with
the same concurrency, then prints throughput, latency percentiles and the
provlog/tessera ratio. Each mode is a phase per target; each phase runs
-warmup uncounted, then stops by itself after -duration or -count events,
whichever comes first. Only loopback addresses.

Flags:
`

func newFlagSet(cfg *Config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("provbench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", "127.0.0.1:8090", "provlogd's gRPC `address`, or a comma-separated list of frontends of one log, which the callers take round-robin (loopback only)")
	fs.StringVar(&cfg.Token, "token", "", "bearer `token` to append with (needs the append role for tenant \"bench\")")
	fs.StringVar(&cfg.TokenFile, "token-file", "", "read the bearer token from `file` (default DATA-DIR/admin.token)")
	fs.StringVar(&cfg.DataDir, "data-dir", "./provlog-data", "provlogd's data `dir`: where the token is, and next to which the baseline log goes")
	fs.StringVar(&cfg.Mode, "mode", "both", "unary (one Append per event), batch (AppendBatch), stream (AppendStream), a comma-separated list of them, both (unary,batch) or all (unary,batch,stream)")
	fs.StringVar(&cfg.Events, "events", kindPlain, "plain; signed (each event signed by an Ed25519 submitter key that provbench registers first through AdminService: needs an admin token); or sensitive (3 sensitive values per event: provlogd needs --vault-master-key)")
	fs.IntVar(&cfg.Streams, "streams", 1, "in stream mode, AppendStream streams per frontend, which the callers share")
	fs.IntVar(&cfg.StreamEvents, "stream-events", 1, "in stream mode, events per AppendStream request (and per baseline call)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "run each phase this long first without counting it")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "concurrent callers, on both provlog and the baseline")
	fs.IntVar(&cfg.BatchSize, "batch-size", 100, "events per AppendBatch call (and per baseline call) in batch mode")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long each phase runs, after its warm-up")
	fs.Uint64Var(&cfg.Count, "count", 0, "if > 0, each phase also stops after this many events (after its warm-up)")
	fs.StringVar(&cfg.Wait, "wait", "sequenced", "when an append returns: sequenced (durably stored) or published (covered by a published checkpoint: witnessed, when provlogd has a -witness-policy)")
	fs.IntVar(&cfg.EventSize, "event-size", 1024, fmt.Sprintf("approximate leaf size in `bytes` (%d to %d)", minEventSize, maxEventSize))
	fs.BoolVar(&cfg.Baseline, "baseline", true, "also run the bare tessera baseline")
	fs.DurationVar(&cfg.IndexWait, "index-wait", 10*time.Minute, "after each provlog phase, wait up to this long for provlogd's lineage index to cover every event appended, report how long it took and the sustained rate, and only then start the next phase; 0 means do not wait")
	fs.DurationVar(&cfg.CheckpointPoll, "checkpoint-poll", 10*time.Millisecond, "during each phase, read the target's published checkpoint this often and report, per call, the time from its start to the first checkpoint covering its events (to_checkpoint_ms; with provlogd's -witness-policy, a witnessed checkpoint), measured without the appends waiting for it; 0 means do not poll")
	fs.BoolVar(&cfg.OnlyBaseline, "only-baseline", false, "run only the baseline; needs no server")
	fs.StringVar(&cfg.BaselineDir, "baseline-dir", "", "`dir` under which each baseline phase makes (and then removes) a fresh log (default the parent of -data-dir, so the same filesystem)")
	fs.DurationVar(&cfg.Tessera.checkpointInterval, "baseline-checkpoint-interval", time.Second, "baseline checkpoint interval; match provlogd's -checkpoint-interval")
	fs.UintVar(&cfg.Tessera.batchMaxSize, "baseline-batch-max-size", 0, "baseline sequencing batch size; match provlogd's -batch-max-size (0: provlogd's default for -baseline-storage)")
	fs.DurationVar(&cfg.Tessera.batchMaxAge, "baseline-batch-max-age", 100*time.Millisecond, "baseline sequencing batch age; match provlogd's -batch-max-age")
	fs.DurationVar(&cfg.Tessera.cpuPerEvent, "baseline-cpu-per-event", 0, "CPU the baseline spends (hashing, calibrated at the start of each phase) on the appending goroutine before adding each entry: a model of a service doing that much work per event beside tessera; 0 is bare tessera")
	fs.StringVar(&cfg.Tessera.storage, "baseline-storage", "posix", "baseline storage: posix (a directory, see -baseline-dir) or aws (tessera's AWS driver; match provlogd's --storage)")
	fs.StringVar(&cfg.Tessera.awsCfg.DSN, "baseline-mysql-dsn", "", "with -baseline-storage aws: MySQL `DSN` of a server where each phase creates (then drops) a database")
	fs.StringVar(&cfg.Tessera.awsCfg.Endpoint, "baseline-s3-endpoint", "", "with -baseline-storage aws: S3-compatible store `URL` (path-style); empty means AWS S3")
	fs.StringVar(&cfg.Tessera.awsCfg.Bucket, "baseline-s3-bucket", "", "with -baseline-storage aws: existing `bucket`; each phase writes under a prefix of its own")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON (schema in README.md) instead of a table")
	fs.StringVar(&cfg.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	return fs
}

func main() {
	os.Exit(mainExit(os.Args[1:], os.Stdout, os.Stderr))
}

// mainExit is main without the exit: parse flags, run, and say how to exit.
func mainExit(args []string, stdout, stderr io.Writer) int {
	var cfg Config
	fs := newFlagSet(&cfg, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "provbench: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "provbench: %v\n", err)
		return 2
	}
	// Tessera logs through klog and slog's default logger: send both here.
	slog.SetDefault(log)
	klog.SetSlogLogger(log.With("component", "tessera"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, stdout, log); err != nil {
		log.Error("provbench failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q: want text or json", format)
}

// check validates the configuration before anything starts.
func (c *Config) check() error {
	if _, err := c.modes(); err != nil {
		return err
	}
	switch c.Events {
	case kindPlain, kindSigned, kindSensitive:
	default:
		return fmt.Errorf("bad -events %q: want plain, signed or sensitive", c.Events)
	}
	switch c.Wait {
	case "sequenced", "published":
	default:
		return fmt.Errorf("bad -wait %q: want sequenced or published", c.Wait)
	}
	if c.Streams < 1 || c.Streams > 1000 {
		return fmt.Errorf("bad -streams %d: want 1 to 1000", c.Streams)
	}
	if c.StreamEvents < 1 || c.StreamEvents > 10_000 {
		return fmt.Errorf("bad -stream-events %d: want 1 to 10000", c.StreamEvents)
	}
	if c.Warmup < 0 {
		return fmt.Errorf("bad -warmup %v: want >= 0", c.Warmup)
	}
	if c.Concurrency < 1 || c.Concurrency > 100_000 {
		return fmt.Errorf("bad -concurrency %d: want 1 to 100000", c.Concurrency)
	}
	if c.BatchSize < 1 || c.BatchSize > 10_000 {
		return fmt.Errorf("bad -batch-size %d: want 1 to 10000", c.BatchSize)
	}
	if c.CheckpointPoll < 0 || (c.CheckpointPoll > 0 && c.CheckpointPoll < time.Millisecond) {
		return fmt.Errorf("bad -checkpoint-poll %v: want 0 or at least 1ms", c.CheckpointPoll)
	}
	if c.Duration <= 0 {
		return fmt.Errorf("bad -duration %v: want > 0", c.Duration)
	}
	if c.EventSize < minEventSize || c.EventSize > maxEventSize {
		return fmt.Errorf("bad -event-size %d: want %d to %d", c.EventSize, minEventSize, maxEventSize)
	}
	if c.Tessera.cpuPerEvent < 0 || c.Tessera.cpuPerEvent > 10*time.Millisecond {
		return fmt.Errorf("bad -baseline-cpu-per-event %v: want 0 to 10ms", c.Tessera.cpuPerEvent)
	}
	if c.OnlyBaseline {
		c.Baseline = true
	}
	if c.Tessera.batchMaxSize == 0 {
		c.Tessera.batchMaxSize = ledger.DefaultBatchMaxSize(c.Tessera.storage == "aws")
	}
	switch c.Tessera.storage {
	case "posix":
	case "aws":
		if c.Tessera.awsCfg.DSN == "" || c.Tessera.awsCfg.Bucket == "" {
			return errors.New("-baseline-storage aws needs -baseline-mysql-dsn and -baseline-s3-bucket")
		}
		if c.Tessera.checkpointInterval < ledger.AWSMinCheckpointInterval {
			return fmt.Errorf("-baseline-checkpoint-interval %v: tessera's AWS driver needs at least %v", c.Tessera.checkpointInterval, ledger.AWSMinCheckpointInterval)
		}
	default:
		return fmt.Errorf("bad -baseline-storage %q: want posix or aws", c.Tessera.storage)
	}
	if !c.OnlyBaseline {
		if len(c.addrs()) == 0 {
			return errors.New("bad -grpc-addr: no address")
		}
		for _, a := range c.addrs() {
			if err := checkLoopback(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// modes returns the phases -mode asks for, in order.
func (c *Config) modes() ([]string, error) {
	switch c.Mode {
	case "both":
		return []string{"unary", "batch"}, nil
	case "all":
		return []string{"unary", "batch", "stream"}, nil
	}
	var out []string
	for m := range strings.SplitSeq(c.Mode, ",") {
		switch m = strings.TrimSpace(m); m {
		case "unary", "batch", "stream":
			if slices.Contains(out, m) {
				return nil, fmt.Errorf("bad -mode %q: %s twice", c.Mode, m)
			}
			out = append(out, m)
		default:
			return nil, fmt.Errorf("bad -mode %q: want unary, batch, stream, a comma-separated list of them, both or all", c.Mode)
		}
	}
	return out, nil
}

// addrs returns the frontends of -grpc-addr.
func (c *Config) addrs() []string {
	var out []string
	for a := range strings.SplitSeq(c.GRPCAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// unit is how many events one call carries in mode.
func (c *Config) unit(mode string) int {
	switch mode {
	case "batch":
		return c.BatchSize
	case "stream":
		return c.StreamEvents
	}
	return 1
}

// token returns the bearer token from -token, -token-file, or provlogd's
// bootstrap admin token in the data dir.
func (c *Config) token() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	file, dflt := c.TokenFile, false
	if file == "" {
		file, dflt = filepath.Join(c.DataDir, "admin.token"), true
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if dflt && errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w (%s does not exist)", errNoToken, file)
		}
		return "", fmt.Errorf("couldn't read token: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("%w (%s is empty)", errNoToken, file)
	}
	return t, nil
}

// baselineParent returns the directory the baseline logs go under.
func (c *Config) baselineParent() (string, error) {
	dir := c.BaselineDir
	if dir == "" {
		abs, err := filepath.Abs(c.DataDir)
		if err != nil {
			return "", fmt.Errorf("couldn't resolve -data-dir: %w", err)
		}
		dir = filepath.Dir(abs)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("couldn't create baseline directory: %w", err)
	}
	return dir, nil
}

// poolSize is how many distinct leaves the baseline cycles through: up to
// 4096, in at most 64 MiB.
func poolSize(eventSize int) int {
	return min(max((64<<20)/eventSize, 256), 4096)
}

func run(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) error {
	if err := cfg.check(); err != nil {
		return err
	}
	modes, _ := cfg.modes()
	rep := newReport(time.Now())
	rep.Concurrency, rep.Wait, rep.EventKind = cfg.Concurrency, cfg.Wait, cfg.Events
	rep.Warmup, rep.Duration, rep.Count = round3(cfg.Warmup.Seconds()), round3(cfg.Duration.Seconds()), cfg.Count
	published := cfg.Wait == "published"

	var target *provlogTarget
	if !cfg.OnlyBaseline {
		rep.Frontends = cfg.addrs()
		var err error
		if target, err = openTarget(ctx, cfg, log); err != nil {
			return err
		}
		defer target.close()
	}

	// The baseline's leaves double as the measure of leaf size for both;
	// signed ones carry a signature by a key of their own (the baseline
	// verifies nothing), of the same length.
	bkind := eventKind{name: cfg.Events}
	if bkind.name == kindSigned {
		_, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return err
		}
		bkind.keyID, bkind.key = "provbench-baseline", priv
		if target != nil {
			bkind.keyID = target.gen.kind.keyID
		}
	}
	sizeGen, err := newKindGenerator(cfg.EventSize, bkind)
	if err != nil {
		return err
	}
	n := 64
	if cfg.Baseline {
		n = poolSize(cfg.EventSize)
	}
	pool, err := newLeafPool(sizeGen, n)
	if err != nil {
		return err
	}
	rep.LeafBytes = pool.meanSize()

	var parent string
	if cfg.Baseline {
		if parent, err = cfg.baselineParent(); err != nil {
			return err
		}
		rep.BaselineDir = parent
		rep.Settings = settingsJSON{
			Storage:            cfg.Tessera.storage,
			CheckpointInterval: cfg.Tessera.checkpointInterval.String(),
			BatchMaxSize:       cfg.Tessera.batchMaxSize,
			BatchMaxAge:        cfg.Tessera.batchMaxAge.String(),
		}
		if cfg.Tessera.cpuPerEvent > 0 {
			rep.Settings.CPUPerEvent = cfg.Tessera.cpuPerEvent.String()
		}
	}

	for _, mode := range modes {
		unit := cfg.unit(mode)
		if target != nil {
			call := target.unary
			switch mode {
			case "batch":
				call = target.batch
			case "stream":
				call = target.stream
				target.openStreams(ctx, cfg.Streams)
			}
			log.Info("phase starting", "target", "provlog", "mode", mode, "events", cfg.Events, "frontends", cfg.GRPCAddr)
			watch := cfg.watch(ctx, target.checkpointSize)
			defer watch.stop() // on the way out of a failed phase; toCheckpoint stops it otherwise
			st, err := drive(ctx, cfg.Concurrency, unit, cfg.Warmup, cfg.Duration, cfg.Count, call)
			opened := target.closeStreams()
			if err != nil {
				return fmt.Errorf("provlog %s phase: %w", mode, err)
			}
			r := newResult("provlog", mode, unit, st)
			if mode == "stream" {
				r.Streams = opened
			}
			if cfg.IndexWait > 0 {
				took, err := target.waitIndexed(ctx, st.logEnd, cfg.IndexWait)
				switch {
				case errors.Is(err, errIndexUnavailable):
					log.Warn("not waiting for the lineage index", "err", err)
				case err != nil:
					return fmt.Errorf("provlog %s phase, waiting for the lineage index (-index-wait): %w", mode, err)
				default:
					r.indexCaughtUp(took)
				}
			}
			switch r.ToCheckpoint, err = toCheckpoint(ctx, watch, st.marks); {
			case errors.Is(err, errCheckpointUnavailable):
				log.Warn("not reporting the time to a checkpoint", "err", err)
			case err != nil:
				return fmt.Errorf("provlog %s phase: %w", mode, err)
			}
			log.Info("phase done", "target", "provlog", "mode", mode, "events", r.Events, "events_per_second", int(r.EventsPerSecond), "retries", r.Retries)
			rep.Results = append(rep.Results, r)
		}
		if cfg.Baseline {
			l, err := openTesseraLog(ctx, parent, cfg.Tessera, published, pool)
			if err != nil {
				return err
			}
			log.Info("phase starting", "target", "tessera", "mode", mode, "dir", l.dir)
			watch := cfg.watch(ctx, l.checkpointSize)
			st, err := drive(ctx, cfg.Concurrency, unit, cfg.Warmup, cfg.Duration, cfg.Count, l.call)
			var cpLat *latency
			if err == nil {
				cpLat, err = toCheckpoint(ctx, watch, st.marks)
			}
			watch.stop() // before the log it reads goes
			l.close(ctx, log)
			if err != nil {
				return fmt.Errorf("baseline %s phase: %w", mode, err)
			}
			r := newResult("tessera", mode, unit, st)
			r.ToCheckpoint = cpLat
			log.Info("phase done", "target", "tessera", "mode", mode, "events", r.Events, "events_per_second", int(r.EventsPerSecond), "retries", r.Retries)
			rep.Results = append(rep.Results, r)
		}
	}
	rep.compare()
	if cfg.JSON {
		return rep.writeJSON(stdout)
	}
	return rep.writeTable(stdout)
}

// openTarget connects to every frontend, registers a signing key for
// -events signed, and checks each frontend takes one event of the kind
// before any phase starts.
func openTarget(ctx context.Context, cfg Config, log *slog.Logger) (*provlogTarget, error) {
	token, err := cfg.token()
	if err != nil {
		return nil, err
	}
	t := &provlogTarget{wait: provlogv1.WaitFor_WAIT_FOR_SEQUENCED}
	if cfg.Wait == "published" {
		t.wait = provlogv1.WaitFor_WAIT_FOR_PUBLISHED
	}
	for _, a := range cfg.addrs() {
		conn, err := dialProvlog(ctx, a, token)
		if err != nil {
			t.close()
			return nil, err
		}
		t.conns = append(t.conns, conn)
		t.clients = append(t.clients, provlogv1.NewLogServiceClient(conn))
	}
	kind := eventKind{name: cfg.Events}
	if kind.name == kindSigned {
		var id [4]byte
		if _, err := rand.Read(id[:]); err != nil {
			t.close()
			return nil, err
		}
		kind.keyID = "provbench-" + hex.EncodeToString(id[:])
		if kind.key, err = registerSigningKey(ctx, t.conns[0], kind.keyID); err != nil {
			t.close()
			return nil, err
		}
		log.Info("submitter key registered", "tenant", benchTenant, "key_id", kind.keyID)
	}
	if t.gen, err = newKindGenerator(cfg.EventSize, kind); err != nil {
		t.close()
		return nil, err
	}
	if err := t.probe(ctx); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}
