package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const exportURI = "s3://acme-exports/marketing/customer_segments/2026-11-26.csv"

// TestEndToEnd drives every provctl command against a real provlogd, then
// stops it and verifies the exported bundles with no server at all.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, filepath.Join(dir, "data"))
	vars := d.env()

	// A submitter key, and the samples but the last as NDJSON batches.
	mustRun(t, nil, exitVerified, "keys", "generate", "submitter", "--name", "acme/etl-1", "--out-dir", dir)
	for _, kind := range []string{"log", "witness"} {
		mustRun(t, nil, exitVerified, "keys", "generate", kind, "--name", kind+".example", "--out-dir", dir)
	}
	mustRun(t, nil, exitUsage, "keys", "generate", "log", "--name", "log.example", "--out-dir", dir) // no overwriting
	nd, evs := sampleNDJSON(t, 1, 23)
	out, _ := mustRun(t, vars, exitVerified, "append", "--batch", "10", nd)
	if !strings.HasPrefix(out, "23 events: 23 appended, 0 duplicates, 0 refused") {
		t.Errorf("append summary: %q", out)
	}
	out, _ = mustRun(t, vars, exitVerified, "append", "-o", "json", nd)
	var sum appendSummary
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Duplicates != 23 || sum.New != 0 {
		t.Errorf("second append, JSON summary: %v %+v", err, sum)
	}
	// Refused events: a line that is not an event, and a known id with
	// other content. The rest goes in; the exit code is 2.
	bad := filepath.Join(dir, "bad.ndjson")
	lines := strings.Split(strings.TrimSpace(string(mustRead(t, nd))), "\n")
	conflict := strings.Replace(lines[2], `"eventId":"`, `"eventId":"`, 1)
	conflict = strings.Replace(conflict, `"tenant":"acme"`, `"tenant":"acme","rationale":"changed"`, 1)
	os.WriteFile(bad, []byte(lines[0]+"\nnot json\n"+conflict+"\n"), 0o644)
	out, _ = mustRun(t, vars, exitUsage, "append", bad)
	if !strings.HasPrefix(out, "3 events: 0 appended, 1 duplicates, 2 refused") || !strings.Contains(out, "line 2 \"\": InvalidArgument: not a JSON event") ||
		!strings.Contains(out, "line 3 \""+evs[2].GetEventId()+"\": AlreadyExists") {
		t.Errorf("append with refusals:\n%s", out)
	}
	// The last sample, alone, signed, with a verified receipt.
	last := filepath.Join(dir, "24.json")
	b, err := os.ReadFile("../../testdata/events/24-customer-marts-run-complete.json")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(last, b, 0o644)
	receipt := filepath.Join(dir, "receipt.json")
	// Signatures are checked against the tenant's registered keys (issue 6).
	mustRun(t, vars, exitVerified, "tenant", "create", "acme")
	mustRun(t, vars, exitVerified, "keys", "register", "--tenant", "acme", "--key-id", "acme/etl-1",
		"--public-key", filepath.Join(dir, "acme_etl-1.pub"), "--valid-from", "2020-01-01T00:00:00Z")
	out, _ = mustRun(t, vars, exitVerified, "append", "--sign-key", filepath.Join(dir, "acme_etl-1.key"), "--receipt", receipt, last)
	if !strings.Contains(out, "is leaf 24") || !strings.Contains(out, "receipt verified") {
		t.Errorf("append one: %q", out)
	}
	mustRun(t, vars, exitVerified, "verify", "receipt", receipt)
	mustRun(t, vars, exitFailed, "verify", "receipt", "--event", last, receipt) // the leaf holds the signed event

	// get, verify event.
	out, _ = mustRun(t, vars, exitVerified, "get", "1")
	if !strings.Contains(out, "leaf 1 of ") || !strings.Contains(out, evs[1].GetEventId()) {
		t.Errorf("get: %q", out)
	}
	mustRun(t, vars, exitVerified, "verify", "event", "../../testdata/events/02-crm-export-read-contacts.json")
	edited := filepath.Join(dir, "edited.json")
	os.WriteFile(edited, []byte(strings.Replace(string(mustRead(t, "../../testdata/events/02-crm-export-read-contacts.json")), "\"read-contacts\"", "\"read-contacts-2\"", 1)), 0o644)
	out, errs := mustRun(t, vars, exitFailed, "verify", "event", edited)
	if !strings.Contains(errs, "with other content") {
		t.Errorf("verify edited event: %q %q", out, errs)
	}

	// trace, in three formats.
	out, _ = mustRun(t, vars, exitVerified, "trace", "--tenant", "acme", "--asset", exportURI, "--depth", "10")
	if !strings.Contains(out, "verified lineage") || !strings.Contains(out, "crm://acme-crm/contacts") {
		t.Errorf("trace tree does not reach the CRM source:\n%s", out)
	}
	out, _ = mustRun(t, vars, exitVerified, "trace", "--tenant", "acme", "--run", "run-7f3a9c", "-o", "dot")
	if !strings.HasPrefix(out, "digraph lineage {") {
		t.Errorf("dot: %q", out)
	}
	mustRun(t, vars, exitVerified, "trace", "--tenant", "acme", "--event", evs[4].GetEventId(), "--direction", "both", "-o", "json")
	mustRun(t, vars, exitUsage, "trace", "--tenant", "acme")

	// Bundles for a run and a record.
	runBundle, traceBundle := filepath.Join(dir, "run.json"), filepath.Join(dir, "trace.json")
	mustRun(t, vars, exitVerified, "bundle", "export", "--tenant", "acme", "--run", "run-7f3a9c", "--out", runBundle)
	mustRun(t, vars, exitVerified, "bundle", "export", "--tenant", "acme", "--asset", exportURI, "--depth", "10", "--out", traceBundle)

	// monitor --once twice, then audit.
	state := filepath.Join(dir, "monitor.state")
	out, _ = mustRun(t, vars, exitVerified, "monitor", "--once", "--state", state)
	if !strings.Contains(out, ": verified") {
		t.Errorf("monitor: %q", out)
	}
	mustRun(t, vars, exitVerified, "monitor", "--once", "--state", state)
	// Long-running: it follows the log as it grows (an event from stdin)
	// and stops cleanly when its context ends.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	monDone := make(chan string)
	go func() {
		code, out, errs := provctlWith(ctx, "", vars, "monitor", "--interval", "100ms", "--state", state, "-o", "json")
		monDone <- fmt.Sprintf("%d\n%s%s", code, out, errs)
	}()
	time.Sleep(300 * time.Millisecond)
	extra := strings.Replace(string(mustRead(t, "../../testdata/events/02-crm-export-read-contacts.json")), "n8n:run-7f3a9c:read-contacts", "n8n:run-7f3a9c:read-contacts-again", 1)
	if code, out, errs := provctlWith(t.Context(), extra, vars, "append", "-"); code != exitVerified {
		t.Fatalf("append from stdin: %d %s %s", code, out, errs)
	}
	mon := <-monDone
	if !strings.HasPrefix(mon, "0\n") || !strings.Contains(mon, `"event":"checkpoint"`) || !strings.Contains(mon, `"size":26`) {
		t.Errorf("long-running monitor:\n%s", mon)
	}
	out, _ = mustRun(t, vars, exitVerified, "audit", "--submitter-key", filepath.Join(dir, "acme_etl-1.pub"))
	if !strings.Contains(out, "leaves checked: 26 of 26") || !strings.Contains(out, "1 present, 1 verified") || !strings.Contains(out, "\nverified:") {
		t.Errorf("audit:\n%s", out)
	}
	// With another key under that name, the signature does not verify.
	out, _ = mustRun(t, vars, exitFailed, "audit", "--skip-index", "--submitter-key", strings.Replace(string(mustRead(t, filepath.Join(dir, "log.example.pub"))), "log.example", "acme/etl-1", 1))
	if !strings.Contains(out, "FAILED at leaf 24") {
		t.Errorf("audit with a wrong submitter key:\n%s", out)
	}
	// With no --submitter-key, the signature verifies with the key history
	// rebuilt from the log's own key events.
	out, _ = mustRun(t, vars, exitVerified, "audit", "--skip-index")
	if !strings.Contains(out, "1 present, 1 verified, 1 of them with the log's key history") || !strings.Contains(out, "key history rebuilt from the log: 1 key events, 1 keys") {
		t.Errorf("audit from the log's key history:\n%s", out)
	}
	// Revoke the key from 08:00 on (leaf 24 is timed 07:45): an event
	// signed with it for a later time is refused, one timed before still
	// goes in, and both signed leaves audit.
	mustRun(t, vars, exitVerified, "keys", "revoke", "--tenant", "acme", "--key-id", "acme/etl-1", "--reason", "rotated out", "--at", "2026-11-26T08:00:00Z")
	signedAt := func(name, id, at string) string {
		p := filepath.Join(dir, name)
		ev := strings.Replace(strings.Replace(string(b), "2026-11-26T07:45:03.118Z", at, 1), "invocation-complete", id, 1)
		os.WriteFile(p, []byte(ev), 0o644)
		return p
	}
	out, errs = mustRun(t, vars, exitUsage, "append", "--sign-key", filepath.Join(dir, "acme_etl-1.key"), signedAt("after.json", "after-revocation", "2026-11-26T09:00:00Z"))
	if !strings.Contains(out+errs, "InvalidArgument") || !strings.Contains(out+errs, "signature.key_id") {
		t.Errorf("append signed after the revocation:\n%s%s", out, errs)
	}
	mustRun(t, vars, exitVerified, "append", "--sign-key", filepath.Join(dir, "acme_etl-1.key"), signedAt("before.json", "before-revocation", "2026-11-26T07:50:00Z"))
	out, _ = mustRun(t, vars, exitVerified, "audit")
	if !strings.Contains(out, "leaves checked: 28 of 28") || !strings.Contains(out, "2 present, 2 verified, 2 of them with the log's key history") ||
		!strings.Contains(out, "key history rebuilt from the log: 2 key events, 1 keys") {
		t.Errorf("audit after the revocation:\n%s", out)
	}

	// Offline: stop the log; the bundles verify with the log key alone.
	d.stop()
	offline := map[string]string{"PROVLOG_ADDR": "127.0.0.1:1", "PROVLOG_HTTP": "http://127.0.0.1:1"}
	logKey := filepath.Join(d.dataDir, "log.pub")
	out, _ = mustRun(t, offline, exitVerified, "bundle", "verify", "--log-key", logKey, runBundle)
	if !strings.Contains(out, "verified: evidence bundle (run)") || !strings.Contains(out, "events of run \"run-7f3a9c\"") {
		t.Errorf("run bundle: %q", out)
	}
	out, _ = mustRun(t, offline, exitVerified, "verify", "bundle", "--log-key", logKey, traceBundle)
	if !strings.Contains(out, "verified: evidence bundle (trace)") {
		t.Errorf("trace bundle: %q", out)
	}
	out, _ = mustRun(t, offline, exitVerified, "verify", "bundle", traceBundle)
	if !strings.HasPrefix(out, "WARNING: checked against the bundle's own log key") {
		t.Errorf("self-asserted bundle: %q", out)
	}
	// A bundle edited after export fails.
	raw := string(mustRead(t, runBundle))
	tampered := filepath.Join(dir, "tampered.json")
	os.WriteFile(tampered, []byte(strings.Replace(raw, "\"run-7f3a9c\"", "\"run-000000\"", 1)), 0o644)
	mustRun(t, offline, exitFailed, "bundle", "verify", "--log-key", logKey, tampered)
	// With the log down, online commands fail with exit 2.
	vars["PROVLOG_ADDR"], vars["PROVLOG_HTTP"] = "127.0.0.1:1", "http://127.0.0.1:1"
	mustRun(t, vars, exitUsage, "monitor", "--once", "--state", state)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAuditTampered edits the log on disk, an entry bundle then a hash
// tile, and requires provctl audit to name the edited leaf and exit 1.
func TestAuditTampered(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, dataDir)
	nd, _ := sampleNDJSON(t, 1, 24)
	mustRun(t, d.env(), exitVerified, "append", "--wait", "published", nd)
	mustRun(t, d.env(), exitVerified, "audit")
	d.stop()

	bundlePath := filepath.Join(dataDir, "log", "tile", "entries", "000.p", "24")
	tilePath := filepath.Join(dataDir, "log", "tile", "0", "000.p", "24")
	for _, tc := range []struct {
		name  string
		path  string
		edit  func(b []byte) []byte
		index uint64
		want  string
	}{
		{"entry bundle", bundlePath, func(b []byte) []byte {
			// Flip the last byte of leaf 5.
			off := 0
			for i := 0; i <= 5; i++ {
				n := int(b[off])<<8 | int(b[off+1])
				off += 2 + n
			}
			b[off-1] ^= 1
			return b
		}, 5, "FAILED at leaf 5: the entry bundle holds a leaf whose hash is not the one the checkpoint commits to"},
		{"hash tile", tilePath, func(b []byte) []byte { b[7*32+3] ^= 1; return b }, 7, "FAILED at leaf 7: hash tile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := mustRead(t, tc.path)
			if err := os.WriteFile(tc.path, tc.edit(append([]byte(nil), orig...)), 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(tc.path, orig, 0o644)
			d := startDaemon(t, dataDir)
			defer d.stop()
			start := time.Now()
			out, _ := mustRun(t, d.env(), exitFailed, "audit")
			if !strings.Contains(out, tc.want) {
				t.Errorf("audit output does not say %q:\n%s", tc.want, out)
			}
			out, _ = mustRun(t, d.env(), exitFailed, "audit", "-o", "json")
			var rep auditReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.FirstBad == nil || *rep.FirstBad != tc.index || rep.Verified {
				t.Errorf("audit -o json: %v\n%s", err, out)
			}
			t.Logf("audit found the edit in %v", time.Since(start))
		})
	}
}
