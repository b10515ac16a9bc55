package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name, json, err string
	}{
		{"empty", `{}`, ""},
		{"full", `{"data_key_rotation": "12h", "default": {"reveal_to": ["admin"]}, "tenants": {"acme": {"sensitive_fields": {"extensions.email": "pii"}, "classifications": {"pii": {"reveal_to": ["auditor"], "retain_days": 30, "then": "shred"}}}}}`, ""},
		{"unknown field", `{"tenant": {}}`, "unknown field"},
		{"bad rotation", `{"data_key_rotation": "soon"}`, "data_key_rotation"},
		{"bad role", `{"default": {"reveal_to": ["root"]}}`, `unknown role "root"`},
		{"bad action", `{"tenants": {"a": {"classifications": {"pii": {"then": "burn"}}}}}`, `then: "burn"`},
		{"days without action", `{"tenants": {"a": {"classifications": {"pii": {"retain_days": 3}}}}}`, `set "then"`},
		{"negative days", `{"tenants": {"a": {"classifications": {"pii": {"retain_days": -1, "then": "shred"}}}}}`, "negative"},
		{"bad classification", `{"tenants": {"a": {"classifications": {"PII": {}}}}}`, `"PII"`},
		{"bad field path", `{"tenants": {"a": {"sensitive_fields": {"rationale": "pii"}}}}`, "not extensions.KEY or environment.KEY"},
		{"bad field class", `{"tenants": {"a": {"sensitive_fields": {"extensions.x": ""}}}}`, "classification"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePolicy([]byte(tc.json))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("parsePolicy: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("parsePolicy = %v, want an error containing %q", err, tc.err)
			}
		})
	}
}

func TestPolicyDecisions(t *testing.T) {
	p, err := parsePolicy([]byte(`{
	  "data_key_rotation": "12h",
	  "default": {"reveal_to": ["admin"]},
	  "tenants": {"acme": {
	    "sensitive_fields": {"environment.user": "pii"},
	    "classifications": {
	      "pii": {"reveal_to": ["auditor", "admin"], "retain_days": 30, "then": "shred"},
	      "secret": {"retain_days": 0, "then": "archive"}
	    }}}}`))
	if err != nil {
		t.Fatal(err)
	}
	reveal := []struct {
		tenant, class string
		roles         []string
		want          bool
	}{
		{"acme", "pii", []string{"auditor"}, true},
		{"acme", "pii", []string{"reader"}, false},
		{"acme", "secret", []string{"auditor"}, false}, // no reveal_to: the default's
		{"acme", "secret", []string{"admin"}, true},
		{"globex", "pii", []string{"auditor"}, false},
		{"globex", "pii", []string{"reader", "admin"}, true},
	}
	for _, r := range reveal {
		if got := p.Reveals(r.tenant, r.class, r.roles); got != r.want {
			t.Errorf("Reveals(%s, %s, %v) = %v, want %v", r.tenant, r.class, r.roles, got, r.want)
		}
	}
	var none *Policy
	if !none.Reveals("x", "pii", []string{"auditor"}) || none.Reveals("x", "pii", []string{"reader"}) {
		t.Error("the nil policy should reveal to auditors and admins only")
	}
	want := []Rule{
		{Tenant: "acme", Classification: "pii", After: 30 * 24 * time.Hour, Action: ActionShred},
		{Tenant: "acme", Classification: "secret", Action: ActionArchive},
	}
	if diff := cmp.Diff(want, p.Rules()); diff != "" {
		t.Errorf("Rules() (-want +got):\n%s", diff)
	}
	if p.RotateEvery() != 12*time.Hour || p.SensitiveFields("acme")["environment.user"] != "pii" {
		t.Errorf("RotateEvery %v, SensitiveFields %v", p.RotateEvery(), p.SensitiveFields("acme"))
	}
}
