package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// MigrateToAWS copies the embedded (posix) log in dir/log, which must not
// be running, to the aws storage dst, with tessera's migration support:
// every entry bundle is copied, the Merkle tree is rebuilt from them in
// dst, and its root must equal the root of dir's latest checkpoint, which
// is verified with verifier first. Then it makes dst a log that goes on
// from there: the sequencer's next index is set to the migrated size (tessera
// migrates mirrors, which never append), and the source checkpoint is
// published as dst's. The idempotency index in dst's database, and the
// lineage index (provlogd --reindex), are rebuilt from the migrated log.
//
// It resumes an interrupted migration, and refuses a destination that holds
// another log. It returns the migrated checkpoint.
func MigrateToAWS(ctx context.Context, dir string, verifier note.Verifier, dst AWSConfig, workers uint) (*log.Checkpoint, error) {
	src := client.FileFetcher{Root: filepath.Join(dir, "log")}
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the source checkpoint: %w", err)
	}
	cp, _, _, err := log.ParseCheckpoint(raw, verifier.Name(), verifier)
	if err != nil {
		return nil, fmt.Errorf("the source checkpoint does not verify: %w", err)
	}
	sdk, opts, err := s3Config(ctx, dst)
	if err != nil {
		return nil, err
	}
	s3c := s3.NewFromConfig(sdk, opts)
	existing, err := getObject(ctx, s3c, dst.Bucket, layout.CheckpointPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading the destination checkpoint: %w", err)
	case !bytes.Equal(existing, raw):
		return nil, fmt.Errorf("bucket %s already holds a log with another checkpoint; migrate into an empty database and bucket", dst.Bucket)
	}

	driver, err := newAWSDriver(ctx, dst, nil)
	if err != nil {
		return nil, err
	}
	mt, err := tessera.NewMigrationTarget(ctx, driver, tessera.NewMigrationOptions())
	if err != nil {
		return nil, fmt.Errorf("couldn't start the migration: %w", err)
	}
	if workers == 0 {
		workers = 8
	}
	if err := mt.Migrate(ctx, workers, cp.Size, cp.Hash, src.ReadEntryBundle); err != nil {
		return nil, fmt.Errorf("migrating %d entries: %w", cp.Size, err)
	}

	db, err := sql.Open("mysql", dst.DSN)
	if err != nil {
		return nil, fmt.Errorf("couldn't open the destination database: %w", err)
	}
	defer db.Close()
	// Tessera's AWS sequencer hands out indexes from SeqCoord.next, which a
	// migration leaves at 0; appends must go on after the migrated entries.
	if _, err := db.ExecContext(ctx, `UPDATE SeqCoord SET next = GREATEST(next, ?) WHERE id = 0`, cp.Size); err != nil {
		return nil, fmt.Errorf("setting the next index to %d: %w", cp.Size, err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:       aws.String(dst.Bucket),
		Key:          aws.String(layout.CheckpointPath),
		Body:         bytes.NewReader(raw),
		ContentType:  aws.String("text/plain; charset=utf-8"),
		CacheControl: aws.String("no-cache"),
	}); err != nil {
		return nil, fmt.Errorf("publishing the migrated checkpoint: %w", err)
	}
	return cp, nil
}

func getObject(ctx context.Context, c *s3.Client, bucket, key string) ([]byte, error) {
	r, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return nil, fmt.Errorf("%w: %w", os.ErrNotExist, err)
		}
		return nil, err
	}
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}
