package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// vaultEvent is the id of the event appended with sensitive values.
const vaultEvent = "n8n:run-7f3a9c:ui-vault-contact"

// TestBrowserMasking runs a real provlogd with a vault (--vault-master-key)
// and an event carrying two sensitive values: contact.email (pii, revealed
// to auditors) and contact.note (tmp, shredded by retention at once).
// Reader and auditor tokens are created through AdminService. The page
// shows what the API returns for the signed-in role: the reader sees
// "[REDACTED: pii]" and never the value; the auditor sees the value, which
// the page checks against the commitment in the verified leaf, and the
// shredded value as erased, with when and under which policy (the reader,
// who may not read tmp values, gets "[REDACTED: tmp]" for it from the API,
// and the page shows that).
func TestBrowserMasking(t *testing.T) {
	ctx := newBrowser(t)
	keys := t.TempDir()
	policy := filepath.Join(keys, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"data_key_rotation": "1s", "tenants": {"acme": {"classifications": {
		"pii": {"reveal_to": ["auditor", "admin"]},
		"tmp": {"reveal_to": ["auditor", "admin"], "retain_days": 0, "then": "shred"}}}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pl := startProvlogd(t, "--vault-master-key", filepath.Join(keys, "master.key"), "--vault-policy", policy, "--vault-retention-interval", "500ms")
	shots := artifactDir(t)
	reader := createToken(t, pl, "ui-acme-reader", "reader", "acme")
	auditor := createToken(t, pl, "ui-acme-auditor", "auditor", "acme")

	const secret, note = "ui-SECRET-alice@example.com", "ui-temporary-note-0815"
	var ev map[string]any
	if err := json.Unmarshal([]byte(readTrimmed(t, "../testdata/events/02-crm-export-read-contacts.json")), &ev); err != nil {
		t.Fatal(err)
	}
	ev["eventId"] = vaultEvent
	ev["sensitive"] = []map[string]string{
		{"name": "contact.email", "classification": "pii", "value": secret},
		{"name": "contact.note", "classification": "tmp", "value": note},
	}
	body, _ := json.Marshal(ev)
	code, resp := do(t, http.MethodPost, pl.url+"/v1/events?wait=WAIT_FOR_PUBLISHED", pl.token, body)
	if code != http.StatusOK {
		t.Fatalf("append: %d %s", code, resp)
	}
	var appended struct {
		Index string `json:"index"`
	}
	if err := json.Unmarshal(resp, &appended); err != nil || appended.Index == "" {
		t.Fatalf("append answer %s: %v", resp, err)
	}

	type reveal struct {
		Name, Classification, Status, Value, Display, ErasedTime, Policy string
	}
	entry := func(token string) map[string]reveal {
		t.Helper()
		code, body := do(t, http.MethodGet, pl.url+"/v1/entries/"+appended.Index, token, nil)
		if code != http.StatusOK {
			t.Fatalf("GetEntry: %d %s", code, body)
		}
		var r struct{ Sensitive []reveal }
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		out := map[string]reveal{}
		for _, s := range r.Sensitive {
			out[s.Name] = s
		}
		return out
	}
	// The tmp key retires after 1s and is shredded at once; wait for it,
	// and for the lineage index to hold the event.
	t0 := time.Now()
	waitFor(t, 30*time.Second, func() bool {
		return entry(pl.token)["contact.note"].Status == "SENSITIVE_STATUS_SHREDDED"
	})
	waitFor(t, 30*time.Second, func() bool {
		code, _ := do(t, http.MethodGet, pl.url+"/v1/lineage?tenant=acme&eventId="+vaultEvent+"&direction=DIRECTION_BOTH&depth=1", reader, nil)
		return code == http.StatusOK
	})
	t.Logf("shredded and indexed after %v", time.Since(t0))
	shredded := entry(pl.token)["contact.note"]
	const wantErased = "[ERASED: tmp"
	if !strings.HasPrefix(shredded.Display, wantErased) || shredded.Policy == "" || shredded.ErasedTime == "" {
		t.Fatalf("shredded value as the API shows it: %+v", shredded)
	}
	// The API: what the page must show, per role.
	if r := entry(reader)["contact.email"]; r.Status != "SENSITIVE_STATUS_REDACTED" || r.Value != "" || r.Display != "[REDACTED: pii]" {
		t.Fatalf("reader's GetEntry: %+v", r)
	}
	if r := entry(auditor)["contact.email"]; r.Status != "SENSITIVE_STATUS_REVEALED" || r.Value != secret {
		t.Fatalf("auditor's GetEntry: %+v", r)
	}

	// sensitiveText waits for the value named name in the detail panel's
	// list from source (trace: the lineage answer, entry: GetEntry) and
	// returns its text and its data-commitment.
	sensitiveText := func(source, name string) (string, string) {
		t.Helper()
		sel := fmt.Sprintf(`#detail section.sensitive[data-source=%q] dd[data-name=%q]`, source, name)
		run(t, ctx, "wait for "+sel, chromedp.WaitVisible(css(sel)))
		return text(t, ctx, sel), attr(t, ctx, sel, "data-commitment")
	}
	for _, c := range []struct {
		role, token, email, commitment string
	}{
		{"reader", reader, "[REDACTED: pii]", ""},
		{"auditor", auditor, secret, "verified"},
	} {
		signIn(t, ctx, pl.url+"/ui/", c.token, "acme")
		if st := search(t, ctx, "event", vaultEvent, "1"); st != "ready" {
			t.Fatalf("%s: search: %s", c.role, text(t, ctx, "#status"))
		}
		if got := attr(t, ctx, "#detail .badge", "data-proof"); got != "verified" {
			t.Errorf("%s: the version-2 leaf's node badge = %q", c.role, got)
		}
		// The page shows exactly what the API returns to this role.
		api := entry(c.token)
		for _, source := range []string{"trace", "entry"} {
			got, commitment := sensitiveText(source, "contact.email")
			if !strings.HasPrefix(got, c.email) || !strings.HasPrefix(got, api["contact.email"].Display) || commitment != c.commitment {
				t.Errorf("%s, %s: contact.email shown as %q (commitment %q), want %q (%q)", c.role, source, got, commitment, c.email, c.commitment)
			}
			got, _ = sensitiveText(source, "contact.note")
			if want := api["contact.note"]; !strings.HasPrefix(got, want.Display) || want.Value != "" {
				t.Errorf("%s, %s: contact.note shown as %q, the API says %+v", c.role, source, got, want)
			}
			if c.role == "auditor" && (!strings.HasPrefix(got, wantErased) || !strings.Contains(got, shredded.Policy) || !strings.Contains(got, shredded.ErasedTime)) {
				t.Errorf("%s, %s: contact.note shown as %q, want %s with %s and %s", c.role, source, got, wantErased, shredded.ErasedTime, shredded.Policy)
			}
		}
		page := eval[string](t, ctx, `document.body.innerText`)
		if strings.Contains(page, note) {
			t.Errorf("%s: the page shows the shredded value", c.role)
		}
		if c.role == "reader" && strings.Contains(page, secret) {
			t.Errorf("reader: the page shows the pii value")
		}
		screenshot(t, ctx, shots, c.role)
		run(t, ctx, "sign out", click("#signout"))
	}
}
