package ledger

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/transparency-dev/tessera"
	tessaws "github.com/transparency-dev/tessera/storage/aws"
)

// AWSConfig selects tessera's AWS driver: sequencing and coordination in a
// MySQL-compatible database, tiles, entry bundles and checkpoints in an
// S3-compatible bucket. Several provlogd processes may share one database
// and bucket; the idempotency index then lives in the same database (a
// unique key per (tenant, event id)), so they dedupe across each other.
type AWSConfig struct {
	// DSN is the go-sql-driver/mysql DSN of the database, e.g.
	// "user:pass@tcp(db:3306)/provlog". Tessera's tables and ours live in it.
	DSN string
	// Endpoint is the URL of an S3-compatible store; empty means AWS S3.
	// When set, requests are path-style (bucket in the path), which every
	// S3-compatible store accepts.
	Endpoint string
	// Bucket holds the log; it must exist.
	Bucket string
	// BucketPrefix, if set, is prepended to every object name, so that
	// several logs can share a bucket.
	BucketPrefix string
	// MaxOpenConns bounds each of the two connection pools (tessera's and
	// the index's); 0 means 32.
	MaxOpenConns int
}

// AWSMinCheckpointInterval is the shortest checkpoint interval tessera's
// AWS driver accepts.
const AWSMinCheckpointInterval = time.Second

// NewAWSDriver is tessera's AWS driver for c, configured as the ledger
// configures it (provbench's bare-tessera baseline uses it).
func NewAWSDriver(ctx context.Context, c AWSConfig, hc *http.Client) (tessera.Driver, error) {
	return newAWSDriver(ctx, c, hc)
}

// newAWSDriver builds tessera's AWS driver. Credentials and region come
// from the standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, shared config files, instance roles); the region defaults to
// us-east-1 when a custom endpoint is set and none is configured.
func newAWSDriver(ctx context.Context, c AWSConfig, hc *http.Client) (tessera.Driver, error) {
	if c.DSN == "" || c.Bucket == "" {
		return nil, errors.New("the aws storage needs a MySQL DSN and an S3 bucket")
	}
	sdk, s3opts, err := s3Config(ctx, c)
	if err != nil {
		return nil, err
	}
	conns := c.MaxOpenConns
	if conns <= 0 {
		conns = 32
	}
	d, err := tessaws.New(ctx, tessaws.Config{
		SDKConfig:    &sdk,
		S3Options:    s3opts,
		Bucket:       c.Bucket,
		BucketPrefix: c.BucketPrefix,
		DSN:          c.DSN,
		MaxOpenConns: conns,
		MaxIdleConns: conns,
		HTTPClient:   hc,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't create aws storage: %w", err)
	}
	return d, nil
}

// s3Config is the SDK configuration and S3 options for c.
func s3Config(ctx context.Context, c AWSConfig) (aws.Config, func(*s3.Options), error) {
	sdk, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, nil, fmt.Errorf("couldn't load the AWS configuration: %w", err)
	}
	if sdk.Region == "" && c.Endpoint != "" {
		sdk.Region = "us-east-1"
	}
	return sdk, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.UsePathStyle = true
		}
	}, nil
}

// s3Reader makes the AWS driver's reader say os.ErrNotExist for a missing
// object, as the posix one does, so /log/ answers 404 and "no checkpoint
// yet" is recognised.
type s3Reader struct{ tessera.LogReader }

func notExist(err error) error {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return fmt.Errorf("%w: %w", os.ErrNotExist, err)
	}
	return err
}

func (r s3Reader) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	b, err := r.LogReader.ReadCheckpoint(ctx)
	return b, notExist(err)
}

func (r s3Reader) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	b, err := r.LogReader.ReadTile(ctx, level, index, p)
	return b, notExist(err)
}

func (r s3Reader) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	b, err := r.LogReader.ReadEntryBundle(ctx, index, p)
	return b, notExist(err)
}

// awaitFirstCheckpoint waits until the log has a checkpoint.
func awaitFirstCheckpoint(ctx context.Context, r tessera.LogReader) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := r.ReadCheckpoint(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading the checkpoint: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the first checkpoint: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
