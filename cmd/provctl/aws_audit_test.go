package main

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/provlog/provlog/log/ledger/awstest"
	"github.com/transparency-dev/tessera/api/layout"
)

// TestAWSAuditTampered is TestAuditTampered on the distributed backend
// (real MariaDB and versitygw): an entry bundle, then a hash tile, is
// rewritten in the bucket behind the running provlogd (which serves /log/
// straight from the bucket), and provctl audit must exit 1 naming the
// edited leaf; with the object restored it passes again.
func TestAWSAuditTampered(t *testing.T) {
	st := awstest.Store(t)
	dsn, bucket := awstest.NewDatabase(t), st.NewBucket(t)
	st.SetEnv(t) // provlogd inherits the AWS credentials
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), "--storage", "aws", "--mysql-dsn", dsn,
		"--s3-endpoint", st.Endpoint, "--s3-bucket", bucket, "--checkpoint-interval", "1s")
	vars := d.env()
	nd, _ := sampleNDJSON(t, 1, 24)
	mustRun(t, vars, exitVerified, "append", "--wait", "published", nd)
	mustRun(t, vars, exitVerified, "audit")

	s3c := st.Client()
	get := func(key string) []byte {
		t.Helper()
		o, err := s3c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatalf("GET %s from the bucket: %v", key, err)
		}
		defer o.Body.Close()
		b, err := io.ReadAll(o.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(key string, b []byte) {
		t.Helper()
		if _, err := s3c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(b)}); err != nil {
			t.Fatalf("PUT %s to the bucket: %v", key, err)
		}
	}
	for _, tc := range []struct {
		name  string
		key   string
		edit  func(b []byte) []byte
		index uint64
		want  string
	}{
		{"entry bundle", layout.EntriesPath(0, 24), func(b []byte) []byte {
			// Flip the last byte of leaf 5.
			off := 0
			for i := 0; i <= 5; i++ {
				n := int(b[off])<<8 | int(b[off+1])
				off += 2 + n
			}
			b[off-1] ^= 1
			return b
		}, 5, "FAILED at leaf 5: the entry bundle holds a leaf whose hash is not the one the checkpoint commits to"},
		{"hash tile", layout.TilePath(0, 0, 24), func(b []byte) []byte { b[7*32+3] ^= 1; return b }, 7, "FAILED at leaf 7: hash tile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := get(tc.key)
			put(tc.key, tc.edit(bytes.Clone(orig)))
			out, _ := mustRun(t, vars, exitFailed, "audit")
			if !strings.Contains(out, tc.want) {
				t.Errorf("audit output does not say %q:\n%s", tc.want, out)
			}
			out, _ = mustRun(t, vars, exitFailed, "audit", "-o", "json")
			var rep auditReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.FirstBad == nil || *rep.FirstBad != tc.index || rep.Verified {
				t.Errorf("audit -o json: %v\n%s", err, out)
			}
			put(tc.key, orig)
			mustRun(t, vars, exitVerified, "audit")
		})
	}
	d.stop()
}
