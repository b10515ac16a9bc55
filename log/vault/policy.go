package vault

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Policy is the per-tenant sensitive-data policy: which event fields are
// sensitive, which roles may read each classification, and how long values
// of each classification are kept. It is read from a JSON file
// (ParsePolicy); the zero Policy reveals every classification to auditors
// and admins, marks no field sensitive and keeps values forever.
//
//	{
//	  "data_key_rotation": "24h",
//	  "default": {"reveal_to": ["auditor", "admin"]},
//	  "tenants": {
//	    "acme": {
//	      "sensitive_fields": {"extensions.customer_email": "pii"},
//	      "classifications": {
//	        "pii": {"reveal_to": ["auditor", "admin"], "retain_days": 30, "then": "shred"},
//	        "confidential": {"reveal_to": ["admin"], "retain_days": 365, "then": "archive"}
//	      }
//	    }
//	  }
//	}
type Policy struct {
	// DataKeyRotation is how long a data key takes new writes (Config.
	// RotateEvery); "24h" when empty.
	DataKeyRotation string `json:"data_key_rotation,omitempty"`
	// Default applies to classifications a tenant does not list.
	Default ClassPolicy `json:"default"`
	// Tenants by name.
	Tenants map[string]TenantPolicy `json:"tenants,omitempty"`

	rotateEvery time.Duration
}

// TenantPolicy is one tenant's policy.
type TenantPolicy struct {
	// SensitiveFields marks event fields sensitive whatever the event says,
	// by path, with their classification: "extensions.KEY" or
	// "environment.KEY". The log moves each such field into the event's
	// sensitive values (named by the path) before building the leaf.
	SensitiveFields map[string]string `json:"sensitive_fields,omitempty"`
	// Classifications by label.
	Classifications map[string]ClassPolicy `json:"classifications,omitempty"`
}

// ClassPolicy is what a tenant does with values of one classification.
type ClassPolicy struct {
	// RevealTo lists the roles that read values in clear ("reader",
	// "auditor", "admin"); others see "[REDACTED: classification]". Nil
	// means the default policy's list, or auditor and admin.
	RevealTo []string `json:"reveal_to,omitempty"`
	// RetainDays and Then: once a data key has been retired for
	// RetainDays days, Then ("shred" or "archive") its values. No Then, no
	// retention limit.
	RetainDays int    `json:"retain_days,omitempty"`
	Then       Action `json:"then,omitempty"`
}

var defaultRevealTo = []string{"auditor", "admin"}

var knownRoles = []string{"appender", "reader", "auditor", "admin"}

// ParsePolicy reads a policy file.
func ParsePolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read vault policy: %w", err)
	}
	p, err := parsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("vault policy %s: %w", path, err)
	}
	return p, nil
}

func parsePolicy(b []byte) (*Policy, error) {
	var p Policy
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&p); err != nil {
		return nil, err
	}
	if p.DataKeyRotation != "" {
		d, err := time.ParseDuration(p.DataKeyRotation)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("data_key_rotation %q: want a positive duration such as \"24h\"", p.DataKeyRotation)
		}
		p.rotateEvery = d
	}
	if err := p.Default.check("default"); err != nil {
		return nil, err
	}
	for _, tn := range slices.Sorted(maps.Keys(p.Tenants)) {
		t := p.Tenants[tn]
		for _, c := range slices.Sorted(maps.Keys(t.Classifications)) {
			if !validClass(c) {
				return nil, fmt.Errorf("tenants.%s.classifications: %q, want [a-z][a-z0-9_-]{0,31}", tn, c)
			}
			if err := t.Classifications[c].check("tenants." + tn + ".classifications." + c); err != nil {
				return nil, err
			}
		}
		for _, f := range slices.Sorted(maps.Keys(t.SensitiveFields)) {
			if _, _, ok := SplitFieldPath(f); !ok {
				return nil, fmt.Errorf("tenants.%s.sensitive_fields: %q is not extensions.KEY or environment.KEY", tn, f)
			}
			if !validClass(t.SensitiveFields[f]) {
				return nil, fmt.Errorf("tenants.%s.sensitive_fields.%s: classification %q, want [a-z][a-z0-9_-]{0,31}", tn, f, t.SensitiveFields[f])
			}
		}
	}
	return &p, nil
}

func (c ClassPolicy) check(where string) error {
	for _, r := range c.RevealTo {
		if !slices.Contains(knownRoles, r) {
			return fmt.Errorf("%s.reveal_to: unknown role %q (want one of %s)", where, r, strings.Join(knownRoles, ", "))
		}
	}
	switch {
	case c.Then != "" && c.Then != ActionShred && c.Then != ActionArchive:
		return fmt.Errorf("%s.then: %q, want \"shred\" or \"archive\"", where, c.Then)
	case c.RetainDays < 0:
		return fmt.Errorf("%s.retain_days: must not be negative", where)
	case c.RetainDays > 0 && c.Then == "":
		return errors.New(where + ".retain_days: set \"then\" too (\"shred\" or \"archive\")")
	}
	return nil
}

// SplitFieldPath splits a sensitive field path: "extensions.KEY" or
// "environment.KEY".
func SplitFieldPath(p string) (mapName, key string, ok bool) {
	m, k, found := strings.Cut(p, ".")
	if !found || k == "" || (m != "extensions" && m != "environment") {
		return "", "", false
	}
	return m, k, true
}

// RotateEvery is the policy's data key rotation period, 0 for the default.
func (p *Policy) RotateEvery() time.Duration {
	if p == nil {
		return 0
	}
	return p.rotateEvery
}

func (p *Policy) class(tenant, class string) ClassPolicy {
	if p == nil {
		return ClassPolicy{}
	}
	if c, ok := p.Tenants[tenant].Classifications[class]; ok {
		if c.RevealTo == nil {
			c.RevealTo = p.Default.RevealTo
		}
		return c
	}
	return p.Default
}

// Reveals reports whether a caller holding roles may read values of
// (tenant, classification) in clear.
func (p *Policy) Reveals(tenant, class string, roles []string) bool {
	allowed := p.class(tenant, class).RevealTo
	if allowed == nil {
		allowed = defaultRevealTo
	}
	for _, r := range roles {
		if slices.Contains(allowed, r) {
			return true
		}
	}
	return false
}

// SensitiveFields returns the tenant's sensitive field paths and their
// classifications.
func (p *Policy) SensitiveFields(tenant string) map[string]string {
	if p == nil {
		return nil
	}
	return p.Tenants[tenant].SensitiveFields
}

// Rules returns the retention rules of the policy.
func (p *Policy) Rules() []Rule {
	if p == nil {
		return nil
	}
	var out []Rule
	for _, tn := range slices.Sorted(maps.Keys(p.Tenants)) {
		t := p.Tenants[tn]
		for _, c := range slices.Sorted(maps.Keys(t.Classifications)) {
			cp := t.Classifications[c]
			if cp.Then != "" {
				out = append(out, Rule{Tenant: tn, Classification: c, After: time.Duration(cp.RetainDays) * 24 * time.Hour, Action: cp.Then})
			}
		}
	}
	return out
}

// validClass reports whether c is a classification label, as log/event
// validates them: [a-z][a-z0-9_-]{0,31}.
func validClass(c string) bool {
	if c == "" || len(c) > 32 {
		return false
	}
	for i := 0; i < len(c); i++ {
		b := c[i]
		if !('a' <= b && b <= 'z' || i > 0 && ('0' <= b && b <= '9' || b == '_' || b == '-')) {
			return false
		}
	}
	return true
}
