package lineage

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotWriter is returned by a Commit of a Shared index's store made
// while this process does not hold the writer lock.
var ErrNotWriter = errors.New("lineage: this process does not hold the shared index's writer lock")

// Shared is a lineage index in a MySQL table that several processes (the
// frontends of one log) open at once. At most one of them writes it: the
// holder of a MariaDB/MySQL named lock (GET_LOCK), taken on a connection
// of its own and held for as long as that connection lives. Every pass is
// committed on that same connection, after checking the lock is still
// its own, so a writer whose connection died (the process was killed, the
// database restarted) cannot commit: the lock went with the session.
//
// Run tries to take the lock every PollInterval. The process holding it
// indexes the log from the stored watermark, as Index.Run does; the others
// reload the watermark, digest and gap counters from the table, so their
// queries (which read the table) and Digest agree with the writer's,
// lagging it by at most one PollInterval. When the writer dies, another
// process takes the lock at its next try and continues from the
// watermark the last committed pass stored.
type Shared struct {
	ix      *Index
	store   *fencedStore
	log     *slog.Logger
	leader  atomic.Bool
	rebuild atomic.Bool
}

// OpenShared opens the shared index in table of the database dsn (a
// go-sql-driver/mysql DSN) over the log read from src. It does not write:
// the index starts at what the table holds, and Run catches it up once
// this process holds the writer lock. With rebuild set, the first time
// this process takes the lock it rebuilds the index from the log.
func OpenShared(ctx context.Context, dsn, table string, src Source, opts Options, rebuild bool) (*Shared, error) {
	st, err := OpenMySQLStore(ctx, dsn, table)
	if err != nil {
		return nil, err
	}
	ms := st.(*mysqlStore)
	var db string
	if err := ms.db.QueryRowContext(ctx, `SELECT COALESCE(DATABASE(), '')`).Scan(&db); err != nil {
		ms.Close()
		return nil, fmt.Errorf("couldn't read the lineage database's name: %w", err)
	}
	// Named locks are server-wide and at most 64 characters: one per
	// (database, table).
	h := sha256.Sum256([]byte(db + "\x00" + table))
	fs := &fencedStore{mysqlStore: ms, lock: "provlog_lineage_" + hex.EncodeToString(h[:16])}
	s := &Shared{ix: newIndex(fs, src, opts), store: fs}
	s.log = s.ix.log
	s.rebuild.Store(rebuild)
	if err := s.refresh(ctx); err != nil {
		ms.Close()
		return nil, err
	}
	return s, nil
}

// Index is the index: queries, Digest and Watermark.
func (s *Shared) Index() *Index { return s.ix }

// Writer says whether this process holds the writer lock now.
func (s *Shared) Writer() bool { return s.leader.Load() }

// Run takes the writer lock when it is free and indexes, or follows the
// writer, every PollInterval until ctx ends. It returns nil when ctx ends.
func (s *Shared) Run(ctx context.Context) error {
	t := time.NewTicker(s.ix.opts.PollInterval)
	defer t.Stop()
	for {
		s.step(ctx, true)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// CatchUp indexes up to the log's integrated size when this process is
// the writer, and otherwise reloads what the writer stored.
func (s *Shared) CatchUp(ctx context.Context) error {
	if s.leader.Load() {
		return s.ix.CatchUp(ctx)
	}
	return s.refresh(ctx)
}

// step is one round of Run: take the lock if free, then index or follow.
func (s *Shared) step(ctx context.Context, paced bool) {
	if !s.leader.Load() {
		ok, err := s.store.acquire(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("lineage: couldn't try the shared index's writer lock", "err", err)
		}
		if ok {
			if err := s.takeOver(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Error("lineage: taking over the shared index failed; will retry", "err", err)
				}
				s.store.release()
				return
			}
			s.leader.Store(true)
		}
	}
	if s.leader.Load() {
		if err := s.store.check(ctx); err != nil {
			s.leader.Store(false)
			s.store.release()
			if ctx.Err() == nil {
				s.log.Warn("lineage: lost the shared index's writer lock", "err", err)
			}
		} else {
			if err := s.ix.catchUp(ctx, paced); err != nil && ctx.Err() == nil {
				lvl := slog.LevelError
				if errors.Is(err, ErrIndexAhead) || errors.Is(err, ErrNotWriter) {
					lvl = slog.LevelWarn // our reader trails the writer that stored it
				}
				s.log.Log(ctx, lvl, "lineage: indexing the log failed; will retry", "err", err)
			}
			return
		}
	}
	if err := s.refresh(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("lineage: couldn't reload the shared index's state", "err", err)
	}
}

// takeOver starts writing: reload what the previous writer stored, and
// rebuild when asked or when the stored index has another format.
func (s *Shared) takeOver(ctx context.Context) error {
	if err := s.refresh(ctx); err != nil {
		return err
	}
	format, ok, err := s.ix.metaU64(ctx, metaFormat)
	if err != nil {
		return err
	}
	wm := s.ix.Watermark()
	s.log.Info("lineage: this process now writes the shared index", "watermark", wm)
	if s.rebuild.Load() || (ok && format != formatVersion) {
		s.log.Info("lineage: rebuilding the shared index from the log", "format", format, "want", formatVersion)
		if err := s.ix.Rebuild(ctx); err != nil {
			return err
		}
		s.rebuild.Store(false)
	}
	return nil
}

// refresh reloads the watermark, running digest and gap counters from the
// table. A pass commits all three with the watermark, and every pass moves
// the watermark, so reading the watermark again after the others and
// finding it unchanged means they belong together.
func (s *Shared) refresh(ctx context.Context) error {
	ix := s.ix
	ix.passMu.Lock()
	defer ix.passMu.Unlock()
	for range 10 {
		wm, sm, counts, err := ix.readMeta(ctx)
		if err != nil {
			return err
		}
		again, _, err := ix.metaU64(ctx, metaWatermark)
		if err != nil {
			return err
		}
		if again != wm {
			continue // a pass committed meanwhile
		}
		ix.mu.Lock()
		changed := ix.wm != wm
		ix.wm, ix.sum, ix.counts = wm, sm, counts
		ix.mu.Unlock()
		if changed {
			// The location cache says what is committed; another writer
			// may have wiped the index since it was filled.
			ix.locs.clear()
		}
		return nil
	}
	return errors.New("lineage: the shared index kept moving while its state was read")
}

// Close releases the writer lock and closes the table.
func (s *Shared) Close() error {
	s.leader.Store(false)
	s.store.release()
	return s.store.Close()
}

// fencedStore is the MySQL store whose Commits go through the connection
// that holds the writer lock, and fail without it.
type fencedStore struct {
	*mysqlStore
	lock string

	mu   sync.Mutex
	conn *sql.Conn // holds the lock; nil when not the writer
}

// acquire tries the lock without waiting.
func (f *fencedStore) acquire(ctx context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil {
		return true, nil
	}
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 0)`, f.lock).Scan(&got); err != nil {
		conn.Close()
		return false, err
	}
	if !got.Valid || got.Int64 != 1 {
		conn.Close()
		return false, nil
	}
	f.conn = conn
	return true, nil
}

// check confirms the lock is still held by our session.
func (f *fencedStore) check(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return ErrNotWriter
	}
	return holds(ctx, f.conn, f.lock)
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func holds(ctx context.Context, q queryRower, lock string) error {
	var mine sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT IS_USED_LOCK(?) = CONNECTION_ID()`, lock).Scan(&mine); err != nil {
		return fmt.Errorf("checking the writer lock: %w", err)
	}
	if !mine.Valid || mine.Int64 != 1 {
		return ErrNotWriter
	}
	return nil
}

// release gives the lock up (closing the session releases it too).
func (f *fencedStore) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.conn.ExecContext(ctx, `DO RELEASE_LOCK(?)`, f.lock)
	f.conn.Close()
	f.conn = nil
}

// Commit applies b in a transaction on the lock's connection, after
// checking the lock in that transaction.
func (f *fencedStore) Commit(ctx context.Context, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return ErrNotWriter
	}
	tx, err := f.conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("lineage store commit: %w", err)
	}
	defer tx.Rollback()
	if err := holds(ctx, tx, f.lock); err != nil {
		return err
	}
	if err := f.applyBatch(ctx, tx, b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("lineage store commit of %d operations: %w", b.Len(), err)
	}
	return nil
}
