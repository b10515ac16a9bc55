package event

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

const (
	opRead     = provlogv1.Operation_OPERATION_READ
	opWrite    = provlogv1.Operation_OPERATION_WRITE
	opTrans    = provlogv1.Operation_OPERATION_TRANSFORM
	opExt      = provlogv1.Operation_OPERATION_EXTERNAL_CALL
	opApproval = provlogv1.Operation_OPERATION_APPROVAL
	opOverride = provlogv1.Operation_OPERATION_OVERRIDE
	opStart    = provlogv1.Operation_OPERATION_RUN_START
	opComplete = provlogv1.Operation_OPERATION_RUN_COMPLETE
	opFail     = provlogv1.Operation_OPERATION_RUN_FAIL
)

// fe is the expected error; nil means valid.
type fe = *FieldError

func want(field, reason string) fe { return &FieldError{Field: field, Reason: reason} }

func assets(n int, prefix string) []*provlogv1.Asset {
	as := make([]*provlogv1.Asset, n)
	for i := range as {
		as[i] = &provlogv1.Asset{Uri: fmt.Sprintf("%s://b/%d", prefix, i)}
	}
	return as
}

func strs(n int, f func(i int) string) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = f(i)
	}
	return s
}

func bigMap(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%03d", i)] = "v"
	}
	return m
}

const digestReasonWant = "malformed digest: want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"

func TestValidate(t *testing.T) {
	hex64 := strings.Repeat("ab", 32)
	hex128 := strings.Repeat("cd", 64)
	tests := []struct {
		name string
		op   provlogv1.Operation
		edit func(e *provlogv1.ProvenanceEvent)
		want fe
	}{
		// Every operation's minimal event is valid.
		{name: "read ok", op: opRead},
		{name: "write ok", op: opWrite},
		{name: "transform ok", op: opTrans},
		{name: "external call ok", op: opExt},
		{name: "approval ok", op: opApproval},
		{name: "override ok", op: opOverride},
		{name: "run start ok", op: opStart},
		{name: "run complete ok", op: opComplete},
		{name: "run fail ok", op: opFail},
		{name: "typical ok", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) { *e = *typicalEvent() }},

		// schema_version
		{name: "schema unset", edit: func(e *provlogv1.ProvenanceEvent) { e.SchemaVersion = 0 }, want: want("schema_version", "required (want 1)")},
		{name: "schema 2", edit: func(e *provlogv1.ProvenanceEvent) { e.SchemaVersion = 2 }, want: want("schema_version", "unsupported version 2 (want 1)")},

		// event_id
		{name: "event_id empty", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "" }, want: want("event_id", "required")},
		{name: "event_id 128", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = n("x", 128) }},
		{name: "event_id 129", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = n("x", 129) }, want: want("event_id", "too long: 129 bytes (max 128)")},
		{name: "event_id all allowed", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "AZaz09._:/@+=-" }},
		{name: "event_id space", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "evt 1" }, want: want("event_id", "invalid character ' ' at byte 3 (allowed: A-Z a-z 0-9 . _ : / @ + = -)")},
		{name: "event_id non-ascii", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "évt" }, want: want("event_id", "invalid character 'é' at byte 0 (allowed: A-Z a-z 0-9 . _ : / @ + = -)")},
		{name: "event_id hash", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "run#5" }, want: want("event_id", "invalid character '#' at byte 3 (allowed: A-Z a-z 0-9 . _ : / @ + = -)")},
		{name: "event_id bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "evt\xff" }, want: want("event_id", "invalid UTF-8")},
		{name: "event_id NUL", edit: func(e *provlogv1.ProvenanceEvent) { e.EventId = "evt\x00" }, want: want("event_id", "contains control character U+0000")},

		// tenant
		{name: "tenant empty", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = "" }, want: want("tenant", "required")},
		{name: "tenant all allowed", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = "0a.b_c-9" }},
		{name: "tenant 64", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = n("t", 64) }},
		{name: "tenant 65", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = n("t", 65) }, want: want("tenant", "too long: 65 bytes (max 64)")},
		{name: "tenant upper", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = "Acme" }, want: want("tenant", "invalid character 'A' at byte 0 (want [a-z0-9][a-z0-9._-]*)")},
		{name: "tenant leading dash", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = "-acme" }, want: want("tenant", "invalid character '-' at byte 0 (want [a-z0-9][a-z0-9._-]*)")},
		{name: "tenant slash", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = "acme/eu" }, want: want("tenant", "invalid character '/' at byte 4 (want [a-z0-9][a-z0-9._-]*)")},
		{name: "tenant bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.Tenant = "\xc3" }, want: want("tenant", "invalid UTF-8")},

		// operation
		{name: "operation unset", edit: func(e *provlogv1.ProvenanceEvent) { e.Operation = 0 }, want: want("operation", "required")},
		{name: "operation 42", edit: func(e *provlogv1.ProvenanceEvent) { e.Operation = 42 }, want: want("operation", "unknown value 42")},
		{name: "operation -1", edit: func(e *provlogv1.ProvenanceEvent) { e.Operation = -1 }, want: want("operation", "unknown value -1")},

		// event_time
		{name: "event_time unset", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime = nil }, want: want("event_time", "required")},
		{name: "event_time epoch", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime = &timestamppb.Timestamp{} }, want: want("event_time", "must be after 1970-01-01T00:00:00Z")},
		{name: "event_time 1ns", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime = &timestamppb.Timestamp{Nanos: 1} }},
		{name: "event_time 1969", edit: func(e *provlogv1.ProvenanceEvent) {
			e.EventTime = timestamppb.New(time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC))
		}, want: want("event_time", "must be after 1970-01-01T00:00:00Z")},
		{name: "event_time negative nanos", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime.Nanos = -1 }, want: want("event_time", "invalid timestamp: nanos -1 out of range [0, 999999999]")},
		{name: "event_time nanos 1e9", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime.Nanos = 1e9 }, want: want("event_time", "invalid timestamp: nanos 1000000000 out of range [0, 999999999]")},
		{name: "event_time beyond int64", edit: func(e *provlogv1.ProvenanceEvent) {
			e.EventTime = &timestamppb.Timestamp{Seconds: math.MaxInt64 / 1_000_000_000, Nanos: 854775808}
		}, want: want("event_time", "after 2262-04-11T23:47:16.854775807Z, the end of the int64 nanosecond range")},
		{name: "event_time year 9999", edit: func(e *provlogv1.ProvenanceEvent) {
			e.EventTime = timestamppb.New(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
		}, want: want("event_time", "after 2262-04-11T23:47:16.854775807Z, the end of the int64 nanosecond range")},
		{name: "event_time now+1h", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime = timestamppb.New(testNow.Add(time.Hour)) }},
		{name: "event_time now+1h+1ns", edit: func(e *provlogv1.ProvenanceEvent) {
			e.EventTime = timestamppb.New(testNow.Add(time.Hour + 1))
		}, want: want("event_time", "more than 1h0m0s after the log's clock")},
		{name: "event_time 1971", edit: func(e *provlogv1.ProvenanceEvent) { e.EventTime = timestamppb.New(time.Unix(365*86400, 0)) }},

		// actor
		{name: "actor unset", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor = nil }, want: want("actor", "required")},
		{name: "actor empty", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor = &provlogv1.Actor{} }, want: want("actor.type", "required")},
		{name: "actor.type 9", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Type = 9 }, want: want("actor.type", "unknown value 9")},
		{name: "actor.id empty", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Id = "" }, want: want("actor.id", "required")},
		{name: "actor.id bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Id = "jane\xe2\x28\xa1" }, want: want("actor.id", "invalid UTF-8")},
		{name: "actor.id 1024", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Id = n("i", 1024) }},
		{name: "actor.id 1025", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Id = n("i", 1025) }, want: want("actor.id", "too long: 1025 bytes (max 1024)")},
		{name: "actor.id multibyte length in bytes", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Id = n("é", 513) }, want: want("actor.id", "too long: 1026 bytes (max 1024)")},
		{name: "actor.on_behalf_of DEL", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.OnBehalfOf = "a\x7fb" }, want: want("actor.on_behalf_of", "contains control character U+007F")},
		{name: "actor.display_name C1", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.DisplayName = "a\u0085b" }, want: want("actor.display_name", "contains control character U+0085")},
		{name: "actor.display_name newline", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.DisplayName = "a\nb" }, want: want("actor.display_name", "contains control character U+000A")},
		{name: "actor.display_name unicode ok", edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.DisplayName = "Zoë 👩‍💼 承認" }},

		// workflow
		{name: "workflow unset", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow = nil }, want: want("workflow", "required")},
		{name: "workflow.platform empty", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.Platform = "" }, want: want("workflow.platform", "required")},
		{name: "workflow.run_id empty", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.RunId = "" }, want: want("workflow.run_id", "required")},
		{name: "workflow.platform_version long", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.PlatformVersion = n("v", 1025) }, want: want("workflow.platform_version", "too long: 1025 bytes (max 1024)")},
		{name: "workflow.workflow_id tab", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.WorkflowId = "a\tb" }, want: want("workflow.workflow_id", "contains control character U+0009")},
		{name: "workflow.workflow_version bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.WorkflowVersion = "\xed\xa0\x80" }, want: want("workflow.workflow_version", "invalid UTF-8")},
		{name: "workflow.parent_run_id NUL", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.ParentRunId = "\x00" }, want: want("workflow.parent_run_id", "contains control character U+0000")},
		{name: "workflow.step_id bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.Workflow.StepId = "\x80" }, want: want("workflow.step_id", "invalid UTF-8")},

		// Per-operation requirements.
		{name: "read without inputs", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs = nil }, want: want("inputs", "at least one required for OPERATION_READ")},
		{name: "read with outputs only", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs, e.Outputs = nil, assets(1, "s3") }, want: want("inputs", "at least one required for OPERATION_READ")},
		{name: "write without outputs", op: opWrite, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs = []*provlogv1.Asset{} }, want: want("outputs", "at least one required for OPERATION_WRITE")},
		{name: "transform without inputs", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs = nil }, want: want("inputs", "at least one required for OPERATION_TRANSFORM")},
		{name: "transform without outputs", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs = nil }, want: want("outputs", "at least one required for OPERATION_TRANSFORM")},
		{name: "external call with neither", op: opExt, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs = nil }, want: want("inputs", "at least one input or output required for OPERATION_EXTERNAL_CALL")},
		{name: "external call with inputs only", op: opExt, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs, e.Outputs = assets(1, "s3"), nil }},
		{name: "run start with assets", op: opStart, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs, e.Outputs = assets(2, "s3"), assets(1, "gs") }},
		{name: "approval by service", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Type = provlogv1.ActorType_ACTOR_TYPE_SERVICE }, want: want("actor.type", "must be ACTOR_TYPE_PERSON for OPERATION_APPROVAL, got ACTOR_TYPE_SERVICE")},
		{name: "override by agent", op: opOverride, edit: func(e *provlogv1.ProvenanceEvent) { e.Actor.Type = provlogv1.ActorType_ACTOR_TYPE_AGENT }, want: want("actor.type", "must be ACTOR_TYPE_PERSON for OPERATION_OVERRIDE, got ACTOR_TYPE_AGENT")},
		{name: "approval without rationale", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "" }, want: want("rationale", "required for OPERATION_APPROVAL")},
		{name: "override without rationale", op: opOverride, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "" }, want: want("rationale", "required for OPERATION_OVERRIDE")},
		{name: "approval without subjects", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = nil }, want: want("subject_event_ids", "at least one required for OPERATION_APPROVAL")},
		{name: "override without subjects", op: opOverride, edit: func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = []string{} }, want: want("subject_event_ids", "at least one required for OPERATION_OVERRIDE")},
		{name: "rationale on a run start", op: opStart, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "manual rerun" }},

		// Assets.
		{name: "inputs 256", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs = assets(256, "s3") }},
		{name: "inputs 257", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs = assets(257, "s3") }, want: want("inputs", "too many: 257 (max 256)")},
		{name: "outputs 257", op: opWrite, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs = assets(257, "s3") }, want: want("outputs", "too many: 257 (max 256)")},
		{name: "nil asset", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs = append(e.Inputs, nil) }, want: want("inputs[1].uri", "required")},
		{name: "uri empty", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "" }, want: want("inputs[0].uri", "required")},
		{name: "uri relative", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "data/in.csv" }, want: want("inputs[0].uri", "not an absolute URI: no scheme")},
		{name: "uri host only", op: opWrite, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs[0].Uri = "//host/path" }, want: want("outputs[0].uri", "not an absolute URI: no scheme")},
		{name: "uri space", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "s3://bucket/a b" }, want: want("inputs[0].uri", "contains white space U+0020 at byte 13")},
		{name: "uri nbsp", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "s3://bucket/a\u00a0b" }, want: want("inputs[0].uri", "contains white space U+00A0 at byte 13")},
		{name: "uri tab", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "s3://bucket/a\tb" }, want: want("inputs[0].uri", "contains control character U+0009")},
		{name: "uri bad host", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "http://[::1/x" }, want: want("inputs[0].uri", "not a valid URI: missing ']' in host")},
		{name: "uri bad escape", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "http://h/%zz" }, want: want("inputs[0].uri", `not a valid URI: invalid URL escape "%zz"`)},
		{name: "uri bad utf8", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "s3://b/\xff" }, want: want("inputs[0].uri", "invalid UTF-8")},
		{name: "uri 2048", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "s3://b/" + n("k", 2041) }},
		{name: "uri 2049", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "s3://b/" + n("k", 2042) }, want: want("inputs[0].uri", "too long: 2049 bytes (max 2048)")},
		{name: "uri urn ok", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "urn:isbn:0451450523" }},
		{name: "uri unicode ok", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Uri = "file:///données/é.csv" }},
		{name: "version long", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Version = n("v", 1025) }, want: want("inputs[0].version", "too long: 1025 bytes (max 1024)")},
		{name: "digest sha256 ok", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha256:" + hex64 }},
		{name: "digest sha512 ok", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha512:" + hex128 }},
		{name: "digest upper hex", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha256:" + strings.ToUpper(hex64) }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest upper algorithm", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "SHA256:" + hex64 }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest short", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha256:" + hex64[:63] }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest long", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha256:" + hex64 + "0" }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest sha512 with 64 hex", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha512:" + hex64 }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest unknown algorithm", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "md5:" + hex64[:32] }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest sha1", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha1:" + hex64[:40] }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest missing colon", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha256" + hex64 }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest bare hex", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = hex64 }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest non-hex", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Digest = "sha256:" + n("g", 64) }, want: want("inputs[0].digest", digestReasonWant)},
		{name: "digest prefix only", op: opWrite, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs[0].Digest = "sha256:" }, want: want("outputs[0].digest", digestReasonWant)},
		{name: "fields 256", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Inputs[0].Fields = strs(256, func(i int) string { return fmt.Sprint("f", i) })
		}},
		{name: "fields 257", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Inputs[0].Fields = strs(257, func(i int) string { return fmt.Sprint("f", i) })
		}, want: want("inputs[0].fields", "too many: 257 (max 256)")},
		{name: "field empty", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Fields = []string{"a", ""} }, want: want("inputs[0].fields[1]", "required")},
		{name: "field 257 bytes", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Fields = []string{n("f", 257)} }, want: want("inputs[0].fields[0]", "too long: 257 bytes (max 256)")},
		{name: "field duplicate", op: opWrite, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs[0].Fields = []string{"a", "b", "c", "b"} }, want: want("outputs[0].fields[3]", "duplicate of fields[1]")},
		{name: "field duplicate of first", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Fields = []string{"a", "a"} }, want: want("inputs[0].fields[1]", "duplicate of fields[0]")},
		{name: "field bad utf8", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Fields = []string{"ok", "n\xe9"} }, want: want("inputs[0].fields[1]", "invalid UTF-8")},
		{name: "field control", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Fields = []string{"a\rb"} }, want: want("inputs[0].fields[0]", "contains control character U+000D")},
		{name: "classification ok", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Classification = "pii_v2-eu" }},
		{name: "classification 32", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Classification = n("c", 32) }},
		{name: "classification 33", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Classification = n("c", 33) }, want: want("inputs[0].classification", "too long: 33 bytes (max 32)")},
		{name: "classification upper", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Classification = "PII" }, want: want("inputs[0].classification", "invalid character 'P' at byte 0 (want [a-z][a-z0-9_-]{0,31})")},
		{name: "classification digit first", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Classification = "1pii" }, want: want("inputs[0].classification", "invalid character '1' at byte 0 (want [a-z][a-z0-9_-]{0,31})")},
		{name: "classification dot", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs[0].Classification = "pii.eu" }, want: want("inputs[0].classification", "invalid character '.' at byte 3 (want [a-z][a-z0-9_-]{0,31})")},
		{name: "record_key long", op: opWrite, edit: func(e *provlogv1.ProvenanceEvent) { e.Outputs[0].RecordKey = n("r", 1025) }, want: want("outputs[0].record_key", "too long: 1025 bytes (max 1024)")},
		{name: "duplicate asset uris ok", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Inputs = []*provlogv1.Asset{{Uri: "crm://acme/contacts", RecordKey: "1"}, {Uri: "crm://acme/contacts", RecordKey: "2"}}
		}},
		{name: "second input checked", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) { e.Inputs = append(e.Inputs, &provlogv1.Asset{Uri: "x"}) }, want: want("inputs[1].uri", "not an absolute URI: no scheme")},

		// Field lineage.
		{name: "lineage ok", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "x", Sources: []*provlogv1.FieldRef{{Uri: e.Inputs[0].Uri, Field: "y"}, {Uri: e.Inputs[0].Uri}}}}
		}},
		{name: "lineage without sources ok", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "created_at", Transformation: "now()"}}
		}},
		{name: "lineage output_uri empty", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputField: "x"}}
		}, want: want("field_lineage[0].output_uri", "required")},
		{name: "lineage output_uri unknown", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "x"}, {OutputUri: e.Inputs[0].Uri, OutputField: "x"}}
		}, want: want("field_lineage[1].output_uri", "matches no output uri")},
		{name: "lineage output_field empty", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri}}
		}, want: want("field_lineage[0].output_field", "required")},
		{name: "lineage source unknown", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "x", Sources: []*provlogv1.FieldRef{{Uri: e.Inputs[0].Uri}, {Uri: e.Outputs[0].Uri, Field: "y"}}}}
		}, want: want("field_lineage[0].sources[1].uri", "matches no input uri")},
		{name: "lineage source uri empty", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "x", Sources: []*provlogv1.FieldRef{{Field: "y"}}}}
		}, want: want("field_lineage[0].sources[0].uri", "required")},
		{name: "lineage source field bad utf8", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "x", Sources: []*provlogv1.FieldRef{{Uri: e.Inputs[0].Uri, Field: "\xfe"}}}}
		}, want: want("field_lineage[0].sources[0].field", "invalid UTF-8")},
		{name: "lineage transformation long", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "x", Transformation: n("t", 1025)}}
		}, want: want("field_lineage[0].transformation", "too long: 1025 bytes (max 1024)")},
		{name: "lineage 257 entries", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			for i := range 257 {
				e.FieldLineage = append(e.FieldLineage, &provlogv1.FieldLineage{OutputUri: e.Outputs[0].Uri, OutputField: fmt.Sprint("f", i)})
			}
		}, want: want("field_lineage", "too many: 257 (max 256)")},
		{name: "lineage 257 sources", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			fl := &provlogv1.FieldLineage{OutputUri: e.Outputs[0].Uri, OutputField: "x"}
			for range 257 {
				fl.Sources = append(fl.Sources, &provlogv1.FieldRef{Uri: e.Inputs[0].Uri})
			}
			e.FieldLineage = []*provlogv1.FieldLineage{fl}
		}, want: want("field_lineage[0].sources", "too many: 257 (max 256)")},
		{name: "lineage over many assets ok", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			// Enough assets and references for the lookups to use a map.
			e.Inputs, e.Outputs = assets(50, "in"), assets(50, "out")
			for i := range 50 {
				e.FieldLineage = append(e.FieldLineage, &provlogv1.FieldLineage{OutputUri: e.Outputs[49-i].Uri, OutputField: "f", Sources: []*provlogv1.FieldRef{{Uri: e.Inputs[i].Uri}}})
			}
		}},
		{name: "lineage over many assets unknown", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Inputs, e.Outputs = assets(50, "in"), assets(50, "out")
			for i := range 50 {
				e.FieldLineage = append(e.FieldLineage, &provlogv1.FieldLineage{OutputUri: e.Outputs[i].Uri, OutputField: "f", Sources: []*provlogv1.FieldRef{{Uri: e.Inputs[i].Uri}}})
			}
			e.FieldLineage[30].Sources[0].Uri = "in://b/50"
		}, want: want("field_lineage[30].sources[0].uri", "matches no input uri")},

		// Rationale.
		{name: "rationale multiline ok", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "line 1\n\tline 2\n" }},
		{name: "rationale CR", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "line 1\r\nline 2" }, want: want("rationale", "contains control character U+000D")},
		{name: "rationale NUL", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "ok\x00" }, want: want("rationale", "contains control character U+0000")},
		{name: "rationale 4096", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = n("r", 4096) }},
		{name: "rationale 4097", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = n("r", 4097) }, want: want("rationale", "too long: 4097 bytes (max 4096)")},
		{name: "rationale bad utf8", op: opOverride, edit: func(e *provlogv1.ProvenanceEvent) { e.Rationale = "ok\xc0\xaf" }, want: want("rationale", "invalid UTF-8")},

		// Maps.
		{name: "environment 64", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = bigMap(64) }},
		{name: "environment 65", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = bigMap(65) }, want: want("environment", "too many entries: 65 (max 64)")},
		{name: "extensions 65", edit: func(e *provlogv1.ProvenanceEvent) { e.Extensions = bigMap(65) }, want: want("extensions", "too many entries: 65 (max 64)")},
		{name: "environment empty key", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{"": "v"} }, want: want(`environment[""]`, "key: required")},
		{name: "environment key 128", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{n("k", 128): "v"} }},
		{name: "environment key 129", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{n("k", 129): "v"} }, want: want(`environment["`+n("k", 129)+`"]`, "key: too long: 129 bytes (max 128)")},
		{name: "environment key bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{"h\xffst": "v"} }, want: want(`environment["h\xffst"]`, "key: invalid UTF-8")},
		{name: "environment key control", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{"a\nb": "v"} }, want: want(`environment["a\nb"]`, "key: contains control character U+000A")},
		{name: "environment empty value ok", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{"k": ""} }},
		{name: "environment value 4096", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{"k": n("v", 4096)} }},
		{name: "environment value 4097", edit: func(e *provlogv1.ProvenanceEvent) { e.Environment = map[string]string{"k": n("v", 4097)} }, want: want(`environment["k"]`, "too long: 4097 bytes (max 4096)")},
		{name: "extensions value bad utf8", edit: func(e *provlogv1.ProvenanceEvent) { e.Extensions = map[string]string{"k": "\xff"} }, want: want(`extensions["k"]`, "invalid UTF-8")},
		{name: "extensions value control", edit: func(e *provlogv1.ProvenanceEvent) { e.Extensions = map[string]string{"k": "a\x1bb"} }, want: want(`extensions["k"]`, "contains control character U+001B")},
		{name: "environment first bad entry in key order", edit: func(e *provlogv1.ProvenanceEvent) {
			// Canonical order: "b" < "aa" < "ccc"; the error is about "b"
			// whatever order the map iterates in.
			e.Environment = map[string]string{"ccc": "\x00", "aa": "\x00", "b": "\x00", "ok": "ok"}
		}, want: want(`environment["b"]`, "contains control character U+0000")},

		// Subject event ids.
		{name: "subjects 64", edit: func(e *provlogv1.ProvenanceEvent) {
			e.SubjectEventIds = strs(64, func(i int) string { return fmt.Sprint("s", i) })
		}},
		{name: "subjects 65", edit: func(e *provlogv1.ProvenanceEvent) {
			e.SubjectEventIds = strs(65, func(i int) string { return fmt.Sprint("s", i) })
		}, want: want("subject_event_ids", "too many: 65 (max 64)")},
		{name: "subject bad syntax", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = []string{"evt-0", "evt 2"} }, want: want("subject_event_ids[1]", "invalid character ' ' at byte 3 (allowed: A-Z a-z 0-9 . _ : / @ + = -)")},
		{name: "subject empty", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = []string{""} }, want: want("subject_event_ids[0]", "required")},
		{name: "subject self", op: opApproval, edit: func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = []string{e.EventId} }, want: want("subject_event_ids[0]", "refers to the event itself")},
		{name: "subject duplicate", op: opOverride, edit: func(e *provlogv1.ProvenanceEvent) { e.SubjectEventIds = []string{"a", "b", "a"} }, want: want("subject_event_ids[2]", "duplicate of subject_event_ids[0]")},

		// Signature.
		{name: "signature ok", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "acme/key-1", Signature: make([]byte, 64)}
		}},
		{name: "signature empty", edit: func(e *provlogv1.ProvenanceEvent) { e.Signature = &provlogv1.SubmitterSignature{} }, want: want("signature.key_id", "required")},
		{name: "signature key_id 129", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: n("k", 129), Signature: make([]byte, 64)}
		}, want: want("signature.key_id", "too long: 129 bytes (max 128)")},
		{name: "signature key_id space", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "key 1", Signature: make([]byte, 64)}
		}, want: want("signature.key_id", "invalid character ' ' at byte 3 (allowed: A-Z a-z 0-9 . _ : / @ + = -)")},
		{name: "signature missing", edit: func(e *provlogv1.ProvenanceEvent) { e.Signature = &provlogv1.SubmitterSignature{KeyId: "k"} }, want: want("signature.signature", "must be 64 bytes (Ed25519), got 0")},
		{name: "signature 63 bytes", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "k", Signature: make([]byte, 63)}
		}, want: want("signature.signature", "must be 64 bytes (Ed25519), got 63")},
		{name: "signature 65 bytes", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "k", Signature: make([]byte, 65)}
		}, want: want("signature.signature", "must be 64 bytes (Ed25519), got 65")},

		// Size, checked last.
		{name: "oversized", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Extensions = map[string]string{}
			for i := range 16 {
				e.Extensions[fmt.Sprint("k", i)] = n("v", 4096)
			}
		}, want: want("event", "encoded size 65695 exceeds 65536 bytes")},
		{name: "oversized reported after field errors", edit: func(e *provlogv1.ProvenanceEvent) {
			e.Extensions = map[string]string{}
			for i := range 16 {
				e.Extensions[fmt.Sprint("k", i)] = n("v", 4096)
			}
			e.Signature = &provlogv1.SubmitterSignature{KeyId: "k"}
		}, want: want("signature.signature", "must be 64 bytes (Ed25519), got 0")},

		// Fields from a newer schema, which protobuf decoding keeps aside.
		{name: "unknown event field", edit: func(e *provlogv1.ProvenanceEvent) {
			e.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 16, protowire.VarintType), 1))
		}, want: want("event", "unknown field 16 (not in schema version 1)")},
		{name: "unknown asset field", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Inputs = append(e.Inputs, &provlogv1.Asset{Uri: "s3://b/2"})
			e.Inputs[1].ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 7, protowire.BytesType), "x"))
		}, want: want("inputs[1]", "unknown field 7 (not in schema version 1)")},
		{name: "unknown field source", op: opTrans, edit: func(e *provlogv1.ProvenanceEvent) {
			ref := &provlogv1.FieldRef{Uri: e.Inputs[0].Uri}
			ref.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1))
			e.FieldLineage = []*provlogv1.FieldLineage{{OutputUri: e.Outputs[0].Uri, OutputField: "f", Sources: []*provlogv1.FieldRef{ref}}}
		}, want: want("field_lineage[0].sources[0]", "unknown field 3 (not in schema version 1)")},
		{name: "unknown fields before anything else", edit: func(e *provlogv1.ProvenanceEvent) {
			e.SchemaVersion = 7
			e.Signature = &provlogv1.SubmitterSignature{}
			e.Signature.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1))
		}, want: want("signature", "unknown field 3 (not in schema version 1)")},

		// One error, the first in field order.
		{name: "first error in field order", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Signature = &provlogv1.SubmitterSignature{}
			e.Inputs[0].Digest = "md5:x"
			e.Actor.Id = ""
			e.Tenant = "ACME"
		}, want: want("tenant", "invalid character 'A' at byte 0 (want [a-z0-9][a-z0-9._-]*)")},
		{name: "nested fields in order", op: opRead, edit: func(e *provlogv1.ProvenanceEvent) {
			e.Inputs[0].RecordKey = "\x00"
			e.Inputs[0].Digest = "md5:x"
		}, want: want("inputs[0].digest", digestReasonWant)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := tc.op
			if op == 0 {
				op = opStart
			}
			e := validEvent(op)
			if tc.edit != nil {
				tc.edit(e)
			}
			err := Validate(e, testNow)
			var got fe
			if err != nil && !errors.As(err, &got) {
				t.Fatalf("Validate returned %T %v, want a *FieldError", err, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Validate error (-want +got):\n%s", diff)
			}
			if got == nil {
				// Whatever Validate accepts can be put in the log.
				if _, _, err := NewLeaf(e, testNow, "token:t"); err != nil {
					t.Errorf("valid event, but NewLeaf: %v", err)
				}
			}
		})
	}
}

func TestValidateNil(t *testing.T) {
	var got fe
	if err := Validate(nil, testNow); !errors.As(err, &got) || *got != (FieldError{"event", "required"}) {
		t.Errorf("Validate(nil) = %v, want event: required", err)
	}
}

func TestFieldErrorMessage(t *testing.T) {
	e := validEvent(opRead)
	e.Inputs = append(e.Inputs, assets(2, "s3")...)
	e.Inputs[2].Digest = "sha256:ABC"
	err := Validate(e, testNow)
	const want = "inputs[2].digest: malformed digest: want sha256:<64 lowercase hex> or sha512:<128 lowercase hex>"
	if err == nil || err.Error() != want {
		t.Errorf("Validate error = %v, want %q", err, want)
	}
}

// TestValidateDoesNotModify: Validate only reads the event.
func TestValidateDoesNotModify(t *testing.T) {
	e := typicalEvent()
	before := mustEncode(t, e)
	if err := Validate(e, testNow); err != nil {
		t.Fatal(err)
	}
	if after := mustEncode(t, e); string(after) != string(before) {
		t.Error("Validate modified the event")
	}
}
