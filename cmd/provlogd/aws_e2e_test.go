package main

import (
	"testing"

	"github.com/provlog/provlog/log/ledger/awstest"
)

// awsArgs starts provlogd on the aws storage: a fresh database and bucket
// on the test MariaDB and versitygw, credentials in the AWS environment.
func awsArgs(t *testing.T) []string {
	t.Helper()
	st := awstest.Store(t)
	dsn := awstest.NewDatabase(t)
	bucket := st.NewBucket(t)
	st.SetEnv(t)
	return []string{"--storage", "aws", "--mysql-dsn", dsn, "--s3-endpoint", st.Endpoint, "--s3-bucket", bucket,
		"--checkpoint-interval", "1s"}
}

// TestAWSEndToEnd is TestEndToEnd on tessera's AWS driver against a real
// MariaDB and a real S3-compatible store: appends over REST and gRPC,
// receipts, a restart, idempotency across it, inclusion and consistency
// proofs checked with x/mod, and the whole log read back through /log/
// (served from the bucket).
func TestAWSEndToEnd(t *testing.T) {
	d := startDaemon(t, t.TempDir(), awsArgs(t)...)
	endToEnd(t, d)
}
