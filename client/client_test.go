package client

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// TestLyingServer runs the same verified calls against a server that tells
// the truth and one that lies in each way it can; every lie is caught with
// an error naming what is wrong.
func TestLyingServer(t *testing.T) {
	f := newFakeServer(t, 2)
	c := f.newClient(t, nil)
	ctx := t.Context()
	// calls are the verified operations; each returns its error.
	calls := map[string]func() error{
		"get entry":  func() error { _, err := c.GetEntry(ctx, 4); return err },
		"checkpoint": func() error { _, _, err := c.Checkpoint(ctx); return err },
		"trace": func() error {
			_, err := c.Trace(ctx, &pb.TraceRequest{Tenant: "acme", Start: &pb.TraceRequest_EventId{EventId: "x"}})
			return err
		},
		"consistency": func() error {
			old, _, err := c.Checkpoint(ctx)
			if err != nil {
				return err
			}
			small := *old
			root, err := f.l.checkpointRoot(10)
			if err != nil {
				return err
			}
			small.Size, small.Hash = 10, root
			return c.ProveConsistency(ctx, &small, old)
		},
		"append with receipt": func() error {
			_, err := c.Append(ctx, f.l.events[2], pb.WaitFor_WAIT_FOR_PUBLISHED)
			return err
		},
		"run events": func() error {
			ev := f.l.events[0]
			_, err := c.RunEvents(ctx, ev.GetTenant(), ev.GetWorkflow().GetRunId())
			return err
		},
	}
	for _, tc := range []struct {
		lie lie
		// want maps a call to a substring of its error; calls not listed
		// must succeed.
		want map[string]string
	}{
		{honest, nil},
		{lieFork, map[string]string{
			"consistency": "checkpoint of size 24 is not consistent with the one of size 10",
		}},
		{lieBadProof, map[string]string{"get entry": "leaf 4: inclusion proof"}},
		{lieNoQuorum, map[string]string{
			"get entry":           "witness quorum not met: valid cosignatures from 0 of 2 witnesses (none)",
			"checkpoint":          "witness quorum not met",
			"trace":               "witness quorum not met",
			"append with receipt": "witness quorum not met",
			"run events":          "witness quorum not met",
			"consistency":         "witness quorum not met",
		}},
		{lieEntryMismatch, map[string]string{"get entry": "leaf 4: the decoded entry the server sent is not what the leaf holds"}},
		{lieTraceEdge, map[string]string{"trace": "edge 0 (EDGE_KIND_OUTPUT event:1 -> asset:"}},
		{lieConsistency, map[string]string{"consistency": "is not consistent with the one of size 10"}},
		{lieReceipt, map[string]string{"append with receipt": "the receipt's leaf does not hold the appended event"}},
		{lieRunSummary, map[string]string{"run events": "summary of leaf 1 (\"n8n:run-7f3a9c:read-contacts\") does not match its event"}},
	} {
		t.Run(lieName(tc.lie), func(t *testing.T) {
			f.setLie(tc.lie)
			defer f.setLie(honest)
			for name, call := range calls {
				err := call()
				want, lying := tc.want[name]
				switch {
				case !lying && err != nil:
					t.Errorf("%s: %v", name, err)
				case lying && err == nil:
					t.Errorf("%s: the lie went unnoticed", name)
				case lying && !errors.Is(err, ErrVerification):
					t.Errorf("%s: error %v does not wrap ErrVerification", name, err)
				case lying && !strings.Contains(err.Error(), want):
					t.Errorf("%s: error %q does not say %q", name, err, want)
				}
			}
		})
	}
}

func lieName(l lie) string {
	return [...]string{"honest", "fork", "bad proof", "no quorum", "entry mismatch", "trace edge", "consistency", "tile", "entry bundle", "receipt", "run summary", "grown log"}[l]
}

func TestAppendRetriesHonoringRetryInfo(t *testing.T) {
	f := newFakeServer(t, 1)
	var sleeps []time.Duration
	c := f.newClient(t, &sleeps)
	f.appendFailures, f.appendDelay = 2, 300*time.Millisecond
	ev := f.l.events[5]
	resp, err := c.Append(t.Context(), ev, pb.WaitFor_WAIT_FOR_PUBLISHED)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetIndex() != 5 || f.appendCalls != 3 {
		t.Errorf("index %d after %d calls, want 5 after 3", resp.GetIndex(), f.appendCalls)
	}
	if len(sleeps) != 2 || sleeps[0] < 300*time.Millisecond || sleeps[1] < 300*time.Millisecond {
		t.Errorf("slept %v, want two waits of at least the server's 300ms", sleeps)
	}
	// The same event again: the server says duplicate, which is success.
	again, err := c.Append(t.Context(), ev, pb.WaitFor_WAIT_FOR_SEQUENCED)
	if err != nil || !again.GetDuplicate() || again.GetIndex() != 5 {
		t.Errorf("second append: %v, %v", again, err)
	}

	// Out of attempts: the last error comes back, with its code.
	f.appendFailures = 10
	_, err = c.Append(t.Context(), ev, pb.WaitFor_WAIT_FOR_SEQUENCED)
	if status.Code(errors.Unwrap(err)) != codes.Unavailable && !strings.Contains(err.Error(), "Unavailable") {
		t.Errorf("after 5 attempts: %v, want Unavailable", err)
	}
	f.appendFailures = 0

	// Not retryable: one call.
	f.appendCalls = 0
	other := f.l.events[6]
	bad := proto.Clone(other).(*pb.ProvenanceEvent)
	bad.Rationale = "different content"
	if _, err := c.Append(t.Context(), bad, pb.WaitFor_WAIT_FOR_SEQUENCED); status.Code(errors.Unwrap(err)) != codes.AlreadyExists || f.appendCalls != 1 {
		t.Errorf("conflicting event: %v after %d calls, want AlreadyExists after 1", err, f.appendCalls)
	}
}

func TestAppendBatchRetriesPendingEvents(t *testing.T) {
	f := newFakeServer(t, 1)
	var sleeps []time.Duration
	c := f.newClient(t, &sleeps)
	evs := f.l.events[:6]
	f.batchFail = map[string]bool{evs[1].GetEventId(): true, evs[4].GetEventId(): true}
	resp, err := c.AppendBatch(t.Context(), evs, pb.WaitFor_WAIT_FOR_PUBLISHED)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, r := range resp.GetResults() {
		if r.GetError() != nil {
			t.Errorf("result %v has an error", r)
		}
		got = append(got, r.GetIndex())
	}
	if diff := cmp.Diff([]uint64{0, 1, 2, 3, 4, 5}, got); diff != "" {
		t.Errorf("indexes (-want +got):\n%s", diff)
	}
	if f.batchCalls != 2 || len(sleeps) != 1 {
		t.Errorf("%d calls and %d waits, want 2 and 1", f.batchCalls, len(sleeps))
	}
}

func TestResolveConfig(t *testing.T) {
	l, other := newTestLog(t), newTestLog(t)
	dir := t.TempDir()
	t.Chdir(dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("provlog-data/admin.token", "default-token\n")
	write("provlog-data/log.pub", l.vkey+"\n")
	cfgFile := write("conf/provctl.json", `{"addr":"file:1","token_file":"tok","log_key":"`+l.vkey+`"}`)
	write("conf/tok", "file-token\n")
	noEnv := func(string) string { return "" }
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	for _, tc := range []struct {
		name  string
		flags Settings
		path  string
		env   func(string) string
		want  [3]string // addr, http, token
	}{
		{"local defaults", Settings{}, "", noEnv, [3]string{DefaultGRPCAddr, DefaultHTTPURL, "default-token"}},
		{"config file", Settings{}, cfgFile, noEnv, [3]string{"file:1", DefaultHTTPURL, "file-token"}},
		{"env over file", Settings{}, cfgFile, env(map[string]string{"PROVLOG_ADDR": "env:2", "PROVLOG_TOKEN": "env-token"}), [3]string{"env:2", DefaultHTTPURL, "env-token"}},
		{"config from env", Settings{}, "", env(map[string]string{"PROVLOG_CONFIG": cfgFile}), [3]string{"file:1", DefaultHTTPURL, "file-token"}},
		{"flags over env", Settings{Addr: "flag:3", HTTP: "h:4", Token: "flag-token"}, cfgFile, env(map[string]string{"PROVLOG_ADDR": "env:2"}), [3]string{"flag:3", "http://h:4", "flag-token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ResolveConfig(tc.flags, tc.path, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, [3]string{cfg.Addr, cfg.HTTP, cfg.Token}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if _, err := cfg.Policy(); err != nil {
				t.Errorf("policy: %v", err)
			}
		})
	}
	// PROVLOG_LOG_KEY may name a file (relative too); PROVLOG_TLS=1.
	write("keys/other.pub", other.vkey+"\n")
	cfg, err := ResolveConfig(Settings{}, "", env(map[string]string{"PROVLOG_LOG_KEY": "keys/other.pub", "PROVLOG_TLS": "1"}))
	if err != nil || cfg.LogKey != other.vkey || !cfg.TLS || cfg.Sources["log_key"] != "env (keys/other.pub)" {
		t.Errorf("log key file from env: %v, key %q from %q, tls %v", err, cfg.LogKey, cfg.Sources["log_key"], cfg.TLS)
	}
	if _, err := ResolveConfig(Settings{}, filepath.Join(dir, "missing.json"), noEnv); err == nil {
		t.Error("a missing config file named explicitly is not an error")
	}
	if _, err := ResolveConfig(Settings{TokenFile: "nope"}, "", noEnv); err == nil || !strings.Contains(err.Error(), "token (from flag)") {
		t.Errorf("missing token file: %v", err)
	}
}
