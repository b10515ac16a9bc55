package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// restCall is one REST request of a bad-input case.
type restCall struct {
	method, path, token string
	body                []byte
}

// badCase is one bad request, over gRPC, REST or both.
type badCase struct {
	name string
	code codes.Code
	// field, when set, is the exact field path the answer's
	// google.rpc.BadRequest detail must name.
	field string
	// msg are substrings the error message must contain; when field is set
	// and msg is not, the message must contain field.
	msg  []string
	grpc func(ctx context.Context, c pb.LogServiceClient) error
	rest *restCall
	// restField and restMsg replace field and msg for REST, when the
	// gateway itself (protojson) rejects the body.
	restField string
	restMsg   []string
}

func (c badCase) wantMsg(rest bool) []string {
	msg, field := c.msg, c.field
	if rest && (c.restMsg != nil || c.restField != "") {
		msg, field = c.restMsg, c.restField
	}
	if msg == nil && field != "" {
		return []string{field}
	}
	return msg
}

func (c badCase) wantField(rest bool) string {
	if rest && (c.restMsg != nil || c.restField != "") {
		return c.restField
	}
	return c.field
}

// badFieldViolations returns the fields named by st's BadRequest details.
func badFieldViolations(st *status.Status) []string {
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// restFieldViolations returns the fields named by a REST error body's
// BadRequest details.
func restFieldViolations(t *testing.T, body []byte) []string {
	t.Helper()
	var e struct {
		Details []struct {
			FieldViolations []struct {
				Field string `json:"field"`
			} `json:"fieldViolations"`
		} `json:"details"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("REST error body %s: %v", body, err)
	}
	var out []string
	for _, d := range e.Details {
		for _, v := range d.FieldViolations {
			out = append(out, v.Field)
		}
	}
	return out
}

func TestBadInput(t *testing.T) {
	h := startHarness(t, "")
	// A few entries first, so "nothing appended" is about a non-empty log.
	h.mustAppend(t, readEvent(t, "seed-1"), pb.WaitFor_WAIT_FOR_SEQUENCED)
	seed := readEvent(t, "seed-2")
	seed.Tenant = "other"
	h.mustAppend(t, seed, pb.WaitFor_WAIT_FOR_PUBLISHED)
	base := h.publishedSize(t)
	if base != 2 {
		t.Fatalf("log size %d after two appends", base)
	}

	var cases []badCase
	// appendCase is an Append of a mutated sample event, over gRPC and
	// (when the event can be written as proto JSON) REST, with token.
	appendCase := func(name string, code codes.Code, field string, token string, mut func(*pb.ProvenanceEvent)) badCase {
		ev := readEvent(t, uniqueID(t, strings.ReplaceAll(name, " ", "-")))
		mut(ev)
		c := badCase{name: name, code: code, field: field}
		c.grpc = func(ctx context.Context, cl pb.LogServiceClient) error {
			_, err := cl.Append(withToken(ctx, token), &pb.AppendRequest{Event: ev})
			return err
		}
		if b, err := protojsonMarshal(ev); err == nil {
			c.rest = &restCall{method: http.MethodPost, path: "/v1/events", token: token, body: b}
		}
		return c
	}
	invalid := func(name, field string, mut func(*pb.ProvenanceEvent)) badCase {
		return appendCase(name, codes.InvalidArgument, field, adminToken, mut)
	}

	// Size: over 64 KiB canonical, every single field within its limits.
	cases = append(cases,
		withMsg(invalid("oversized event", "event", func(ev *pb.ProvenanceEvent) {
			for i := range 20 {
				ev.Environment[fmt.Sprintf("pad-%02d", i)] = strings.Repeat("x", 4000)
			}
		}), "event: ", "exceeds 65536 bytes"),
		withMsg(invalid("oversized event by many fields", "event", func(ev *pb.ProvenanceEvent) {
			ev.Inputs[0].Fields = nil
			for i := range 256 {
				ev.Inputs[0].Fields = append(ev.Inputs[0].Fields, fmt.Sprintf("%03d-%s", i, strings.Repeat("f", 250)))
			}
		}), "event: ", "exceeds 65536 bytes"),
		withMsg(invalid("huge rationale", "rationale", func(ev *pb.ProvenanceEvent) {
			ev.Rationale = strings.Repeat("r", 64<<10)
		}), "rationale: ", "too long"),
	)
	// Required fields.
	cases = append(cases,
		invalid("missing schema_version", "schema_version", func(ev *pb.ProvenanceEvent) { ev.SchemaVersion = 0 }),
		invalid("missing event_id", "event_id", func(ev *pb.ProvenanceEvent) { ev.EventId = "" }),
		invalid("missing tenant", "tenant", func(ev *pb.ProvenanceEvent) { ev.Tenant = "" }),
		invalid("missing operation", "operation", func(ev *pb.ProvenanceEvent) { ev.Operation = 0 }),
		invalid("missing event_time", "event_time", func(ev *pb.ProvenanceEvent) { ev.EventTime = nil }),
		invalid("missing actor", "actor", func(ev *pb.ProvenanceEvent) { ev.Actor = nil }),
		invalid("missing actor.id", "actor.id", func(ev *pb.ProvenanceEvent) { ev.Actor.Id = "" }),
		invalid("missing workflow", "workflow", func(ev *pb.ProvenanceEvent) { ev.Workflow = nil }),
		invalid("missing workflow.run_id", "workflow.run_id", func(ev *pb.ProvenanceEvent) { ev.Workflow.RunId = "" }),
		invalid("event_time far in the future", "event_time", func(ev *pb.ProvenanceEvent) { ev.EventTime.Seconds = testNow.Add(2 * time.Hour).Unix() }),
	)
	// Digests.
	hex64 := "4a3f7c6b499f99ebfd0387d56e4978cc1cc7ffa78606476a7447c278b9053a3f"
	for _, d := range []struct{ name, digest string }{
		{"upper-case hex", "sha256:" + strings.ToUpper(hex64)},
		{"short hex", "sha256:" + hex64[:63]},
		{"long hex", "sha256:" + hex64 + "0"},
		{"unknown algorithm", "md5:" + hex64[:32]},
		{"no colon", "sha256" + hex64},
		{"sha512 of sha256 length", "sha512:" + hex64},
		{"algorithm in upper case", "SHA256:" + hex64},
		{"non-hex", "sha256:" + hex64[:63] + "g"},
	} {
		cases = append(cases, invalid("digest "+d.name, "inputs[0].digest", func(ev *pb.ProvenanceEvent) { ev.Inputs[0].Digest = d.digest }))
	}
	// Enums.
	unknownOp := invalid("unknown operation", "operation", func(ev *pb.ProvenanceEvent) { ev.Operation = 42 })
	cases = append(cases, unknownOp,
		invalid("unknown actor type", "actor.type", func(ev *pb.ProvenanceEvent) { ev.Actor.Type = 42 }),
	)
	// Invalid UTF-8: the protos turn off wire validation, so the
	// validator must catch it (gRPC only: proto JSON cannot carry it).
	for _, u := range []struct {
		field string
		mut   func(*pb.ProvenanceEvent)
	}{
		{"event_id", func(ev *pb.ProvenanceEvent) { ev.EventId = "a\xffb" }},
		{"tenant", func(ev *pb.ProvenanceEvent) { ev.Tenant = "a\xffb" }},
		{"actor.id", func(ev *pb.ProvenanceEvent) { ev.Actor.Id = "a\xffb" }},
		{"workflow.platform", func(ev *pb.ProvenanceEvent) { ev.Workflow.Platform = "a\xffb" }},
		{"inputs[0].uri", func(ev *pb.ProvenanceEvent) { ev.Inputs[0].Uri = "crm://a\xffb" }},
		{"inputs[0].fields[2]", func(ev *pb.ProvenanceEvent) { ev.Inputs[0].Fields[2] = "a\xffb" }},
		{"rationale", func(ev *pb.ProvenanceEvent) { ev.Rationale = "a\xffb" }},
		{`environment["host"]`, func(ev *pb.ProvenanceEvent) { ev.Environment["host"] = "a\xffb" }},
	} {
		c := withMsg(invalid("invalid UTF-8 in "+u.field, u.field, u.mut), u.field, "UTF-8")
		if c.rest != nil {
			t.Fatalf("%s: proto JSON encoded invalid UTF-8", c.name)
		}
		cases = append(cases, c)
	}

	// Unknown fields over gRPC: protobuf keeps them aside, the validator
	// must refuse them (the leaf could not commit to them).
	for _, u := range []struct {
		field string
		msg   func(*pb.ProvenanceEvent) proto.Message
	}{
		{"event", func(ev *pb.ProvenanceEvent) proto.Message { return ev }},
		{"actor", func(ev *pb.ProvenanceEvent) proto.Message { return ev.Actor }},
		{"inputs[0]", func(ev *pb.ProvenanceEvent) proto.Message { return ev.Inputs[0] }},
	} {
		c := withMsg(invalid("unknown protobuf field in "+u.field, u.field, func(ev *pb.ProvenanceEvent) {
			m := u.msg(ev).ProtoReflect()
			m.SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
		}), u.field+": ", "unknown field 99")
		c.rest = nil // proto JSON has no unknown fields; REST has its own cases below
		cases = append(cases, c)
	}

	// REST bodies that are not a ProvenanceEvent in proto JSON.
	good := string(eventJSON(t, readEvent(t, uniqueID(t, "rest-body"))))
	restBody := func(name string, body string, msg ...string) badCase {
		if body == good {
			t.Fatalf("%s: body unchanged", name)
		}
		return badCase{name: name, code: codes.InvalidArgument, restMsg: msg,
			rest: &restCall{method: http.MethodPost, path: "/v1/events", token: adminToken, body: []byte(body)}}
	}
	cases = append(cases,
		restBody("REST schemaVersion is a string", strings.Replace(good, `"schemaVersion":1`, `"schemaVersion":"abc"`, 1), "schemaVersion"),
		restBody("REST schemaVersion is negative", strings.Replace(good, `"schemaVersion":1`, `"schemaVersion":-1`, 1), "schemaVersion"),
		// protojson reports the position, not the field, for a type
		// mismatch on a list.
		restBody("REST inputs is an object", strings.Replace(good, `"inputs":[`, `"inputs":{},"outputs":[`, 1), "unexpected token {"),
		restBody("REST unknown field", strings.Replace(good, `{`, `{"colour":"red",`, 1), `unknown field "colour"`),
		restBody("REST unknown nested field", strings.Replace(good, `"actor":{`, `"actor":{"role":"x",`, 1), `unknown field "role"`),
		restBody("REST unknown operation", strings.Replace(good, `"OPERATION_READ"`, `"OPERATION_FOO"`, 1), "operation", "OPERATION_FOO"),
		restBody("REST invalid UTF-8", strings.Replace(good, `svc-n8n`, "svc-\xff-n8n", 1), "UTF-8"),
		restBody("REST lone surrogate escape", strings.Replace(good, `svc-n8n`, `svc-\udc00-n8n`, 1), "escape"),
		restBody("REST duplicate field", strings.Replace(good, `{`, `{"tenant":"acme",`, 1), `duplicate field "tenant"`),
		restBody("REST two events in one body", good+good, "more than one JSON value"),
		restBody("REST trailing garbage", good+"]", "more than one JSON value"),
		restBody("REST not an object", `[`+good+`]`, "unexpected token ["),
		restBody("REST null", `null`, "unexpected token null"),
		restBody("REST truncated", good[:len(good)/2]),
	)
	// Over REST the same unknown operation arrives as a number.
	if !strings.Contains(string(unknownOp.rest.body), `"operation":42`) {
		t.Fatalf("unknown operation as proto JSON: %s", unknownOp.rest.body)
	}

	// Authentication and authorisation.
	cases = append(cases,
		appendCase("no token", codes.Unauthenticated, "", "", func(*pb.ProvenanceEvent) {}),
		appendCase("bad token", codes.Unauthenticated, "", "pl_not-a-token", func(*pb.ProvenanceEvent) {}),
		appendCase("prefix of a good token", codes.Unauthenticated, "", adminToken[:len(adminToken)-1], func(*pb.ProvenanceEvent) {}),
		withMsg(appendCase("token for another tenant", codes.PermissionDenied, "", acmeToken, func(ev *pb.ProvenanceEvent) { ev.Tenant = "other" }), "tenant", `"other"`),
		withMsg(appendCase("reader cannot append", codes.PermissionDenied, "", readerToken, func(ev *pb.ProvenanceEvent) { ev.Tenant = "other" }), "append"),
		badCase{name: "appender cannot read", code: codes.PermissionDenied, msg: []string{"read"},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetEntry(withToken(ctx, acmeToken), &pb.GetEntryRequest{Index: 0})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: "/v1/entries/0", token: acmeToken}},
		badCase{name: "no token on a read", code: codes.Unauthenticated,
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetCheckpoint(ctx, &pb.GetCheckpointRequest{})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: "/v1/checkpoint"}},
	)
	{
		// A bearer credential sent with another scheme.
		c := badCase{name: "basic auth scheme", code: codes.Unauthenticated,
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				ctx = metadataCtx(ctx, "authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:"+adminToken)))
				_, err := c.Append(ctx, &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "basic"))})
				return err
			}}
		cases = append(cases, c)
	}

	// Wait.
	{
		ev := readEvent(t, uniqueID(t, "wait"))
		// The gateway itself refuses an unknown enum value in the query.
		cases = append(cases, badCase{name: "unknown wait", code: codes.InvalidArgument, field: "wait", restMsg: []string{`"wait"`},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.Append(withToken(ctx, adminToken), &pb.AppendRequest{Event: ev, Wait: 7})
				return err
			},
			rest: &restCall{method: http.MethodPost, path: "/v1/events?wait=7", token: adminToken, body: eventJSON(t, ev)}})
	}

	// Batches.
	batchCase := func(name string, n int) badCase {
		evs := make([]*pb.ProvenanceEvent, n)
		for i := range evs {
			evs[i] = readEvent(t, uniqueID(t, fmt.Sprintf("batch-%d", i)))
		}
		b, err := protojsonMarshal(&pb.AppendBatchRequest{Events: evs})
		if err != nil {
			t.Fatal(err)
		}
		return badCase{name: name, code: codes.InvalidArgument, field: "events",
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.AppendBatch(withToken(ctx, adminToken), &pb.AppendBatchRequest{Events: evs})
				return err
			},
			rest: &restCall{method: http.MethodPost, path: "/v1/events:batch", token: adminToken, body: b}}
	}
	cases = append(cases,
		batchCase("batch of 0 events", 0),
		withMsg(batchCase("batch over MaxBatch", event.MaxBatch+1), "events", fmt.Sprint(event.MaxBatch)),
	)

	// Proofs and entries.
	short := make([]byte, 31)
	cases = append(cases,
		badCase{name: "inclusion proof by 31-byte leaf hash", code: codes.InvalidArgument, field: "leaf_hash", msg: []string{"leaf_hash", "32", "31"},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetInclusionProof(withToken(ctx, adminToken), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: short}})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: "/v1/proofs/inclusion?leafHash=" + url.QueryEscape(base64.StdEncoding.EncodeToString(short)), token: adminToken}},
		badCase{name: "inclusion proof of nothing", code: codes.InvalidArgument, field: "leaf",
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetInclusionProof(withToken(ctx, adminToken), &pb.GetInclusionProofRequest{})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: "/v1/proofs/inclusion", token: adminToken}},
		badCase{name: "inclusion proof of an unknown leaf hash", code: codes.NotFound,
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetInclusionProof(withToken(ctx, adminToken), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_LeafHash{LeafHash: make([]byte, 32)}})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: "/v1/proofs/inclusion?leafHash=" + url.QueryEscape(base64.StdEncoding.EncodeToString(make([]byte, 32))), token: adminToken}},
		badCase{name: "inclusion proof of an index beyond the tree", code: codes.NotFound,
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetInclusionProof(withToken(ctx, adminToken), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: base}})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: fmt.Sprintf("/v1/proofs/inclusion?index=%d", base), token: adminToken}},
		badCase{name: "inclusion proof tree_size beyond the published size", code: codes.FailedPrecondition, msg: []string{"tree size", "published"},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetInclusionProof(withToken(ctx, adminToken), &pb.GetInclusionProofRequest{Leaf: &pb.GetInclusionProofRequest_Index{Index: 0}, TreeSize: base + 1})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: fmt.Sprintf("/v1/proofs/inclusion?index=0&treeSize=%d", base+1), token: adminToken}},
		badCase{name: "consistency proof from > to", code: codes.InvalidArgument, field: "from_size", msg: []string{"from_size", "2", "1"},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetConsistencyProof(withToken(ctx, adminToken), &pb.GetConsistencyProofRequest{FromSize: 2, ToSize: 1})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: "/v1/proofs/consistency?fromSize=2&toSize=1", token: adminToken}},
		badCase{name: "consistency proof to_size beyond the published size", code: codes.FailedPrecondition, msg: []string{"tree size", "published"},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetConsistencyProof(withToken(ctx, adminToken), &pb.GetConsistencyProofRequest{FromSize: 1, ToSize: 1 << 40})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: fmt.Sprintf("/v1/proofs/consistency?fromSize=1&toSize=%d", uint64(1)<<40), token: adminToken}},
		badCase{name: "consistency proof from beyond the published size", code: codes.FailedPrecondition, msg: []string{"tree size"},
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetConsistencyProof(withToken(ctx, adminToken), &pb.GetConsistencyProofRequest{FromSize: base + 1})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: fmt.Sprintf("/v1/proofs/consistency?fromSize=%d", base+1), token: adminToken}},
		badCase{name: "entry beyond the log", code: codes.NotFound,
			grpc: func(ctx context.Context, c pb.LogServiceClient) error {
				_, err := c.GetEntry(withToken(ctx, adminToken), &pb.GetEntryRequest{Index: base})
				return err
			},
			rest: &restCall{method: http.MethodGet, path: fmt.Sprintf("/v1/entries/%d", base), token: adminToken}},
	)

	// Each case must be distinct and actually test something.
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("two cases named %q", c.name)
		}
		seen[c.name] = true
		if c.grpc == nil && c.rest == nil {
			t.Fatalf("%s: no transport", c.name)
		}
	}

	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.grpc != nil {
					t.Run("grpc", func(t *testing.T) {
						err := c.grpc(t.Context(), h.client)
						st := grpcCode(t, err, c.code, c.wantMsg(false)...)
						if c.field != "" {
							if diff := cmp.Diff([]string{c.field}, badFieldViolations(st)); diff != "" {
								t.Errorf("BadRequest field violations (-want +got):\n%s", diff)
							}
						}
						h.checkNothingAppended(t, base)
					})
				}
				if c.rest != nil {
					t.Run("rest", func(t *testing.T) {
						r := h.rest(t, c.rest.method, c.rest.path, c.rest.token, c.rest.body)
						restCode(t, r, c.code, c.wantMsg(true)...)
						if f := c.wantField(true); f != "" {
							if diff := cmp.Diff([]string{f}, restFieldViolations(t, r.body)); diff != "" {
								t.Errorf("BadRequest field violations (-want +got):\n%s", diff)
							}
						}
						h.checkNothingAppended(t, base)
					})
				}
			})
		}
	})

	// After one more publish interval, still nothing: no case left an
	// entry behind that shows up late.
	time.Sleep(2 * checkpointInterval)
	if got := h.publishedSize(t); got != base {
		t.Errorf("published size %d after the bad requests, want %d", got, base)
	}
	_, err := h.client.GetEntry(withToken(t.Context(), adminToken), &pb.GetEntryRequest{Index: base})
	grpcCode(t, err, codes.NotFound)
	restCode(t, h.rest(t, http.MethodGet, fmt.Sprintf("/v1/entries/%d", base), adminToken, nil), codes.NotFound)
}

// checkNothingAppended checks that the log still holds base leaves: an
// append that returned has been integrated, so this needs no waiting.
func (h *harness) checkNothingAppended(t *testing.T, base uint64) {
	t.Helper()
	if got := h.size(t); got != base {
		t.Fatalf("log size %d, want %d: the bad request left an entry behind", got, base)
	}
	_, err := h.client.GetEntry(withToken(t.Context(), adminToken), &pb.GetEntryRequest{Index: base})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetEntry(%d) = %v, want NotFound", base, err)
	}
}

func withMsg(c badCase, msg ...string) badCase {
	c.msg = msg
	return c
}
