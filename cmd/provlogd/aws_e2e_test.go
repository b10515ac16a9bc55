package main

import (
	"testing"

	"github.com/provlog/provlog/log/ledger/awstest"
)

// awsSetup is a fresh database and bucket on the test MariaDB and
// versitygw, and the flags and AWS environment that point provlogd at them.
// Tests using it run in parallel with each other: nothing is shared.
type awsSetup struct {
	dsn, endpoint, bucket string
	env                   []string
}

func newAWS(t *testing.T) awsSetup {
	t.Helper()
	st := awstest.Store(t)
	return awsSetup{dsn: awstest.NewDatabase(t), endpoint: st.Endpoint, bucket: st.NewBucket(t), env: st.Env()}
}

func (a awsSetup) args() []string {
	return []string{"--storage", "aws", "--mysql-dsn", a.dsn, "--s3-endpoint", a.endpoint, "--s3-bucket", a.bucket,
		"--checkpoint-interval", "1s"}
}

// start starts provlogd on the aws storage.
func (a awsSetup) start(t *testing.T, dataDir string, extra ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, dataDir, a.env, append(a.args(), extra...)...)
}

// TestAWSEndToEnd is TestEndToEnd on tessera's AWS driver against a real
// MariaDB and a real S3-compatible store: appends over REST and gRPC,
// receipts, a restart, idempotency across it, inclusion and consistency
// proofs checked with x/mod, and the whole log read back through /log/
// (served from the bucket).
func TestAWSEndToEnd(t *testing.T) {
	t.Parallel()
	d := newAWS(t).start(t, t.TempDir())
	endToEnd(t, d)
}
