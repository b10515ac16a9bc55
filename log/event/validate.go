package event

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"net/url"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// Limits enforced by Validate. Lengths count bytes of UTF-8, not characters.
const (
	maxEventIDLen     = 128
	maxTenantLen      = 64
	maxTextLen        = 1024 // any string without a limit of its own
	maxRationaleLen   = 4096
	maxURILen         = 2048
	maxAssets         = 256 // inputs, and outputs
	maxFields         = 256 // fields per asset
	maxFieldLen       = 256 // a field name, in fields or field lineage
	maxClassification = 32
	maxFieldLineage   = 256
	maxSources        = 256 // sources per field lineage entry
	maxMapEntries     = 64  // environment, and extensions
	maxMapKeyLen      = 128
	maxMapValueLen    = 4096
	maxSubjects       = 64
	maxKeyIDLen       = 128
	maxFutureSkew     = time.Hour
)

// FieldError is a validation failure about one field of an event. Field is
// the path to it in proto field names: "inputs[2].digest",
// "environment[\"region\"]", or "event" for the event as a whole.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, reason string) error { return &FieldError{Field: field, Reason: reason} }

// Validate checks an event submitted to the log. now is the log's clock: the
// event time may be at most an hour ahead of it.
//
// It reports the first problem found, as a *FieldError: first any field
// unknown to this schema (kept aside by protobuf decoding, which the
// encoding could not commit to), then fields in proto field-number order
// (nested messages depth first, list elements in order, map entries in
// canonical key order), and the size of the encoded event last. Within one string the order is: valid UTF-8, presence, length,
// then allowed characters. The rules are listed in ENCODING.md.
func Validate(e *provlogv1.ProvenanceEvent, now time.Time) error {
	return validate(e, now, false)
}

// ValidateSealed checks the event of a leaf, as an auditor replaying the
// log does: the rules of Validate, except that sensitive values must be
// sealed as NewLeaf requires them (no value in clear, a key_id of id
// syntax, a 32-byte commitment) instead of unsealed. now is the leaf's
// received time.
func ValidateSealed(e *provlogv1.ProvenanceEvent, now time.Time) error {
	return validate(e, now, true)
}

func validate(e *provlogv1.ProvenanceEvent, now time.Time, sealed bool) error {
	if e == nil {
		return fieldErr("event", "required")
	}
	if err := unknownFieldsError(e); err != nil {
		return err
	}
	switch v := e.GetSchemaVersion(); v {
	case SchemaVersion:
	case 0:
		return fieldErr("schema_version", "required (want "+strconv.Itoa(SchemaVersion)+")")
	default:
		return fieldErr("schema_version", "unsupported version "+strconv.FormatUint(uint64(v), 10)+" (want "+strconv.Itoa(SchemaVersion)+")")
	}
	if r := eventIDReason(e.GetEventId(), maxEventIDLen); r != "" {
		return fieldErr("event_id", r)
	}
	if r := tenantReason(e.GetTenant()); r != "" {
		return fieldErr("tenant", r)
	}

	op := e.GetOperation()
	if op == provlogv1.Operation_OPERATION_UNSPECIFIED {
		return fieldErr("operation", "required")
	}
	if _, ok := provlogv1.Operation_name[int32(op)]; !ok {
		return fieldErr("operation", "unknown value "+strconv.Itoa(int(op)))
	}
	human := op == provlogv1.Operation_OPERATION_APPROVAL || op == provlogv1.Operation_OPERATION_OVERRIDE

	if err := validateEventTime(e, now); err != nil {
		return err
	}

	a := e.GetActor()
	if a == nil {
		return fieldErr("actor", "required")
	}
	switch t := a.GetType(); {
	case t == provlogv1.ActorType_ACTOR_TYPE_UNSPECIFIED:
		return fieldErr("actor.type", "required")
	case provlogv1.ActorType_name[int32(t)] == "":
		return fieldErr("actor.type", "unknown value "+strconv.Itoa(int(t)))
	case human && t != provlogv1.ActorType_ACTOR_TYPE_PERSON:
		return fieldErr("actor.type", "must be ACTOR_TYPE_PERSON for "+op.String()+", got "+t.String())
	}
	if r := textReason(a.GetId(), 1, maxTextLen, false); r != "" {
		return fieldErr("actor.id", r)
	}
	if r := textReason(a.GetOnBehalfOf(), 0, maxTextLen, false); r != "" {
		return fieldErr("actor.on_behalf_of", r)
	}
	if r := textReason(a.GetDisplayName(), 0, maxTextLen, false); r != "" {
		return fieldErr("actor.display_name", r)
	}

	w := e.GetWorkflow()
	if w == nil {
		return fieldErr("workflow", "required")
	}
	for _, f := range [...]struct {
		name string
		v    string
		min  int
	}{
		{"workflow.platform", w.GetPlatform(), 1},
		{"workflow.platform_version", w.GetPlatformVersion(), 0},
		{"workflow.workflow_id", w.GetWorkflowId(), 0},
		{"workflow.workflow_version", w.GetWorkflowVersion(), 0},
		{"workflow.run_id", w.GetRunId(), 1},
		{"workflow.parent_run_id", w.GetParentRunId(), 0},
		{"workflow.step_id", w.GetStepId(), 0},
	} {
		if r := textReason(f.v, f.min, maxTextLen, false); r != "" {
			return fieldErr(f.name, r)
		}
	}

	inputs, outputs := e.GetInputs(), e.GetOutputs()
	switch {
	case len(inputs) == 0 && (op == provlogv1.Operation_OPERATION_READ || op == provlogv1.Operation_OPERATION_TRANSFORM):
		return fieldErr("inputs", "at least one required for "+op.String())
	case len(inputs) == 0 && len(outputs) == 0 && op == provlogv1.Operation_OPERATION_EXTERNAL_CALL:
		return fieldErr("inputs", "at least one input or output required for "+op.String())
	}
	if err := validateAssets(inputs, "inputs"); err != nil {
		return err
	}
	if len(outputs) == 0 && (op == provlogv1.Operation_OPERATION_WRITE || op == provlogv1.Operation_OPERATION_TRANSFORM) {
		return fieldErr("outputs", "at least one required for "+op.String())
	}
	if err := validateAssets(outputs, "outputs"); err != nil {
		return err
	}
	if err := validateFieldLineage(e.GetFieldLineage(), inputs, outputs); err != nil {
		return err
	}

	if r := textReason(e.GetRationale(), 0, maxRationaleLen, true); r != "" {
		return fieldErr("rationale", r)
	}
	if human && e.GetRationale() == "" {
		return fieldErr("rationale", "required for "+op.String())
	}
	if err := validateMap(e.GetEnvironment(), "environment"); err != nil {
		return err
	}
	if err := validateMap(e.GetExtensions(), "extensions"); err != nil {
		return err
	}

	subjects := e.GetSubjectEventIds()
	switch {
	case len(subjects) > maxSubjects:
		return fieldErr("subject_event_ids", tooMany(len(subjects), maxSubjects))
	case human && len(subjects) == 0:
		return fieldErr("subject_event_ids", "at least one required for "+op.String())
	}
	for i, s := range subjects {
		p := func() string { return "subject_event_ids[" + strconv.Itoa(i) + "]" }
		if r := eventIDReason(s, maxEventIDLen); r != "" {
			return fieldErr(p(), r)
		}
		if s == e.GetEventId() {
			return fieldErr(p(), "refers to the event itself")
		}
		for j := range i {
			if subjects[j] == s {
				return fieldErr(p(), "duplicate of subject_event_ids["+strconv.Itoa(j)+"]")
			}
		}
	}

	if s := e.GetSignature(); s != nil {
		if r := eventIDReason(s.GetKeyId(), maxKeyIDLen); r != "" {
			return fieldErr("signature.key_id", r)
		}
		if n := len(s.GetSignature()); n != ed25519.SignatureSize {
			return fieldErr("signature.signature", "must be "+strconv.Itoa(ed25519.SignatureSize)+" bytes (Ed25519), got "+strconv.Itoa(n))
		}
	}

	if err := validateSensitive(e, sealed); err != nil {
		return err
	}

	if n := encodedEventSize(e); n > MaxEventBytes {
		return fieldErr("event", sizeReason(n))
	}
	return nil
}

// Limits on sensitive values.
const (
	maxSensitive         = 64
	maxSensitiveNameLen  = 256
	maxSensitiveValueLen = 16 << 10
)

// validateSensitive checks the sensitive values of a submitted event: the
// log sets key_id and commitment, so they must be empty. With sealed, those
// of a leaf's event: key_id and commitment set, value empty.
func validateSensitive(e *provlogv1.ProvenanceEvent, sealed bool) error {
	ss := e.GetSensitive()
	if len(ss) == 0 {
		return nil
	}
	if len(ss) > maxSensitive {
		return fieldErr("sensitive", tooMany(len(ss), maxSensitive))
	}
	for i, s := range ss {
		p := func(f string) string { return idx("sensitive", i, f) }
		if s == nil {
			return fieldErr("sensitive["+strconv.Itoa(i)+"]", "required")
		}
		if r := textReason(s.GetName(), 1, maxSensitiveNameLen, false); r != "" {
			return fieldErr(p("name"), r)
		}
		for j := range i {
			if ss[j].GetName() == s.GetName() {
				return fieldErr(p("name"), "duplicate of sensitive["+strconv.Itoa(j)+"].name")
			}
		}
		if s.GetClassification() == "" {
			return fieldErr(p("classification"), "required")
		}
		if r := classificationReason(s.GetClassification()); r != "" {
			return fieldErr(p("classification"), r)
		}
		if sealed {
			if err := sealedValueError(i, s); err != nil {
				return err
			}
			continue
		}
		if r := textReason(s.GetValue(), 0, maxSensitiveValueLen, true); r != "" {
			return fieldErr(p("value"), r)
		}
		if s.GetKeyId() != "" {
			return fieldErr(p("key_id"), "set by the log; leave it empty")
		}
		if len(s.GetCommitment()) != 0 {
			return fieldErr(p("commitment"), "set by the log; leave it empty")
		}
	}
	if e.GetSignature() != nil {
		return fieldErr("signature", "not supported on events with sensitive values: the log commits to the values' commitments, which the submitter cannot sign")
	}
	return nil
}

func validateEventTime(e *provlogv1.ProvenanceEvent, now time.Time) error {
	t := e.GetEventTime()
	if t == nil {
		return fieldErr("event_time", "required")
	}
	if _, r := timestampNanos(t); r != "" {
		return fieldErr("event_time", r)
	}
	if t.AsTime().Sub(now) > maxFutureSkew {
		return fieldErr("event_time", "more than "+maxFutureSkew.String()+" after the log's clock")
	}
	return nil
}

func validateAssets(as []*provlogv1.Asset, list string) error {
	if len(as) > maxAssets {
		return fieldErr(list, tooMany(len(as), maxAssets))
	}
	for i, a := range as {
		p := func(f string) string { return idx(list, i, f) }
		if r := uriReason(a.GetUri()); r != "" {
			return fieldErr(p("uri"), r)
		}
		if r := textReason(a.GetVersion(), 0, maxTextLen, false); r != "" {
			return fieldErr(p("version"), r)
		}
		if r := digestReason(a.GetDigest()); r != "" {
			return fieldErr(p("digest"), r)
		}
		fields := a.GetFields()
		if len(fields) > maxFields {
			return fieldErr(p("fields"), tooMany(len(fields), maxFields))
		}
		for j, f := range fields {
			pf := func() string { return p("fields[" + strconv.Itoa(j) + "]") }
			if r := textReason(f, 1, maxFieldLen, false); r != "" {
				return fieldErr(pf(), r)
			}
			if k := indexOf(fields[:j], f); k >= 0 {
				return fieldErr(pf(), "duplicate of fields["+strconv.Itoa(k)+"]")
			}
		}
		if r := classificationReason(a.GetClassification()); r != "" {
			return fieldErr(p("classification"), r)
		}
		if r := textReason(a.GetRecordKey(), 0, maxTextLen, false); r != "" {
			return fieldErr(p("record_key"), r)
		}
	}
	return nil
}

// indexOf returns the index of s in list, or -1. Lists here are at most a
// few hundred short strings, and usually a handful: a linear scan beats
// building a map.
func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func hasURI(as []*provlogv1.Asset, set map[string]bool, uri string) bool {
	if set != nil {
		return set[uri]
	}
	for _, a := range as {
		if a.GetUri() == uri {
			return true
		}
	}
	return false
}

// uriSet indexes the URIs of as when there are enough of them, and enough
// lookups, for a map to pay; otherwise it returns nil and hasURI scans.
func uriSet(as []*provlogv1.Asset, lookups int) map[string]bool {
	if len(as) <= 8 || len(as)*lookups <= 256 {
		return nil
	}
	set := make(map[string]bool, len(as))
	for _, a := range as {
		set[a.GetUri()] = true
	}
	return set
}

func validateFieldLineage(fls []*provlogv1.FieldLineage, inputs, outputs []*provlogv1.Asset) error {
	if len(fls) == 0 {
		return nil
	}
	if len(fls) > maxFieldLineage {
		return fieldErr("field_lineage", tooMany(len(fls), maxFieldLineage))
	}
	nsrc := 0
	for _, fl := range fls {
		nsrc += len(fl.GetSources())
	}
	inSet, outSet := uriSet(inputs, nsrc), uriSet(outputs, len(fls))
	for i, fl := range fls {
		p := func(f string) string { return idx("field_lineage", i, f) }
		if r := textReason(fl.GetOutputUri(), 1, maxURILen, false); r != "" {
			return fieldErr(p("output_uri"), r)
		}
		if !hasURI(outputs, outSet, fl.GetOutputUri()) {
			return fieldErr(p("output_uri"), "matches no output uri")
		}
		if r := textReason(fl.GetOutputField(), 1, maxFieldLen, false); r != "" {
			return fieldErr(p("output_field"), r)
		}
		srcs := fl.GetSources()
		if len(srcs) > maxSources {
			return fieldErr(p("sources"), tooMany(len(srcs), maxSources))
		}
		for j, s := range srcs {
			ps := func(f string) string { return p("sources[" + strconv.Itoa(j) + "]." + f) }
			if r := textReason(s.GetUri(), 1, maxURILen, false); r != "" {
				return fieldErr(ps("uri"), r)
			}
			if !hasURI(inputs, inSet, s.GetUri()) {
				return fieldErr(ps("uri"), "matches no input uri")
			}
			if r := textReason(s.GetField(), 0, maxFieldLen, false); r != "" {
				return fieldErr(ps("field"), r)
			}
		}
		if r := textReason(fl.GetTransformation(), 0, maxTextLen, false); r != "" {
			return fieldErr(p("transformation"), r)
		}
	}
	return nil
}

// validateMap reports the problem with the entry that comes first in
// canonical key order, so the answer does not depend on map iteration order.
func validateMap(m map[string]string, name string) error {
	if len(m) > maxMapEntries {
		return fieldErr(name, "too many entries: "+strconv.Itoa(len(m))+" (max "+strconv.Itoa(maxMapEntries)+")")
	}
	var badKey, reason string
	for k, v := range m {
		if reason != "" && !keyLess(k, badKey) {
			continue
		}
		if r := textReason(k, 1, maxMapKeyLen, false); r != "" {
			badKey, reason = k, "key: "+r
		} else if r := textReason(v, 0, maxMapValueLen, false); r != "" {
			badKey, reason = k, r
		}
	}
	if reason != "" {
		return fieldErr(mapPath(name, badKey), reason)
	}
	return nil
}

// textReason checks a string: valid UTF-8, at least min and at most max
// bytes, and no control characters (C0, DEL, C1) except, when multiline,
// newline and tab. It returns why s fails, or "".
func textReason(s string, min, max int, multiline bool) string {
	ctl := rune(-1)
	for i := 0; i < len(s); {
		// Skip 8 bytes at a time while they are printable ASCII: no byte
		// with the high bit set, below 0x20, or equal to 0x7f.
		for i+8 <= len(s) {
			w := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
			const lo, hi = 0x0101010101010101, 0x8080808080808080
			if (w|(w-0x20*lo)|((w^0x7f*lo)-lo)&^(w^0x7f*lo))&hi != 0 {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if (c < 0x20 || c == 0x7f) && ctl < 0 && !(multiline && (c == '\n' || c == '\t')) {
				ctl = rune(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "invalid UTF-8"
		}
		if r <= 0x9f && ctl < 0 {
			ctl = r
		}
		i += size
	}
	switch {
	case len(s) < min:
		return "required"
	case len(s) > max:
		return tooLong(len(s), max)
	case ctl >= 0:
		return "contains control character " + runeName(ctl)
	}
	return ""
}

func tooLong(n, max int) string {
	return "too long: " + strconv.Itoa(n) + " bytes (max " + strconv.Itoa(max) + ")"
}

func tooMany(n, max int) string {
	return "too many: " + strconv.Itoa(n) + " (max " + strconv.Itoa(max) + ")"
}

func runeName(r rune) string {
	const hex = "0123456789ABCDEF"
	return "U+" + string([]byte{hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf]})
}

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '/' || c == '@' || c == '+' || c == '=' || c == '-'
}

// eventIDReason checks the event id syntax, also used for subject event ids
// and signature key ids: 1..max bytes of [A-Za-z0-9._:/@+=-].
func eventIDReason(s string, max int) string {
	if r := textReason(s, 1, max, false); r != "" {
		return r
	}
	for i := 0; i < len(s); i++ {
		if !isIDByte(s[i]) {
			return "invalid character " + charName(s, i) + " (allowed: A-Z a-z 0-9 . _ : / @ + = -)"
		}
	}
	return ""
}

// tenantReason checks a tenant name: 1..64 bytes of [a-z0-9][a-z0-9._-]*.
func tenantReason(s string) string {
	if r := textReason(s, 1, maxTenantLen, false); r != "" {
		return r
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		return "invalid character " + charName(s, i) + " (want [a-z0-9][a-z0-9._-]*)"
	}
	return ""
}

// classificationReason checks an optional classification label:
// [a-z][a-z0-9_-]{0,31}.
func classificationReason(s string) string {
	if r := textReason(s, 0, maxClassification, false); r != "" {
		return r
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || i > 0 && ('0' <= c && c <= '9' || c == '_' || c == '-') {
			continue
		}
		return "invalid character " + charName(s, i) + " (want [a-z][a-z0-9_-]{0,31})"
	}
	return ""
}

// charName quotes the character at byte i of the valid UTF-8 string s.
func charName(s string, i int) string {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return strconv.QuoteRune(r) + " at byte " + strconv.Itoa(i)
}

const digestWant = "malformed digest: want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"

// digestReason checks an optional content digest: "sha256:" and 64, or
// "sha512:" and 128, lower-case hex digits.
func digestReason(s string) string {
	if s == "" {
		return ""
	}
	var hexLen int
	switch {
	case len(s) > 7 && s[:7] == "sha256:":
		hexLen = 64
	case len(s) > 7 && s[:7] == "sha512:":
		hexLen = 128
	default:
		return digestWant
	}
	h := s[7:]
	if len(h) != hexLen {
		return digestWant
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return digestWant
		}
	}
	return ""
}

// uriReason checks an asset URI: 1..2048 bytes, no control characters or
// white space, and an absolute URI (RFC 3986, with a scheme) as net/url
// parses it.
func uriReason(s string) string {
	if r := textReason(s, 1, maxURILen, false); r != "" {
		return r
	}
	// ASCII white space other than ' ' is a control character, which
	// textReason has already refused.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ' ' {
			return "contains white space U+0020 at byte " + strconv.Itoa(i)
		} else if c >= utf8.RuneSelf {
			if r, _ := utf8.DecodeRuneInString(s[i:]); unicode.IsSpace(r) {
				return "contains white space " + runeName(r) + " at byte " + strconv.Itoa(i)
			}
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "not a valid URI: " + err.Error()
	}
	if u.Scheme == "" {
		return "not an absolute URI: no scheme"
	}
	return ""
}

// idx names field of element i of a repeated message field: "inputs[2].uri".
// Paths are built only once there is an error to report.
func idx(list string, i int, field string) string {
	return list + "[" + strconv.Itoa(i) + "]." + field
}

// unknownFieldsError reports a message of e that carries fields this schema
// does not know, which protobuf decoding keeps aside instead of failing.
// The encoding has no place for them: accepting the event would commit to
// less than was sent, and a submitter's signature over it would not verify.
func unknownFieldsError(e *provlogv1.ProvenanceEvent) error {
	check := func(m protoreflect.ProtoMessage, path func() string) error {
		if m == nil {
			return nil
		}
		u := m.ProtoReflect().GetUnknown()
		if len(u) == 0 {
			return nil
		}
		reason := "unknown field"
		if num, _, n := protowire.ConsumeTag(u); n > 0 {
			reason += " " + strconv.Itoa(int(num))
		}
		return fieldErr(path(), reason+" (not in schema version "+strconv.Itoa(SchemaVersion)+")")
	}
	name := func(s string) func() string { return func() string { return s } }
	if err := check(e, name("event")); err != nil {
		return err
	}
	if t := e.GetEventTime(); t != nil {
		if err := check(t, name("event_time")); err != nil {
			return err
		}
	}
	if a := e.GetActor(); a != nil {
		if err := check(a, name("actor")); err != nil {
			return err
		}
	}
	if w := e.GetWorkflow(); w != nil {
		if err := check(w, name("workflow")); err != nil {
			return err
		}
	}
	for _, list := range [...]struct {
		name   string
		assets []*provlogv1.Asset
	}{{"inputs", e.GetInputs()}, {"outputs", e.GetOutputs()}} {
		for i, a := range list.assets {
			if a == nil {
				continue
			}
			if err := check(a, func() string { return list.name + "[" + strconv.Itoa(i) + "]" }); err != nil {
				return err
			}
		}
	}
	for i, fl := range e.GetFieldLineage() {
		if fl == nil {
			continue
		}
		if err := check(fl, func() string { return "field_lineage[" + strconv.Itoa(i) + "]" }); err != nil {
			return err
		}
		for j, s := range fl.GetSources() {
			if s == nil {
				continue
			}
			if err := check(s, func() string { return idx("field_lineage", i, "sources["+strconv.Itoa(j)+"]") }); err != nil {
				return err
			}
		}
	}
	if s := e.GetSignature(); s != nil {
		if err := check(s, name("signature")); err != nil {
			return err
		}
	}
	for i, s := range e.GetSensitive() {
		if s == nil {
			continue
		}
		if err := check(s, func() string { return "sensitive[" + strconv.Itoa(i) + "]" }); err != nil {
			return err
		}
	}
	return nil
}
