// Package awstest gives tests of the aws storage a fresh database on the
// test MariaDB and a fresh bucket on the test S3-compatible store, both
// started by scripts/ci/services.sh, which exports:
//
//	PROVLOG_TEST_MYSQL_DSN      DSN without a database name, with the right to create databases
//	PROVLOG_TEST_S3_ENDPOINT    URL of the S3-compatible store (path-style)
//	PROVLOG_TEST_S3_ACCESS_KEY, PROVLOG_TEST_S3_SECRET_KEY, PROVLOG_TEST_S3_REGION
//
// Without them a test skips, unless CI is set: in CI a missing service is
// a failure, never a silent skip.
package awstest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-sql-driver/mysql"
)

// need returns the environment variable, skipping or failing when unset.
func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but %s is not: scripts/test.sh starts the services (scripts/ci/services.sh)", name)
	}
	t.Skipf("%s is not set: run under scripts/test.sh, or source scripts/ci/services.sh", name)
	return ""
}

func suffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ServerDSN is the test server's DSN without a database (skips or fails
// as the package doc says).
func ServerDSN(t testing.TB) string {
	t.Helper()
	return need(t, "PROVLOG_TEST_MYSQL_DSN")
}

// NewDatabase creates a fresh database and returns its DSN; it is dropped
// after the test.
func NewDatabase(t testing.TB) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN(t))
	if err != nil {
		t.Fatalf("PROVLOG_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := "provlog_test_" + suffix()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("dropping test database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// S3 is the test object store.
type S3 struct {
	Endpoint, AccessKey, SecretKey, Region string
}

// Store returns the test object store (skips or fails as the package doc
// says).
func Store(t testing.TB) S3 {
	t.Helper()
	s := S3{
		Endpoint:  need(t, "PROVLOG_TEST_S3_ENDPOINT"),
		AccessKey: need(t, "PROVLOG_TEST_S3_ACCESS_KEY"),
		SecretKey: need(t, "PROVLOG_TEST_S3_SECRET_KEY"),
		Region:    os.Getenv("PROVLOG_TEST_S3_REGION"),
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	return s
}

// Env is the standard AWS environment for a process using the store.
func (s S3) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
		// No shared config files or instance metadata: only these.
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// SetEnv sets Env in this process for the test (not parallel tests).
func (s S3) SetEnv(t testing.TB) {
	t.Helper()
	for _, kv := range s.Env() {
		for i := range kv {
			if kv[i] == '=' {
				t.Setenv(kv[:i], kv[i+1:])
				break
			}
		}
	}
}

// Client is an S3 client for the store.
func (s S3) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// NewBucket creates a fresh bucket; it is emptied and removed after the
// test.
func (s S3) NewBucket(t testing.TB) string {
	t.Helper()
	name := "provlog-test-" + suffix()
	c := s.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating test bucket: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for {
			page, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(name)})
			if err != nil {
				t.Logf("listing test bucket %s: %v", name, err)
				return
			}
			if len(page.Contents) == 0 {
				break
			}
			objs := make([]types.ObjectIdentifier, len(page.Contents))
			for i, o := range page.Contents {
				objs[i] = types.ObjectIdentifier{Key: o.Key}
			}
			if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(name), Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}}); err != nil {
				t.Logf("emptying test bucket %s: %v", name, err)
				return
			}
		}
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(name)}); err != nil {
			t.Logf("removing test bucket %s: %v", name, err)
		}
	})
	return name
}
