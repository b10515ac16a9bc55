package lineage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlStore is a Store in one table of a MySQL-compatible database (tested
// on MariaDB 10.11): k VARBINARY PRIMARY KEY, v LONGBLOB. VARBINARY compares
// as unsigned bytes, the order the Store contract asks for; a Batch is one
// InnoDB transaction.
type mysqlStore struct {
	db    *sql.DB
	table string
}

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// OpenMySQLStore opens (creating it if needed) the lineage store in table
// of the database dsn (a go-sql-driver/mysql DSN).
func OpenMySQLStore(ctx context.Context, dsn, table string) (Store, error) {
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("lineage store table %q: want [a-z][a-z0-9_]*", table)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("bad MySQL DSN: %w", err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("couldn't open the lineage database: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	// 3072 bytes is InnoDB's longest index key.
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		k VARBINARY(3072) NOT NULL PRIMARY KEY,
		v LONGBLOB NOT NULL
	) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't create lineage table %s: %w", table, err)
	}
	return &mysqlStore{db: db, table: table}, nil
}

func (s *mysqlStore) Get(ctx context.Context, key []byte) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT v FROM `+s.table+` WHERE k = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lineage store get: %w", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// manyChunk bounds the keys or prefixes of one query of getMany and
// anyMany: two placeholders a prefix, far below the protocol's 65535, and
// keys of at most 3072 bytes stay well under max_allowed_packet.
const manyChunk = 500

// getMany reads keys with one SELECT … WHERE k IN (…) per manyChunk keys;
// found owns what it is given.
func (s *mysqlStore) getMany(ctx context.Context, keys [][]byte, found func(key, value []byte)) error {
	for len(keys) > 0 {
		n := min(len(keys), manyChunk)
		args := make([]any, n)
		for i, k := range keys[:n] {
			args[i] = k
		}
		keys = keys[n:]
		q := `SELECT k, v FROM ` + s.table + ` WHERE k IN (` + strings.TrimSuffix(strings.Repeat("?,", n), ",") + `)`
		if err := s.rows(ctx, q, args, func(rows *sql.Rows) error {
			var k, v []byte
			if err := rows.Scan(&k, &v); err != nil {
				return err
			}
			found(k, v)
			return nil
		}); err != nil {
			return fmt.Errorf("lineage store get of %d keys: %w", n, err)
		}
	}
	return nil
}

// anyMany probes prefixes with one query per manyChunk of them: a UNION
// ALL of one LIMIT 1 range read per prefix, each answering its position.
func (s *mysqlStore) anyMany(ctx context.Context, prefixes [][]byte) ([]bool, error) {
	out := make([]bool, len(prefixes))
	for base := 0; base < len(prefixes); base += manyChunk {
		chunk := prefixes[base:min(len(prefixes), base+manyChunk)]
		var q strings.Builder
		args := make([]any, 0, 2*len(chunk))
		for i, p := range chunk {
			if i > 0 {
				q.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&q, "(SELECT %d FROM %s WHERE k >= ?", i, s.table)
			args = append(args, p)
			if end := prefixEnd(p); end != nil {
				q.WriteString(" AND k < ?")
				args = append(args, end)
			}
			q.WriteString(" LIMIT 1)")
		}
		if err := s.rows(ctx, q.String(), args, func(rows *sql.Rows) error {
			var i int
			if err := rows.Scan(&i); err != nil {
				return err
			}
			if i < 0 || i >= len(chunk) {
				return fmt.Errorf("prefix probe answered %d of %d", i, len(chunk))
			}
			out[base+i] = true
			return nil
		}); err != nil {
			return nil, fmt.Errorf("lineage store probe of %d prefixes: %w", len(chunk), err)
		}
	}
	return out, nil
}

// rows runs q and calls fn for each row.
func (s *mysqlStore) rows(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanPage is how many rows one query of a Scan reads.
const scanPage = 256

func (s *mysqlStore) Scan(ctx context.Context, start, end []byte, reverse bool, fn func(key, value []byte) error) error {
	if start == nil {
		start = []byte{}
	}
	// Page by the last key seen; each page is its own query, so a Scan is
	// not a snapshot (the contract allows that).
	var last []byte
	for {
		var conds []string
		var args []any
		conds, args = append(conds, "k >= ?"), append(args, start)
		if end != nil {
			conds, args = append(conds, "k < ?"), append(args, end)
		}
		order := "ASC"
		if last != nil {
			if reverse {
				conds, args = append(conds, "k < ?"), append(args, last)
			} else {
				conds, args = append(conds, "k > ?"), append(args, last)
			}
		}
		if reverse {
			order = "DESC"
		}
		q := `SELECT k, v FROM ` + s.table + ` WHERE ` + strings.Join(conds, " AND ") + ` ORDER BY k ` + order + fmt.Sprintf(" LIMIT %d", scanPage)
		n, stop, err := s.scanPage(ctx, q, args, fn, &last)
		if err != nil || stop || n < scanPage {
			return err
		}
	}
}

func (s *mysqlStore) scanPage(ctx context.Context, q string, args []any, fn func(key, value []byte) error, last *[]byte) (n int, stop bool, err error) {
	var fnErr error // fn's, returned as it is
	err = s.rows(ctx, q, args, func(rows *sql.Rows) error {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		n++
		*last = k
		fnErr = fn(k, v)
		return fnErr
	})
	switch {
	case errors.Is(fnErr, ErrStopScan):
		return n, true, nil
	case fnErr != nil:
		return n, true, fnErr
	case err != nil:
		return n, false, fmt.Errorf("lineage store scan: %w", err)
	}
	return n, false, nil
}

// setChunk bounds the bytes of one multi-row INSERT, well under the
// server's max_allowed_packet (16 MiB by default on MariaDB 10.11).
const setChunk = 4 << 20

func (s *mysqlStore) Commit(ctx context.Context, b *Batch) error {
	if b.Len() == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("lineage store commit: %w", err)
	}
	defer tx.Rollback()
	if err := s.applyBatch(ctx, tx, b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("lineage store commit of %d operations: %w", b.Len(), err)
	}
	return nil
}

// applyBatch writes the operations of b in tx.
func (s *mysqlStore) applyBatch(ctx context.Context, tx *sql.Tx, b *Batch) error {
	var err error
	// Runs of consecutive Sets go in multi-row upserts; a later row for
	// the same key overrides an earlier one, as the Batch says.
	var sets []Op
	size := 0
	flush := func() error {
		if len(sets) == 0 {
			return nil
		}
		args := make([]any, 0, 2*len(sets))
		for _, op := range sets {
			v := op.Value
			if v == nil {
				v = []byte{}
			}
			args = append(args, op.Key, v)
		}
		q := `INSERT INTO ` + s.table + ` (k, v) VALUES ` + strings.TrimSuffix(strings.Repeat("(?,?),", len(sets)), ",") + ` ON DUPLICATE KEY UPDATE v = VALUES(v)`
		sets, size = sets[:0], 0
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	for _, op := range b.Ops {
		switch op.Kind {
		case OpSet:
			if size+len(op.Key)+len(op.Value) > setChunk || len(sets) >= 1000 {
				if err := flush(); err != nil {
					return fmt.Errorf("lineage store commit: %w", err)
				}
			}
			sets = append(sets, op)
			size += len(op.Key) + len(op.Value)
			continue
		}
		if err := flush(); err != nil {
			return fmt.Errorf("lineage store commit: %w", err)
		}
		switch op.Kind {
		case OpDelete:
			_, err = tx.ExecContext(ctx, `DELETE FROM `+s.table+` WHERE k = ?`, op.Key)
		case OpDeleteRange:
			if op.End == nil {
				_, err = tx.ExecContext(ctx, `DELETE FROM `+s.table+` WHERE k >= ?`, op.Key)
			} else {
				_, err = tx.ExecContext(ctx, `DELETE FROM `+s.table+` WHERE k >= ? AND k < ?`, op.Key, op.End)
			}
		default:
			err = fmt.Errorf("unknown batch operation %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("lineage store commit: %w", err)
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("lineage store commit: %w", err)
	}
	return nil
}

func (s *mysqlStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing lineage database: %w", err)
	}
	return nil
}
