package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// mysqlStore is the indexStore of the aws storage, in the log's database,
// shared by every frontend of the log. Its unique key on (tenant, event id)
// is what makes idempotency hold across frontends: before appending, a
// frontend inserts a claim row for the key; a second frontend's insert of
// the same key fails, and it waits for the first one's index instead of
// appending again.
//
// Tables:
//
//	provlog_dedupe(k PRIMARY KEY, idx NULL until known, leaf_hash, digest, owner, claimed_at)
//	provlog_leaves(leaf_hash PRIMARY KEY, idx)
//	provlog_index_meta(id=0, watermark)
//
// Every frontend's follower writes the records it derives from the log;
// they derive the same ones, so the writes are idempotent upserts where the
// lowest index wins, and the watermark only grows (GREATEST).
type mysqlStore struct {
	db    *sql.DB
	owner string        // this process, in claims
	lease time.Duration // claimLease; shorter in tests
}

// claimLease is how old an unsettled claim must be before another frontend
// may check whether its owner died, and take it over. A frontend settles
// its claim as soon as tessera has sequenced the entry (well under a
// second), so only a crash leaves one behind.
const claimLease = 30 * time.Second

func openMySQLIndexStore(ctx context.Context, dsn string, maxConns int) (*mysqlStore, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("bad MySQL DSN: %w", err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("couldn't open the index database: %w", err)
	}
	if maxConns <= 0 {
		maxConns = 32
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS provlog_dedupe (
			k VARBINARY(600) NOT NULL PRIMARY KEY,
			idx BIGINT UNSIGNED NULL,
			leaf_hash BINARY(32) NULL,
			digest BINARY(32) NOT NULL,
			owner VARBINARY(64) NULL,
			claimed_at TIMESTAMP(6) NULL
		) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS provlog_leaves (
			leaf_hash BINARY(32) NOT NULL PRIMARY KEY,
			idx BIGINT UNSIGNED NOT NULL
		) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS provlog_index_meta (
			id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
			watermark BIGINT UNSIGNED NOT NULL
		) ENGINE=InnoDB`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("couldn't create the index tables: %w", err)
		}
	}
	var id [8]byte
	rand.Read(id[:])
	return &mysqlStore{db: db, owner: hex.EncodeToString(id[:]), lease: claimLease}, nil
}

// queryTimeout bounds each index query: a database that does not answer
// fails the append (Unavailable) rather than hanging it.
const queryTimeout = 10 * time.Second

func (s *mysqlStore) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), queryTimeout)
}

// LookupMany looks the keys up one by one: the frontends claim keys
// through claimer instead, so this is not on the append path.
func (s *mysqlStore) LookupMany(keys []string) ([]*record, error) {
	found := make([]*record, len(keys))
	for i, k := range keys {
		r, ok, err := s.Lookup(k)
		if err != nil {
			return nil, err
		}
		if ok {
			found[i] = &r
		}
	}
	return found, nil
}

func (s *mysqlStore) Lookup(key string) (record, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var r record
	var lh, dg []byte
	err := s.db.QueryRowContext(ctx, `SELECT idx, leaf_hash, digest FROM provlog_dedupe WHERE k = ? AND idx IS NOT NULL`, []byte(key)).Scan(&r.Index, &lh, &dg)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("%w: index lookup: %w", ErrUnavailable, err)
	}
	if len(lh) != 32 || len(dg) != 32 {
		return record{}, false, fmt.Errorf("corrupt index record for %q", key)
	}
	r.Key = key
	copy(r.LeafHash[:], lh)
	copy(r.Digest[:], dg)
	return r, true, nil
}

func (s *mysqlStore) LookupLeaf(hash [32]byte) (uint64, bool, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var idx uint64
	err := s.db.QueryRowContext(ctx, `SELECT idx FROM provlog_leaves WHERE leaf_hash = ?`, hash[:]).Scan(&idx)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: leaf lookup: %w", ErrUnavailable, err)
	}
	return idx, true, nil
}

func (s *mysqlStore) Watermark() (uint64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	var wm uint64
	err := s.db.QueryRowContext(ctx, `SELECT watermark FROM provlog_index_meta WHERE id = 0`).Scan(&wm)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading watermark: %w", err)
	}
	return wm, nil
}

// commitChunk bounds the rows of one multi-row statement.
const commitChunk = 500

func (s *mysqlStore) Commit(recs []record, watermark uint64) error {
	// Lowest index per key and per leaf hash first, then in key order, so
	// that followers of several frontends lock rows in the same order.
	byKey := make(map[string]record, len(recs))
	for _, r := range recs {
		if p, ok := byKey[r.Key]; !ok || r.Index < p.Index {
			byKey[r.Key] = r
		}
	}
	rows := make([]record, 0, len(byKey))
	for _, r := range byKey {
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Key < rows[j].Key })
	leaves := make([]record, 0, len(recs))
	seen := make(map[[32]byte]bool, len(recs))
	for _, r := range recs { // recs are in index order: first is lowest
		if !seen[r.LeafHash] {
			seen[r.LeafHash] = true
			leaves = append(leaves, r)
		}
	}
	sort.Slice(leaves, func(i, j int) bool { return string(leaves[i].LeafHash[:]) < string(leaves[j].LeafHash[:]) })

	// Each chunk is its own short transaction, in READ COMMITTED (no gap
	// locks), so that the claims of appends are not held up behind a
	// follower's pass: the records are idempotent upserts, and the
	// watermark goes last, so a crash in between only means deriving
	// them again.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exec := func(q string, args []any) error {
		return retryDeadlock(func() error {
			tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			return tx.Commit()
		})
	}
	for i := 0; i < len(rows); i += commitChunk {
		part := rows[i:min(len(rows), i+commitChunk)]
		args := make([]any, 0, 4*len(part))
		for _, r := range part {
			args = append(args, []byte(r.Key), r.Index, r.LeafHash[:], r.Digest[:])
		}
		if err := exec(upsertDedupe(len(part)), args); err != nil {
			return fmt.Errorf("committing index records: %w", err)
		}
	}
	for i := 0; i < len(leaves); i += commitChunk {
		part := leaves[i:min(len(leaves), i+commitChunk)]
		args := make([]any, 0, 2*len(part))
		for _, r := range part {
			args = append(args, r.LeafHash[:], r.Index)
		}
		q := `INSERT INTO provlog_leaves (leaf_hash, idx) VALUES ` + placeholders(len(part), 2) + `
			ON DUPLICATE KEY UPDATE idx = LEAST(idx, VALUES(idx))`
		if err := exec(q, args); err != nil {
			return fmt.Errorf("committing leaf records: %w", err)
		}
	}
	if err := exec(`INSERT INTO provlog_index_meta (id, watermark) VALUES (0, ?)
		ON DUPLICATE KEY UPDATE watermark = GREATEST(watermark, VALUES(watermark))`, []any{watermark}); err != nil {
		return fmt.Errorf("committing watermark %d: %w", watermark, err)
	}
	return nil
}

// claimState is what Claim found.
type claimState int

const (
	// claimed: the key is ours to append; Settle or Unclaim it.
	claimed claimState = iota
	// claimDone: the key is in the log; rec says where.
	claimDone
	// claimBusy: another frontend holds an unsettled claim on the key.
	claimBusy
)

// claimInfo describes another frontend's unsettled claim.
type claimInfo struct {
	owner string
	age   time.Duration // by the database's clock
	stale bool          // older than the lease
}

// Claim reserves key for this process, unless the log already holds it or
// another frontend has reserved it.
func (s *mysqlStore) Claim(ctx context.Context, key string, digest [32]byte) (claimState, record, claimInfo, error) {
	out, err := s.ClaimMany(ctx, []string{key}, [][32]byte{digest})
	if err != nil {
		return 0, record{}, claimInfo{}, err
	}
	return out[0].state, out[0].rec, out[0].info, nil
}

// claimOutcome is what ClaimMany found for one key.
type claimOutcome struct {
	state claimState
	rec   record    // claimDone
	info  claimInfo // claimBusy
}

// ClaimMany claims keys (distinct, none of them claimed by this process
// already) in two statements, whatever their number: an INSERT IGNORE of
// every claim, then a read of every row. A row this process owns with no
// index is a claim it just took.
func (s *mysqlStore) ClaimMany(ctx context.Context, keys []string, digests [][32]byte) ([]claimOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	ins := make([]any, 0, 3*len(keys))
	sel := make([]any, 0, len(keys))
	for i, k := range keys {
		ins = append(ins, []byte(k), digests[i][:], s.owner)
		sel = append(sel, []byte(k))
	}
	q := `INSERT IGNORE INTO provlog_dedupe (k, digest, owner, claimed_at) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?,NOW(6)),", len(keys)), ",")
	if _, err := s.db.ExecContext(ctx, q, ins...); err != nil {
		return nil, fmt.Errorf("%w: claiming event ids: %w", ErrUnavailable, err)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT k, idx, leaf_hash, digest, owner, TIMESTAMPDIFF(MICROSECOND, claimed_at, NOW(6))
		FROM provlog_dedupe WHERE k IN (`+strings.TrimSuffix(strings.Repeat("?,", len(keys)), ",")+`)`, sel...)
	if err != nil {
		return nil, fmt.Errorf("%w: reading claims: %w", ErrUnavailable, err)
	}
	defer rows.Close()
	found := make(map[string]claimOutcome, len(keys))
	for rows.Next() {
		var (
			k, lh, dg []byte
			idx       sql.NullInt64
			owner     sql.NullString
			ageUS     sql.NullInt64
		)
		if err := rows.Scan(&k, &idx, &lh, &dg, &owner, &ageUS); err != nil {
			return nil, fmt.Errorf("%w: reading claims: %w", ErrUnavailable, err)
		}
		switch {
		case idx.Valid:
			r := record{Key: string(k), Index: uint64(idx.Int64)}
			copy(r.LeafHash[:], lh)
			copy(r.Digest[:], dg)
			found[string(k)] = claimOutcome{state: claimDone, rec: r}
		case owner.String == s.owner:
			found[string(k)] = claimOutcome{state: claimed}
		default:
			age := time.Duration(ageUS.Int64) * time.Microsecond
			found[string(k)] = claimOutcome{state: claimBusy, info: claimInfo{owner: owner.String, age: age, stale: age > s.lease}}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: reading claims: %w", ErrUnavailable, err)
	}
	out := make([]claimOutcome, len(keys))
	for i, k := range keys {
		o, ok := found[k]
		if !ok {
			// Dropped between the two statements: busy, the caller
			// polls and claims again.
			o = claimOutcome{state: claimBusy}
		}
		out[i] = o
	}
	return out, nil
}

// Settle records the index of our claimed key, unless the follower already
// did. It reports whether the row still was ours or recorded at rec.Index.
func (s *mysqlStore) Settle(ctx context.Context, rec record) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
	defer cancel()
	_, err := s.db.ExecContext(ctx, `UPDATE provlog_dedupe SET idx = ?, leaf_hash = ?, digest = ? WHERE k = ? AND owner = ? AND idx IS NULL`,
		rec.Index, rec.LeafHash[:], rec.Digest[:], []byte(rec.Key), s.owner)
	if err != nil {
		// The follower records it from the log anyway.
		return fmt.Errorf("settling claim: %w", err)
	}
	return nil
}

// SettleMany records the indexes of sequenced entries whose keys this
// process claimed, in one statement. It writes what the follower would: a
// row keeps its lowest index.
func (s *mysqlStore) SettleMany(ctx context.Context, recs []record) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
	defer cancel()
	sort.Slice(recs, func(i, j int) bool { return recs[i].Key < recs[j].Key })
	return retryDeadlock(func() error {
		for i := 0; i < len(recs); i += commitChunk {
			part := recs[i:min(len(recs), i+commitChunk)]
			args := make([]any, 0, 4*len(part))
			for _, r := range part {
				args = append(args, []byte(r.Key), r.Index, r.LeafHash[:], r.Digest[:])
			}
			if _, err := s.db.ExecContext(ctx, upsertDedupe(len(part)), args...); err != nil {
				return fmt.Errorf("settling claims: %w", err)
			}
		}
		return nil
	})
}

// upsertDedupe is the statement that records n (key, index, leaf hash,
// digest) rows: the row keeps its lowest index; a claim (idx NULL) or a
// higher index takes the new one. idx is assigned last, as MySQL evaluates
// the assignments left to right.
func upsertDedupe(n int) string {
	return `INSERT INTO provlog_dedupe (k, idx, leaf_hash, digest) VALUES ` + placeholders(n, 4) + `
		ON DUPLICATE KEY UPDATE
		leaf_hash = IF(idx IS NULL OR VALUES(idx) < idx, VALUES(leaf_hash), leaf_hash),
		digest = IF(idx IS NULL OR VALUES(idx) < idx, VALUES(digest), digest),
		idx = IF(idx IS NULL OR VALUES(idx) < idx, VALUES(idx), idx)`
}

// Unclaim drops our claim after a failed append.
func (s *mysqlStore) Unclaim(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), queryTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM provlog_dedupe WHERE k = ? AND owner = ? AND idx IS NULL`, []byte(key), s.owner); err != nil {
		return fmt.Errorf("dropping claim: %w", err)
	}
	return nil
}

// DropStale drops another frontend's unsettled claim, if it is still c's
// owner's and older than the lease. The caller has made sure that the claim's entry is
// not in the log (see Ledger.waitRemote).
func (s *mysqlStore) DropStale(ctx context.Context, key string, c claimInfo) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	res, err := s.db.ExecContext(ctx, `DELETE FROM provlog_dedupe WHERE k = ? AND owner = ? AND idx IS NULL
		AND claimed_at < NOW(6) - INTERVAL ? MICROSECOND`, []byte(key), c.owner, s.lease.Microseconds())
	if err != nil {
		return false, fmt.Errorf("%w: dropping stale claim: %w", ErrUnavailable, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func (s *mysqlStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing index database: %w", err)
	}
	return nil
}

func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// retryDeadlock retries f when InnoDB chose it as a deadlock victim or a
// lock wait timed out: followers of several frontends write the same rows.
func retryDeadlock(f func() error) error {
	var err error
	for attempt := range 5 {
		if err = f(); err == nil {
			return nil
		}
		var me *mysql.MySQLError
		if !errors.As(err, &me) || (me.Number != 1213 && me.Number != 1205) {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return err
}
