package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/provlog/provlog/log/ledger"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"
)

// baselineOrigin names the throwaway log the baseline writes.
const baselineOrigin = "provbench.example/baseline"

// awaitPoll is how often the baseline polls for a published checkpoint
// under --wait published; provlogd's ledger polls at the same period.
const awaitPoll = 50 * time.Millisecond

// tesseraSettings are the tessera options of the baseline log. Set them to
// what provlogd runs with, so that both sides batch and publish alike.
type tesseraSettings struct {
	checkpointInterval time.Duration
	batchMaxSize       uint
	batchMaxAge        time.Duration
	// storage is posix or aws; for aws, awsCfg's DSN names the server
	// (each phase creates, then drops, a database of its own) and each
	// phase writes under its own prefix of awsCfg's bucket.
	storage string
	awsCfg  ledger.AWSConfig
	// cpuPerEvent is CPU the baseline spends before adding each entry: 0
	// for bare tessera, more to model a service in tessera's process
	// (burner).
	cpuPerEvent time.Duration
}

// leafPool is a fixed set of real provlog leaves the baseline appends over
// and over. Tessera without antispam does not deduplicate, so appending a
// leaf again costs it exactly what a new one would; encoding fresh leaves
// during the run would bill the encoder's CPU to bare tessera.
type leafPool struct {
	leaves [][]byte
	next   atomic.Uint64
	bytes  int // total size of the leaves
}

func newLeafPool(g *generator, n int) (*leafPool, error) {
	p := &leafPool{leaves: make([][]byte, n)}
	for i := range p.leaves {
		b, err := g.leaf(g.next())
		if err != nil {
			return nil, fmt.Errorf("couldn't make a baseline leaf: %w", err)
		}
		p.leaves[i] = b
		p.bytes += len(b)
	}
	return p, nil
}

func (p *leafPool) take() []byte {
	return p.leaves[(p.next.Add(1)-1)%uint64(len(p.leaves))]
}

func (p *leafPool) meanSize() int { return p.bytes / len(p.leaves) }

// tesseraLog is a bare tessera log in a fresh directory (posix), or a
// fresh database and bucket prefix (aws).
type tesseraLog struct {
	dir     string
	dropDB  func() error // aws: drops the phase's database
	add     tessera.AddFn
	awaiter *tessera.PublicationAwaiter // nil unless waiting for publication
	// readCheckpoint reads the published checkpoint.
	readCheckpoint func(ctx context.Context) ([]byte, error)
	shutdown       func(context.Context) error
	cancel         context.CancelFunc
	pool           *leafPool
	burn           burner // spent before each add: -baseline-cpu-per-event
}

// openTesseraLog creates a new log in a fresh directory under parent,
// signed by an ephemeral key.
func openTesseraLog(ctx context.Context, parent string, set tesseraSettings, published bool, pool *leafPool) (*tesseraLog, error) {
	dir, err := os.MkdirTemp(parent, "provbench-baseline-")
	if err != nil {
		return nil, fmt.Errorf("couldn't create baseline directory: %w", err)
	}
	skey, _, err := note.GenerateKey(rand.Reader, baselineOrigin)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("couldn't generate baseline signing key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("couldn't make baseline signer: %w", err)
	}
	// The appender's background work lives until close, not until the
	// caller's context ends, so close can still shut it down cleanly.
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) (*tesseraLog, error) {
		cancel()
		os.RemoveAll(dir)
		return nil, err
	}
	var driver tessera.Driver
	var dropDB func() error
	if set.storage == "aws" {
		var c ledger.AWSConfig
		c, dropDB, err = freshAWSLog(ctx, set.awsCfg, filepath.Base(dir))
		if err != nil {
			return fail(err)
		}
		if driver, err = ledger.NewAWSDriver(bctx, c, nil); err != nil {
			dropDB()
			return fail(err)
		}
		dir = fmt.Sprintf("%s (database %s, bucket %s, prefix %s)", dir, c.DSN[strings.LastIndex(c.DSN, "/")+1:], c.Bucket, c.BucketPrefix)
	} else if driver, err = posix.New(bctx, posix.Config{Path: dir}); err != nil {
		return fail(fmt.Errorf("couldn't create posix storage: %w", err))
	}
	appender, shutdown, reader, err := tessera.NewAppender(bctx, driver, tessera.NewAppendOptions().
		WithCheckpointSigner(signer).
		WithCheckpointInterval(set.checkpointInterval).
		WithBatching(set.batchMaxSize, set.batchMaxAge))
	if err != nil {
		return fail(fmt.Errorf("couldn't start tessera appender: %w", err))
	}
	l := &tesseraLog{dir: dir, dropDB: dropDB, add: appender.Add, shutdown: shutdown, cancel: cancel, pool: pool, readCheckpoint: reader.ReadCheckpoint,
		burn: newBurner(set.cpuPerEvent)}
	if published {
		l.awaiter = tessera.NewPublicationAwaiter(bctx, reader.ReadCheckpoint, awaitPoll)
	}
	return l, nil
}

// close shuts the appender down (which waits for a checkpoint covering
// every acknowledged entry) and removes the log's directory.
func (l *tesseraLog) close(ctx context.Context, log *slog.Logger) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.shutdown(sctx); err != nil {
		log.Warn("baseline log did not shut down cleanly", "dir", l.dir, "err", err)
	}
	l.cancel()
	if l.dropDB != nil {
		if err := l.dropDB(); err != nil {
			log.Warn("couldn't drop the baseline database", "err", err)
		}
		l.dir = strings.Fields(l.dir)[0]
	}
	if err := os.RemoveAll(l.dir); err != nil {
		log.Warn("couldn't remove baseline log", "dir", l.dir, "err", err)
	}
}

// call adds n leaves, then waits for all of them: the same shape as one
// AppendBatch of n events (or one Append when n is 1).
func (l *tesseraLog) call(ctx context.Context, _, n int, st *workerStats, stopAt time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	futures := make([]tessera.IndexFuture, n)
	for i := range futures {
		l.burn.spend()
		futures[i] = l.add(ctx, tessera.NewEntry(l.pool.take()))
	}
	for _, f := range futures {
		var b backoff
		for {
			var idx tessera.Index
			var err error
			if l.awaiter != nil {
				idx, _, err = l.awaiter.Await(ctx, f)
			} else {
				idx, err = f()
			}
			if err == nil {
				st.events++
				st.sequenced(idx.Index)
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, tessera.ErrPushback) {
				return fmt.Errorf("tessera add: %w", err)
			}
			if !time.Now().Before(stopAt) {
				st.abandoned++
				break
			}
			st.retries++
			if err := b.wait(ctx); err != nil {
				return err
			}
			f = l.add(ctx, tessera.NewEntry(l.pool.take()))
		}
	}
	return nil
}

// freshAWSLog creates a database named after name on the server of
// base.DSN and returns base pointed at it, under the bucket prefix name,
// with a function that drops the database. The objects stay in the bucket.
func freshAWSLog(ctx context.Context, base ledger.AWSConfig, name string) (ledger.AWSConfig, func() error, error) {
	cfg, err := mysql.ParseDSN(base.DSN)
	if err != nil {
		return base, nil, fmt.Errorf("bad -baseline-mysql-dsn: %w", err)
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return base, nil, err
	}
	dbName := strings.NewReplacer("-", "_").Replace(name)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
		db.Close()
		return base, nil, fmt.Errorf("couldn't create the baseline database: %w", err)
	}
	cfg.DBName = dbName
	c := base
	c.DSN, c.BucketPrefix = cfg.FormatDSN(), name
	return c, func() error {
		defer db.Close()
		_, err := db.Exec("DROP DATABASE " + dbName)
		return err
	}, nil
}
