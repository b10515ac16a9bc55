package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWitnessedMonitor runs a log witnessed by a real provwitness, with
// log and witness keys made by provctl keys generate: appends, monitoring and bundles
// verify under the witness quorum. Then a second provlogd with the same
// key (a fork: another history under the same origin) is shown to the
// monitor, which finds that the witness holds a checkpoint it cannot be
// consistent with, and exits 1 with both checkpoints as evidence.
func TestWitnessedMonitor(t *testing.T) {
	const origin = "witnessed.provctl-e2e.example/log"
	keys := t.TempDir()
	mustRun(t, nil, exitVerified, "keys", "generate", "log", "--name", origin, "--out-dir", keys)
	base := filepath.Join(keys, strings.ReplaceAll(origin, "/", "_"))
	logVKey := strings.TrimSpace(string(mustRead(t, base+".pub")))
	newDataDir := func() string {
		d := filepath.Join(t.TempDir(), "data")
		os.MkdirAll(d, 0o700)
		os.WriteFile(filepath.Join(d, "log.key"), mustRead(t, base+".key"), 0o600)
		os.WriteFile(filepath.Join(d, "log.pub"), mustRead(t, base+".pub"), 0o644)
		return d
	}
	// The witness's key from provctl keys generate too: provwitness takes
	// it, and derives the same verifier key.
	mustRun(t, nil, exitVerified, "keys", "generate", "witness", "--name", "w1.provctl-e2e.example", "--out-dir", keys)
	waddr, wkey := startWitness(t, origin+" "+logVKey, filepath.Join(keys, "w1.provctl-e2e.example.key"))
	if want := strings.TrimSpace(string(mustRead(t, filepath.Join(keys, "w1.provctl-e2e.example.pub")))); wkey != want {
		t.Fatalf("provwitness derived verifier key %q from the generated key, provctl wrote %q", wkey, want)
	}
	policyFile := filepath.Join(keys, "policy.txt")
	os.WriteFile(policyFile, []byte("witness w1 "+wkey+" http://"+waddr+"\nquorum w1\n"), 0o644)

	// The witnessed log: 10 events, published only once cosigned.
	a := startDaemon(t, newDataDir(), "--origin", origin, "--witness-policy", policyFile)
	vars := a.env()
	vars["PROVLOG_WITNESS_POLICY"] = policyFile
	nd10, _ := sampleNDJSON(t, 1, 10)
	mustRun(t, vars, exitVerified, "append", "--wait", "published", nd10)
	state := filepath.Join(t.TempDir(), "state")
	out, _ := mustRun(t, vars, exitVerified, "monitor", "--once", "--state", state)
	if !strings.Contains(out, "size 10") {
		t.Errorf("monitor of the witnessed log: %q", out)
	}
	bundle := filepath.Join(t.TempDir(), "run.json")
	mustRun(t, vars, exitVerified, "bundle", "export", "--tenant", "acme", "--run", "run-7f3a9c", "--out", bundle)
	mustRun(t, map[string]string{"PROVLOG_WITNESS_POLICY": policyFile}, exitVerified, "bundle", "verify", "--log-key", logVKey, bundle)
	mustRun(t, vars, exitVerified, "audit")

	// The fork: same key, no witness (the witness would refuse it), more
	// events. A monitor that trusts the log key alone but asks the witness
	// catches it.
	b := startDaemon(t, newDataDir(), "--origin", origin)
	fork := b.env()
	noQuorum := filepath.Join(keys, "ask-only.txt")
	os.WriteFile(noQuorum, []byte("witness w1 "+wkey+" http://"+waddr+"\nquorum none\n"), 0o644)
	fork["PROVLOG_WITNESS_POLICY"] = noQuorum
	nd24, _ := sampleNDJSON(t, 1, 24)
	mustRun(t, fork, exitVerified, "append", "--wait", "published", nd24)
	out, _ = mustRun(t, fork, exitFailed, "monitor", "--once", "--state", filepath.Join(t.TempDir(), "fresh"))
	if !strings.HasPrefix(out, "ALERT split-view (witness w1): ") || !strings.Contains(out, "not consistent with the one of size 10") ||
		!strings.Contains(out, "--- old checkpoint\n"+origin+"\n10\n") || !strings.Contains(out, "--- new checkpoint\n"+origin+"\n24\n") {
		t.Errorf("monitor of the fork:\n%s", out)
	}
	// Under the real policy the fork's checkpoints are not even acceptable.
	fork["PROVLOG_WITNESS_POLICY"] = policyFile
	out, _ = mustRun(t, fork, exitFailed, "monitor", "--once", "--state", filepath.Join(t.TempDir(), "fresh2"))
	if !strings.Contains(out, "ALERT unverifiable-checkpoint (log): ") || !strings.Contains(out, "witness quorum not met") {
		t.Errorf("monitor of the fork under the quorum:\n%s", out)
	}
}
