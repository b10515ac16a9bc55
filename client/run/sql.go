package run

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"strconv"
	"strings"

	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// DB records reads and writes of named datasets of one database. URI is
// the database's URI ("postgres://warehouse/analytics"); a dataset's URI is
// URI + "/" + dataset name.
type DB struct {
	*sql.DB
	URI string
	// Classification labels the datasets' assets.
	Classification string
}

// DatasetURI is the asset URI of a dataset of db.
func (db *DB) DatasetURI(dataset string) string {
	return strings.TrimSuffix(db.URI, "/") + "/" + dataset
}

// Read runs a query that reads dataset's fields and records a READ in the
// run of ctx (the query's digest in sql.query_digest, never its text or
// arguments).
func (db *DB) Read(ctx context.Context, dataset string, fields []string, query string, args ...any) (*sql.Rows, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	if r := FromContext(ctx); r != nil {
		r.record(pb.Operation_OPERATION_READ, []*pb.Asset{db.asset(dataset, fields)}, nil, map[string]string{"sql.query_digest": queryDigest(query)})
	}
	return rows, nil
}

// Write runs a statement that writes dataset's fields and records a WRITE
// in the run of ctx, with the rows affected when the driver knows them.
func (db *DB) Write(ctx context.Context, dataset string, fields []string, query string, args ...any) (sql.Result, error) {
	res, err := db.ExecContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	if r := FromContext(ctx); r != nil {
		ext := map[string]string{"sql.query_digest": queryDigest(query)}
		if n, err := res.RowsAffected(); err == nil {
			ext["sql.rows_affected"] = strconv.FormatInt(n, 10)
		}
		r.record(pb.Operation_OPERATION_WRITE, nil, []*pb.Asset{db.asset(dataset, fields)}, ext)
	}
	return res, nil
}

func (db *DB) asset(dataset string, fields []string) *pb.Asset {
	return &pb.Asset{Uri: db.DatasetURI(dataset), Fields: append([]string(nil), fields...), Classification: db.Classification}
}

func queryDigest(q string) string {
	sum := sha256.Sum256([]byte(q))
	return "sha256:" + hex.EncodeToString(sum[:])
}
