package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// mysqlPersistence is the state in one row of a MySQL-compatible database
// (tested on MariaDB 10.11), shared by every frontend given the same DSN:
//
//	provlog_auth_state   id = 1, version, doc (the auth.json document)
//
// A Save is an UPDATE conditioned on the version (an INSERT IGNORE of
// version 1 for the first), durable at commit; the same compare-and-swap
// as the vault's keyring.
type mysqlPersistence struct {
	db *sql.DB
}

// dbErr wraps a failure of the database with what failed, and with
// ErrUnavailable when the server did not answer (no MySQL error number:
// a refused or broken connection, a timeout), which a retry may cure.
func dbErr(what string, err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
}

// OpenMySQLPersistence opens, creating its table if needed, the auth
// state in the database dsn (a go-sql-driver/mysql DSN).
func OpenMySQLPersistence(ctx context.Context, dsn string) (Persistence, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("bad MySQL DSN: %w", err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("couldn't open the auth database: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS provlog_auth_state (
			id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
			version BIGINT UNSIGNED NOT NULL,
			doc LONGBLOB NOT NULL
		) ENGINE=InnoDB`); err != nil {
		db.Close()
		return nil, dbErr("couldn't create the auth table", err)
	}
	return &mysqlPersistence{db: db}, nil
}

func (p *mysqlPersistence) Load(ctx context.Context) ([]byte, uint64, error) {
	var doc []byte
	var ver uint64
	err := p.db.QueryRowContext(ctx, `SELECT doc, version FROM provlog_auth_state WHERE id = 1`).Scan(&doc, &ver)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, dbErr("couldn't read the auth state", err)
	}
	return doc, ver, nil
}

func (p *mysqlPersistence) Version(ctx context.Context) (uint64, error) {
	var ver uint64
	err := p.db.QueryRowContext(ctx, `SELECT version FROM provlog_auth_state WHERE id = 1`).Scan(&ver)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, dbErr("couldn't read the auth state's version", err)
	}
	return ver, nil
}

func (p *mysqlPersistence) Save(ctx context.Context, doc []byte, prev uint64) (uint64, error) {
	var res sql.Result
	var err error
	if prev == 0 {
		res, err = p.db.ExecContext(ctx, `INSERT IGNORE INTO provlog_auth_state (id, version, doc) VALUES (1, 1, ?)`, doc)
	} else {
		res, err = p.db.ExecContext(ctx, `UPDATE provlog_auth_state SET doc = ?, version = version + 1 WHERE id = 1 AND version = ?`, doc, prev)
	}
	if err != nil {
		return 0, dbErr("couldn't write the auth state", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbErr("couldn't write the auth state", err)
	}
	if n != 1 {
		return 0, ErrStateChanged
	}
	return prev + 1, nil
}

func (p *mysqlPersistence) Shared() bool { return true }

func (p *mysqlPersistence) Close() error {
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("closing the auth database: %w", err)
	}
	return nil
}
