package ingest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/ingest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/testing/protocmp"
)

const (
	n8nSecret    = "test-n8n-secret-0123456789abcdef0123"
	zapierSecret = "test-zapier-secret-0123456789abcdef01"
)

// hookNow is the server's clock in the webhook tests.
var hookNow = time.Date(2026, 11, 26, 9, 16, 0, 0, time.UTC)

// writeHooksConfig writes a hooks config (mode 0600) naming the mappings in
// testdata/hooks and loads it.
func writeHooksConfig(t *testing.T) *ingest.HooksConfig {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"n8n.mapping.json", "zapier.mapping.json"} {
		if err := os.WriteFile(filepath.Join(dir, f), hookFile(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`{"sources": {
		"n8n": {"tenant": "acme", "secret": %q, "mapping": "n8n.mapping.json"},
		"zapier": {"tenant": "acme", "identity": "hook:zapier-prod", "secret": %q, "mapping": "zapier.mapping.json",
		           "window": "2m", "signature": {"header": "X-Zapier-Signature", "prefix": "", "encoding": "base64"}}}}`, n8nSecret, zapierSecret)
	p := filepath.Join(dir, "hooks.json")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ingest.LoadHooksConfig(p)
	if err != nil {
		t.Fatalf("LoadHooksConfig: %v", err)
	}
	return c
}

func hookFile(t *testing.T, name string) []byte {
	return readFile(t, filepath.Join("..", "..", "testdata", "hooks", name))
}

var nonceCounter atomic.Int64

// signed returns the headers a source sends: timestamp, a fresh nonce and
// the signature by the source's scheme.
func signed(t *testing.T, c *ingest.HooksConfig, source string, at time.Time, body []byte) map[string]string {
	t.Helper()
	s := c.Sources[source]
	ts := strconv.FormatInt(at.Unix(), 10)
	nonce := fmt.Sprintf("nonce-%d-%d", time.Now().UnixNano(), nonceCounter.Add(1))
	return map[string]string{
		s.Signature.Header:          s.Sign(ts, nonce, body),
		s.Signature.TimestampHeader: ts,
		s.Signature.NonceHeader:     nonce,
	}
}

func startHooks(t *testing.T) (*harness, *ingest.HooksConfig) {
	c := writeHooksConfig(t)
	h := startHarness(t, harnessOpts{hooks: c, now: func() time.Time { return hookNow }})
	return h, c
}

// TestHookN8n: a signed n8n execution becomes one event, mapped as the
// mapping file says, appended under the source's identity; re-sent (new
// nonce) it is a duplicate; its output traces back to its source.
func TestHookN8n(t *testing.T) {
	h, c := startHooks(t)
	body := hookFile(t, "n8n-execution.json")
	a := h.post(t, "/v1/hooks/n8n", "", body, signed(t, c, "n8n", hookNow.Add(-10*time.Second), body))
	if a.status != http.StatusOK || a.resp.Results[0].Index == nil {
		t.Fatalf("n8n hook: %d %s", a.status, a.body)
	}
	again := h.post(t, "/v1/hooks/n8n", "", body, signed(t, c, "n8n", hookNow, body))
	if again.status != http.StatusOK || !again.resp.Results[0].Duplicate || *again.resp.Results[0].Index != *a.resp.Results[0].Index {
		t.Fatalf("re-sent n8n hook: %d %s, want a duplicate", again.status, again.body)
	}
	h.settle(t)
	e, err := h.log.GetEntry(bearer(t.Context(), adminToken), &pb.GetEntryRequest{Index: *a.resp.Results[0].Index})
	if err != nil {
		t.Fatal(err)
	}
	if e.GetEntry().GetSubmitter() != "hook:n8n" {
		t.Errorf("submitter %q, want hook:n8n", e.GetEntry().GetSubmitter())
	}
	got := e.GetEntry().GetEvent()
	var v any
	json.Unmarshal(body, &v)
	want := &pb.ProvenanceEvent{
		SchemaVersion: 1, EventId: "n8n:Xk2pQ9wLr0Tz:48213", Tenant: "acme", Operation: pb.Operation_OPERATION_TRANSFORM,
		EventTime: got.GetEventTime(),
		Actor:     &pb.Actor{Type: pb.ActorType_ACTOR_TYPE_WORKFLOW, Id: "n8n-workflow:Xk2pQ9wLr0Tz", OnBehalfOf: "ops@acme.example", DisplayName: "CRM contacts to newsletter"},
		Workflow: &pb.Workflow{Platform: "n8n", PlatformVersion: "1.118.2", WorkflowId: "Xk2pQ9wLr0Tz",
			WorkflowVersion: "c0a3e0d2-5b1f-4c1e-9a7d-2f8e6b4a1c90", RunId: "48213"},
		Inputs:  []*pb.Asset{{Uri: "hubspot://acme/contacts", Fields: []string{"email", "firstname", "lifecyclestage"}, Classification: "pii"}},
		Outputs: []*pb.Asset{{Uri: "mailchimp://acme/lists/newsletter", Fields: []string{"email_address", "merge_fields.FNAME"}, Classification: "pii"}},
		FieldLineage: []*pb.FieldLineage{
			{OutputUri: "mailchimp://acme/lists/newsletter", OutputField: "email_address", Transformation: "identity", Sources: []*pb.FieldRef{{Uri: "hubspot://acme/contacts", Field: "email"}}},
			{OutputUri: "mailchimp://acme/lists/newsletter", OutputField: "merge_fields.FNAME", Transformation: "identity", Sources: []*pb.FieldRef{{Uri: "hubspot://acme/contacts", Field: "firstname"}}},
		},
		Environment: map[string]string{"n8n.mode": "trigger"},
		Extensions: map[string]string{"n8n.status": "success", "n8n.startedAt": "2026-11-26T09:15:02.114Z",
			"hook.source": "n8n", "hook.payloadVersion": "n8n-execution/1", "hook.digest": ingest.DigestJSON(v)},
	}
	if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
		t.Errorf("mapped event (-want +got):\n%s", d)
	}
	if !got.GetEventTime().AsTime().Equal(time.Date(2026, 11, 26, 9, 15, 9, 870e6, time.UTC)) {
		t.Errorf("event time %v", got.GetEventTime().AsTime())
	}
	resp := h.trace(t, "mailchimp://acme/lists/newsletter")
	var uris []string
	for _, n := range resp.GetNodes() {
		if n.GetKind() == pb.NodeKind_NODE_KIND_ASSET {
			uris = append(uris, n.GetAsset().GetUri())
		}
	}
	if !slices.Contains(uris, "hubspot://acme/contacts") {
		t.Errorf("upstream trace does not reach hubspot://acme/contacts: %v", uris)
	}
}

// TestHookZapier: the second platform, with its own signature scheme
// (base64, another header) and a shorter window.
func TestHookZapier(t *testing.T) {
	h, c := startHooks(t)
	body := hookFile(t, "zapier-step.json")
	a := h.post(t, "/v1/hooks/zapier", "", body, signed(t, c, "zapier", hookNow.Add(-time.Minute), body))
	if a.status != http.StatusOK || a.resp.Results[0].Index == nil {
		t.Fatalf("zapier hook: %d %s", a.status, a.body)
	}
	h.settle(t)
	e, err := h.log.GetEntry(bearer(t.Context(), adminToken), &pb.GetEntryRequest{Index: *a.resp.Results[0].Index})
	if err != nil {
		t.Fatal(err)
	}
	ev := e.GetEntry().GetEvent()
	if e.GetEntry().GetSubmitter() != "hook:zapier-prod" || ev.GetEventId() != "zapier:248190337:01JD8X4Q7R2M5N8P0S3T6V9W1Y:3" ||
		ev.GetInputs()[0].GetRecordKey() != "resp_8842" || len(ev.GetFieldLineage()) != 2 ||
		ev.GetFieldLineage()[1].GetSources()[0].GetField() != "company" || !ev.GetEventTime().AsTime().Equal(time.Unix(1795683600, 0)) {
		t.Errorf("mapped zapier event: %v (submitter %s)", ev, e.GetEntry().GetSubmitter())
	}
	// The Zapier window is 2 minutes: 3 minutes old is refused.
	old := h.post(t, "/v1/hooks/zapier", "", body, signed(t, c, "zapier", hookNow.Add(-3*time.Minute), body))
	if old.status != http.StatusUnauthorized {
		t.Errorf("3-minute-old zapier hook: %d %s", old.status, old.body)
	}
}

// TestHookRefused: bad signatures, old timestamps, replays and bad
// payloads are refused and nothing is appended; a mapping error names the
// payload field.
func TestHookRefused(t *testing.T) {
	h, c := startHooks(t)
	body := hookFile(t, "n8n-execution.json")
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(body, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	ok := func(b []byte) map[string]string { return signed(t, c, "n8n", hookNow, b) }
	with := func(hdr map[string]string, k, v string) map[string]string {
		if v == "" {
			delete(hdr, k)
		} else {
			hdr[k] = v
		}
		return hdr
	}
	noResource := edit(func(m map[string]any) { delete(m["nodes"].([]any)[2].(map[string]any), "resource") })
	badTime := edit(func(m map[string]any) { m["stoppedAt"] = "yesterday" })
	badURI := edit(func(m map[string]any) { m["nodes"].([]any)[0].(map[string]any)["resource"] = "not a uri" })
	badStatus := edit(func(m map[string]any) { m["status"] = "done" })
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		hdr    map[string]string
		status int
		field  string
		msg    string
	}{
		{"bad signature", "/v1/hooks/n8n", body, with(ok(body), "X-Provlog-Signature", "sha256="+strings.Repeat("0", 64)), 401, "", "bad signature"},
		{"signature of another body", "/v1/hooks/n8n", body, ok(badStatus), 401, "", "bad signature"},
		{"zapier secret for n8n", "/v1/hooks/n8n", body, with(ok(body), "X-Provlog-Signature", c.Sources["zapier"].Sign("1", "n", body)), 401, "", "bad signature"},
		{"no signature", "/v1/hooks/n8n", body, with(ok(body), "X-Provlog-Signature", ""), 401, "", "missing"},
		{"old timestamp", "/v1/hooks/n8n", body, signed(t, c, "n8n", hookNow.Add(-6*time.Minute), body), 401, "", "outside"},
		{"future timestamp", "/v1/hooks/n8n", body, signed(t, c, "n8n", hookNow.Add(6*time.Minute), body), 401, "", "outside"},
		{"no nonce", "/v1/hooks/n8n", body, with(ok(body), "X-Provlog-Nonce", ""), 401, "", "Nonce"},
		{"unknown source", "/v1/hooks/make", body, ok(body), 404, "", ""},
		{"mapping: missing field", "/v1/hooks/n8n", noResource, ok(noResource), 400, "nodes[2].resource", "needed for outputs.uri"},
		{"mapping: bad time", "/v1/hooks/n8n", badTime, ok(badTime), 400, "stoppedAt", ""},
		{"schema: bad status", "/v1/hooks/n8n", badStatus, ok(badStatus), 400, "status", ""},
		{"log: bad uri", "/v1/hooks/n8n", badURI, ok(badURI), 400, "inputs[0].uri", ""},
		{"not JSON", "/v1/hooks/n8n", []byte("{"), ok([]byte("{")), 400, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := h.post(t, tc.path, "", tc.body, tc.hdr)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			var e *ingest.ResultError
			if a.resp.Error != nil {
				e = a.resp.Error
			} else if len(a.resp.Results) == 1 {
				e = a.resp.Results[0].Error
			}
			if e == nil {
				t.Fatalf("no error in %s", a.body)
			}
			if tc.field != "" && e.Field != tc.field {
				t.Errorf("field %q, want %q: %s", e.Field, tc.field, a.body)
			}
			if !strings.Contains(e.Message, tc.msg) {
				t.Errorf("message %q, want it to say %q", e.Message, tc.msg)
			}
			if strings.Contains(string(a.body), n8nSecret) {
				t.Errorf("the answer leaks the secret")
			}
		})
	}
	h.settle(t)
	if n := h.size(t); n != 0 {
		t.Errorf("log size %d after refused hooks, want 0", n)
	}
}

// TestHookReplay: the same signed request twice is refused the second time.
func TestHookReplay(t *testing.T) {
	h, c := startHooks(t)
	body := hookFile(t, "zapier-step.json")
	hdr := signed(t, c, "zapier", hookNow, body)
	if a := h.post(t, "/v1/hooks/zapier", "", body, hdr); a.status != 200 {
		t.Fatalf("first: %d %s", a.status, a.body)
	}
	a := h.post(t, "/v1/hooks/zapier", "", body, hdr)
	if a.status != http.StatusUnauthorized || !strings.Contains(a.resp.Error.Message, "replay") {
		t.Fatalf("replay: %d %s", a.status, a.body)
	}
	m := h.get(t, "/metrics", adminToken)
	if !strings.Contains(string(m.body), `provlog_hook_refusals_total{reason="replay",source="zapier"} 1`) {
		t.Errorf("replay not counted")
	}
}

// TestHookDrift: fields the payload schema does not declare are appended
// anyway, counted, and reported for the source's tenant only.
func TestHookDrift(t *testing.T) {
	h, c := startHooks(t)
	var m map[string]any
	json.Unmarshal(hookFile(t, "n8n-execution.json"), &m)
	m["waitTill"] = nil
	m["workflow"].(map[string]any)["tags"] = []any{"crm"}
	m["nodes"].([]any)[0].(map[string]any)["credentials"] = "hubspotApi"
	b, _ := json.Marshal(m)
	if a := h.post(t, "/v1/hooks/n8n", "", b, signed(t, c, "n8n", hookNow, b)); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	a := h.get(t, "/v1/ingest/drift?source=n8n", readerToken)
	var rep struct{ Sources []ingest.SourceDrift }
	if err := json.Unmarshal(a.body, &rep); err != nil || len(rep.Sources) != 1 {
		t.Fatalf("drift report %d %s", a.status, a.body)
	}
	var paths []string
	for _, e := range rep.Sources[0].Entries {
		if e.Kind != ingest.DriftUnknownField || e.SchemaVersion != "n8n-execution/1" {
			t.Errorf("entry %+v", e)
		}
		paths = append(paths, e.Path)
	}
	if d := cmp.Diff([]string{"nodes[].credentials", "waitTill", "workflow.tags"}, paths); d != "" {
		t.Errorf("drifted paths (-want +got):\n%s", d)
	}
	// A caller of another tenant sees no acme source.
	if a := h.get(t, "/v1/ingest/drift", otherToken); a.status != 403 {
		t.Errorf("appender-only token reading drift: %d", a.status)
	}
}

// TestLoadHooksConfig: the config file's mode and contents are checked, and
// the secret never appears in an error or a log line.
func TestLoadHooksConfig(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "m.json"), hookFile(t, "n8n.mapping.json"), 0o644)
	for _, tc := range []struct {
		name, cfg string
		mode      os.FileMode
		want      string
	}{
		{"readable by others", `{"sources":{}}`, 0o644, "chmod 600"},
		{"short secret", `{"sources":{"n8n":{"tenant":"acme","secret":"short-secret","mapping":"m.json"}}}`, 0o600, "at least 32 bytes"},
		{"no tenant", `{"sources":{"n8n":{"secret":"` + n8nSecret + `","mapping":"m.json"}}}`, 0o600, "tenant: required"},
		{"unsigned body", `{"sources":{"n8n":{"tenant":"acme","secret":"` + n8nSecret + `","mapping":"m.json","signature":{"signed":"{timestamp}.{nonce}"}}}}`, 0o600, "must contain {body}"},
		{"unknown key", `{"sources":{"n8n":{"tenant":"acme","secret":"` + n8nSecret + `","mapping":"m.json","secrte":"x"}}}`, 0o600, "unknown field"},
		{"missing mapping", `{"sources":{"n8n":{"tenant":"acme","secret":"` + n8nSecret + `","mapping":"nope.json"}}}`, 0o600, "nope.json"},
		{"wide window", `{"sources":{"n8n":{"tenant":"acme","secret":"` + n8nSecret + `","mapping":"m.json","window":"2h"}}}`, 0o600, "window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "hooks.json")
			os.Remove(p)
			if err := os.WriteFile(p, []byte(tc.cfg), tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := ingest.LoadHooksConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), n8nSecret) {
				t.Errorf("error leaks the secret: %v", err)
			}
		})
	}
	s := ingest.Secret(n8nSecret)
	if out := fmt.Sprintf("%v %s %#v %+v", s, s, s, ingest.HookSource{Secret: s}); strings.Contains(out, n8nSecret) {
		t.Errorf("a secret prints: %s", out)
	}
}
