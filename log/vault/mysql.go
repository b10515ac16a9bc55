package vault

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// mysqlStore is a Store in two tables of a MySQL-compatible database
// (tested on MariaDB 10.11), shared by every process given the same DSN:
//
//	provlog_vault_values   k VARBINARY(3072) PRIMARY KEY, v LONGBLOB
//	provlog_vault_keyring  id = 1, version, doc (the keyring JSON)
//
// VARBINARY compares as unsigned bytes, the order Scan promises; a Write
// is one InnoDB transaction, durable at commit (innodb_flush_log_at_trx_commit=1,
// the default); the keyring is replaced by an UPDATE conditioned on its
// version.
type mysqlStore struct {
	db *sql.DB
}

// OpenMySQLStore opens, creating its tables if needed, the vault store in
// the database dsn (a go-sql-driver/mysql DSN).
func OpenMySQLStore(ctx context.Context, dsn string) (Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("bad MySQL DSN: %w", err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("couldn't open the vault database: %w", err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	for _, q := range []string{
		// 3072 bytes is InnoDB's longest index key.
		`CREATE TABLE IF NOT EXISTS provlog_vault_values (
			k VARBINARY(3072) NOT NULL PRIMARY KEY,
			v LONGBLOB NOT NULL
		) ENGINE=InnoDB ROW_FORMAT=DYNAMIC`,
		`CREATE TABLE IF NOT EXISTS provlog_vault_keyring (
			id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
			version BIGINT UNSIGNED NOT NULL,
			doc LONGBLOB NOT NULL
		) ENGINE=InnoDB`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("couldn't create the vault tables: %w", err)
		}
	}
	return &mysqlStore{db: db}, nil
}

func (s *mysqlStore) ReadKeyring(ctx context.Context) ([]byte, uint64, bool, error) {
	var doc []byte
	var ver uint64
	err := s.db.QueryRowContext(ctx, `SELECT doc, version FROM provlog_vault_keyring WHERE id = 1`).Scan(&doc, &ver)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("couldn't read the vault keyring: %w", err)
	}
	return doc, ver, true, nil
}

func (s *mysqlStore) KeyringVersion(ctx context.Context) (uint64, error) {
	var ver uint64
	err := s.db.QueryRowContext(ctx, `SELECT version FROM provlog_vault_keyring WHERE id = 1`).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("couldn't read the vault keyring's version: %w", err)
	}
	return ver, nil
}

func (s *mysqlStore) WriteKeyring(ctx context.Context, doc []byte, prev uint64) (uint64, error) {
	var res sql.Result
	var err error
	if prev == 0 {
		res, err = s.db.ExecContext(ctx, `INSERT IGNORE INTO provlog_vault_keyring (id, version, doc) VALUES (1, 1, ?)`, doc)
	} else {
		res, err = s.db.ExecContext(ctx, `UPDATE provlog_vault_keyring SET doc = ?, version = version + 1 WHERE id = 1 AND version = ?`, doc, prev)
	}
	if err != nil {
		return 0, fmt.Errorf("couldn't write the vault keyring: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("couldn't write the vault keyring: %w", err)
	}
	if n != 1 {
		return 0, ErrKeyringChanged
	}
	return prev + 1, nil
}

func (s *mysqlStore) Get(ctx context.Context, key []byte) ([]byte, bool, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT v FROM provlog_vault_values WHERE k = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("couldn't read vault: %w", err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// scanPage is how many rows one query of a Scan reads; a page is read
// whole before fn sees it, so fn may query the store.
const scanPage = 256

type kv struct{ k, v []byte }

func (s *mysqlStore) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	end := prefixEnd(prefix)
	from, incl := append([]byte{}, prefix...), true
	for {
		conds, args := []string{"k > ?"}, []any{from}
		if incl {
			conds[0] = "k >= ?"
		}
		if end != nil {
			conds, args = append(conds, "k < ?"), append(args, end)
		}
		rows, err := s.db.QueryContext(ctx, `SELECT k, v FROM provlog_vault_values WHERE `+strings.Join(conds, " AND ")+fmt.Sprintf(` ORDER BY k LIMIT %d`, scanPage), args...)
		if err != nil {
			return fmt.Errorf("vault scan: %w", err)
		}
		var page []kv
		for rows.Next() {
			var p kv
			if err := rows.Scan(&p.k, &p.v); err != nil {
				rows.Close()
				return fmt.Errorf("vault scan: %w", err)
			}
			page = append(page, p)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("vault scan: %w", err)
		}
		for _, p := range page {
			if err := fn(p.k, p.v); err != nil {
				return err
			}
		}
		if len(page) < scanPage {
			return nil
		}
		from, incl = page[len(page)-1].k, false
	}
}

// setChunk bounds the rows of one multi-row INSERT.
const setChunk = 500

func (s *mysqlStore) Write(ctx context.Context, ops []Op) error {
	if len(ops) == 0 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := s.write(ctx, ops)
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1213 && attempt < 3 { // ER_LOCK_DEADLOCK: InnoDB rolled it back
			continue
		}
		return err
	}
}

func (s *mysqlStore) write(ctx context.Context, ops []Op) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vault write: %w", err)
	}
	defer tx.Rollback()
	var sets []Op
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
		q := `INSERT INTO provlog_vault_values (k, v) VALUES ` + strings.TrimSuffix(strings.Repeat("(?,?),", len(sets)), ",") + ` ON DUPLICATE KEY UPDATE v = VALUES(v)`
		sets = sets[:0]
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	for _, op := range ops {
		if op.Kind == OpSet {
			if len(sets) >= setChunk {
				if err := flush(); err != nil {
					return fmt.Errorf("vault write: %w", err)
				}
			}
			sets = append(sets, op)
			continue
		}
		if err := flush(); err != nil {
			return fmt.Errorf("vault write: %w", err)
		}
		switch op.Kind {
		case OpInsert:
			v := op.Value
			if v == nil {
				v = []byte{}
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO provlog_vault_values (k, v) VALUES (?, ?)`, op.Key, v)
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1062 { // ER_DUP_ENTRY
				return ErrExists
			}
		case OpDelete:
			_, err = tx.ExecContext(ctx, `DELETE FROM provlog_vault_values WHERE k = ?`, op.Key)
		case OpDeleteRange:
			if op.End == nil {
				_, err = tx.ExecContext(ctx, `DELETE FROM provlog_vault_values WHERE k >= ?`, op.Key)
			} else {
				_, err = tx.ExecContext(ctx, `DELETE FROM provlog_vault_values WHERE k >= ? AND k < ?`, op.Key, op.End)
			}
		default:
			err = fmt.Errorf("unknown operation %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("vault write: %w", err)
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("vault write: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault write of %d operations: %w", len(ops), err)
	}
	return nil
}

// Reclaim does nothing: InnoDB reuses the pages of deleted rows, and
// erased values are unreadable anyway once their data key is shredded.
func (s *mysqlStore) Reclaim(ctx context.Context, lo, hi []byte) error { return nil }

func (s *mysqlStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing the vault database: %w", err)
	}
	return nil
}
