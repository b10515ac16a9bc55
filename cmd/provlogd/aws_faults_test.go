package main

import (
	"testing"
)

// TestAWSCrashDuringAppends is TestCrashDuringAppends on the aws storage:
// SIGKILL of a frontend under sustained appends, then every acknowledged
// event is in the log (read back from the bucket) byte for byte at its
// index, re-sending it is a duplicate, and checkpoints are consistent
// across the crash.
func TestAWSCrashDuringAppends(t *testing.T) {
	d := startDaemon(t, t.TempDir(), awsArgs(t)...)
	crashDuringAppends(t, d)
}
