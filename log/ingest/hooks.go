package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/auth"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// HooksConfig is the webhook configuration file (--hooks-config): one entry
// per source, keyed by the {source} of POST /v1/hooks/{source}. It holds
// HMAC secrets: the file must not be readable by group or others, and no
// secret is ever logged.
//
//	{
//	  "sources": {
//	    "n8n": {
//	      "tenant": "acme",              // events are appended for this tenant
//	      "identity": "hook:n8n",        // submitter in the leaves (default hook:SOURCE)
//	      "secret": "…",                 // HMAC-SHA256 key, at least 32 bytes
//	      "mapping": "n8n.mapping.json", // relative to this file
//	      "window": "5m",                // timestamp window (default 5m, max 1h)
//	      "signature": {                 // all optional; defaults shown
//	        "header": "X-Provlog-Signature",
//	        "prefix": "sha256=",
//	        "encoding": "hex",           // or base64
//	        "timestampHeader": "X-Provlog-Timestamp", // Unix seconds
//	        "nonceHeader": "X-Provlog-Nonce",
//	        "signed": "{timestamp}.{nonce}.{body}"
//	      }
//	    }
//	  }
//	}
type HooksConfig struct {
	Sources map[string]*HookSource `json:"sources"`
}

// HookSource is one webhook source.
type HookSource struct {
	Tenant    string          `json:"tenant"`
	Identity  string          `json:"identity"`
	Secret    Secret          `json:"secret"`
	Mapping   string          `json:"mapping"`
	Window    string          `json:"window"`
	Signature SignatureScheme `json:"signature"`

	window  time.Duration
	mapping *Mapping
}

// SignatureScheme says how a source signs its requests: the signature is
// HMAC-SHA256 with the source's secret over Signed, in which {timestamp},
// {nonce} and {body} stand for the timestamp header, the nonce header and
// the raw body.
type SignatureScheme struct {
	Header          string `json:"header"`
	Prefix          string `json:"prefix"`
	Encoding        string `json:"encoding"`
	TimestampHeader string `json:"timestampHeader"`
	NonceHeader     string `json:"nonceHeader"`
	Signed          string `json:"signed"`
}

// Secret is an HMAC key; it prints and logs as "[redacted]".
type Secret []byte

func (s Secret) String() string       { return "[redacted]" }
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }
func (s Secret) GoString() string     { return "[redacted]" }
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("secret: want a string")
	}
	*s = Secret(v)
	return nil
}

// Limits on a source.
const (
	minSecretLen  = 32
	defaultWindow = 5 * time.Minute
	maxWindow     = time.Hour
	maxNonceLen   = 128
)

// LoadHooksConfig reads and checks a hooks configuration file and the
// mapping files it names. The file must have mode 0600 or stricter.
func LoadHooksConfig(path string) (*HooksConfig, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read hooks config: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %#o; it holds webhook secrets and must not be readable by group or others (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read hooks config: %w", err)
	}
	var c HooksConfig
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return nil, fmt.Errorf("couldn't parse hooks config %s: %w", path, err)
	}
	for name, s := range c.Sources {
		if s == nil {
			return nil, fmt.Errorf("hooks config %s: sources.%s: empty", path, name)
		}
		if s.Mapping == "" {
			return nil, fmt.Errorf("hooks config %s: sources.%s.mapping: required", path, name)
		}
		mp := s.Mapping
		if !filepath.IsAbs(mp) {
			mp = filepath.Join(filepath.Dir(path), mp)
		}
		mb, err := os.ReadFile(mp)
		if err != nil {
			return nil, fmt.Errorf("hooks config %s: sources.%s.mapping: %w", path, name, err)
		}
		if s.mapping, err = ParseMapping(mb); err != nil {
			return nil, fmt.Errorf("hooks config %s: sources.%s.mapping %s: %w", path, name, mp, err)
		}
		if err := s.check(name); err != nil {
			return nil, fmt.Errorf("hooks config %s: %w", path, err)
		}
	}
	return &c, nil
}

// check validates a source and fills in defaults.
func (s *HookSource) check(name string) error {
	p := "sources." + name
	if name == "" || strings.ContainsAny(name, "/?#% ") {
		return fmt.Errorf("%s: a source name must be a URL path segment", p)
	}
	if s.Tenant == "" {
		return fmt.Errorf("%s.tenant: required", p)
	}
	if len(s.Secret) < minSecretLen {
		return fmt.Errorf("%s.secret: at least %d bytes required, got %d", p, minSecretLen, len(s.Secret))
	}
	if s.Identity == "" {
		s.Identity = "hook:" + name
	}
	s.window = defaultWindow
	if s.Window != "" {
		w, err := time.ParseDuration(s.Window)
		if err != nil || w <= 0 || w > maxWindow {
			return fmt.Errorf("%s.window: want a duration in (0, %v], got %q", p, maxWindow, s.Window)
		}
		s.window = w
	}
	sig := &s.Signature
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&sig.Header, "X-Provlog-Signature")
	def(&sig.Prefix, "sha256=")
	def(&sig.Encoding, "hex")
	def(&sig.TimestampHeader, "X-Provlog-Timestamp")
	def(&sig.NonceHeader, "X-Provlog-Nonce")
	def(&sig.Signed, "{timestamp}.{nonce}.{body}")
	if sig.Encoding != "hex" && sig.Encoding != "base64" {
		return fmt.Errorf("%s.signature.encoding: want hex or base64, got %q", p, sig.Encoding)
	}
	// A signature that does not cover the timestamp, the nonce and the body
	// would let a replay or a forgery through.
	for _, part := range []string{"{timestamp}", "{nonce}", "{body}"} {
		if !strings.Contains(sig.Signed, part) {
			return fmt.Errorf("%s.signature.signed: must contain %s", p, part)
		}
	}
	return nil
}

// Sign returns the signature header value a source sends for body: the
// sender's side of the scheme (tests and the example sender use it).
func (s *HookSource) Sign(timestamp, nonce string, body []byte) string {
	mac := hmac.New(sha256.New, s.Secret)
	mac.Write(signedBytes(s.Signature.Signed, timestamp, nonce, body))
	sum := mac.Sum(nil)
	if s.Signature.Encoding == "base64" {
		return s.Signature.Prefix + base64.StdEncoding.EncodeToString(sum)
	}
	return s.Signature.Prefix + hex.EncodeToString(sum)
}

func signedBytes(tmpl, timestamp, nonce string, body []byte) []byte {
	var b bytes.Buffer
	for tmpl != "" {
		i := strings.IndexByte(tmpl, '{')
		if i < 0 {
			b.WriteString(tmpl)
			break
		}
		b.WriteString(tmpl[:i])
		tmpl = tmpl[i:]
		switch {
		case strings.HasPrefix(tmpl, "{timestamp}"):
			b.WriteString(timestamp)
			tmpl = tmpl[len("{timestamp}"):]
		case strings.HasPrefix(tmpl, "{nonce}"):
			b.WriteString(nonce)
			tmpl = tmpl[len("{nonce}"):]
		case strings.HasPrefix(tmpl, "{body}"):
			b.Write(body)
			tmpl = tmpl[len("{body}"):]
		default:
			b.WriteByte('{')
			tmpl = tmpl[1:]
		}
	}
	return b.Bytes()
}

// hookSource is a configured source at run time.
type hookSource struct {
	name  string
	cfg   *HookSource
	token string // the source's internal bearer token
	// seen holds the nonces of the current window, with their expiry.
	mu   sync.Mutex
	seen map[string]time.Time
}

// hooksHandler serves POST /v1/hooks/{source}.
type hooksHandler struct {
	sources  map[string]*hookSource
	app      *appender
	drift    *Drift
	log      *slog.Logger
	now      func() time.Time
	refusals *prometheus.CounterVec
}

func newHooksHandler(cfg Config, app *appender, drift *Drift) (*hooksHandler, error) {
	if cfg.Tokens == nil {
		return nil, errors.New("webhooks need a token registry")
	}
	h := &hooksHandler{
		sources: map[string]*hookSource{}, app: app, drift: drift, log: cfg.Logger, now: cfg.Now,
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provlog_hook_refusals_total",
			Help: "Webhook requests refused before mapping, by source and reason (signature, timestamp, nonce, replay).",
		}, []string{"source", "reason"}),
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(h.refusals)
	}
	for name, s := range cfg.Hooks.Sources {
		if s.mapping == nil {
			return nil, fmt.Errorf("webhook source %s has no mapping (load the config with LoadHooksConfig)", name)
		}
		tok, err := auth.NewToken()
		if err != nil {
			return nil, err
		}
		// The source may append for its tenant, nothing else; the token
		// never leaves the process.
		cfg.Tokens.Add(tok, &auth.Identity{Name: s.Identity, Roles: []auth.Role{auth.RoleAppender}, Tenants: []string{s.Tenant}})
		h.sources[name] = &hookSource{name: name, cfg: s, token: tok, seen: map[string]time.Time{}}
	}
	return h, nil
}

// errRefused is a request whose authentication failed; its message is safe
// to send.
type errRefused struct{ reason, msg string }

func (e *errRefused) Error() string { return e.msg }

// verify checks the signature, the timestamp window and the nonce. Only a
// request with a valid signature can use up a nonce.
func (s *hookSource) verify(r *http.Request, body []byte, now time.Time) error {
	sig := s.cfg.Signature
	ts := r.Header.Get(sig.TimestampHeader)
	nonce := r.Header.Get(sig.NonceHeader)
	got := r.Header.Get(sig.Header)
	if got == "" {
		return &errRefused{"signature", "missing " + sig.Header + " header"}
	}
	if ts == "" {
		return &errRefused{"timestamp", "missing " + sig.TimestampHeader + " header"}
	}
	if nonce == "" || len(nonce) > maxNonceLen {
		return &errRefused{"nonce", fmt.Sprintf("%s header: required, 1 to %d bytes", sig.NonceHeader, maxNonceLen)}
	}
	want := s.cfg.Sign(ts, nonce, body)
	if !hmac.Equal([]byte(got), []byte(want)) {
		return &errRefused{"signature", "bad signature"}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return &errRefused{"timestamp", sig.TimestampHeader + " header: want Unix seconds"}
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > s.cfg.window || d < -s.cfg.window {
		return &errRefused{"timestamp", fmt.Sprintf("timestamp %s is outside the %v window around the server's clock", at.UTC().Format(time.RFC3339), s.cfg.window)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if exp, ok := s.seen[nonce]; ok && now.Before(exp) {
		return &errRefused{"replay", "nonce already used: a replayed request"}
	}
	if len(s.seen) > 4096 {
		for n, exp := range s.seen {
			if !now.Before(exp) {
				delete(s.seen, n)
			}
		}
	}
	// A nonce must stay known for as long as its timestamp is acceptable.
	s.seen[nonce] = at.Add(s.cfg.window + time.Second)
	return nil
}

func (h *hooksHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("source")
	s := h.sources[name]
	if s == nil {
		writeJSON(w, http.StatusNotFound, Response{Error: &ResultError{Code: "NotFound", Message: "no webhook source " + strconv.Quote(name)}})
		return
	}
	body, err := readBody(r)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	if err := s.verify(r, body, h.now()); err != nil {
		var re *errRefused
		errors.As(err, &re)
		h.refusals.WithLabelValues(name, re.reason).Inc()
		h.log.WarnContext(r.Context(), "webhook refused", "source", name, "reason", re.reason)
		w.Header().Set("WWW-Authenticate", `HMAC realm="provlog"`)
		writeJSON(w, http.StatusUnauthorized, Response{Error: &ResultError{Code: "Unauthenticated", Message: re.msg}})
		return
	}
	ev, err := h.mapPayload(s, body)
	if err != nil {
		writeRefusal(w, err)
		return
	}
	results := []Result{{EventID: ev.GetEventId()}}
	appendMapped(r.Context(), w, h.log, h.app, s.token, results, []*pb.ProvenanceEvent{ev}, []int{0})
}

// mapPayload validates a payload against its source's schema, records
// drift, and maps it.
func (h *hooksHandler) mapPayload(s *hookSource, body []byte) (*pb.ProvenanceEvent, error) {
	m := s.cfg.mapping
	v, err := decodeJSON(body)
	if err != nil {
		h.drift.Record(s.name, s.cfg.Tenant, DriftInvalid, "", m.PayloadVersion, err.Error())
		return nil, &SchemaError{Reason: err.Error()}
	}
	if err := m.schema.validate(v); err != nil {
		se := err.(*SchemaError)
		h.drift.Record(s.name, s.cfg.Tenant, DriftInvalid, se.Field, m.PayloadVersion, se.Reason)
		return nil, err
	}
	for _, p := range m.schema.unknownFields(v) {
		h.drift.Record(s.name, s.cfg.Tenant, DriftUnknownField, p, m.PayloadVersion, "")
	}
	ev, err := m.Map(v, s.cfg.Tenant)
	if err != nil {
		return nil, err
	}
	if ev.Extensions == nil {
		ev.Extensions = map[string]string{}
	}
	ev.Extensions["hook.source"] = s.name
	ev.Extensions["hook.digest"] = DigestJSON(v)
	ev.Extensions["hook.payloadVersion"] = m.PayloadVersion
	return ev, nil
}
