package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The harness's bearer tokens.
const (
	adminToken  = "pl_test-admin-token"
	acmeToken   = "pl_test-acme-appender" // role appender, tenant acme
	readerToken = "pl_test-other-reader"  // role reader, tenant other

	acmeName   = "token:acme-bot"
	readerName = "token:other-reader"
	testOrigin = "provlog.test/server"
)

// testNow is the server's clock for validation: after every sample event.
var testNow = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// checkpointInterval is the ledger's publish interval in the harness.
const checkpointInterval = 100 * time.Millisecond

// harness is one provlogd in process: a real ledger in a temp dir, the gRPC
// server on a loopback listener, the HTTP handler on an httptest server.
type harness struct {
	dir      string
	ledger   *ledger.Ledger
	srv      *server.Server
	http     *httptest.Server
	conn     *grpc.ClientConn
	client   pb.LogServiceClient
	verifier note.Verifier
	stopped  bool
}

// startHarness starts a provlogd on dir (a new temp dir when ""). It stops
// at cleanup unless the test stopped it first.
func startHarness(t *testing.T, dir string) *harness {
	t.Helper()
	return startHarnessWith(t, dir, nil)
}

// startHarnessWith is startHarness with a hook that may change the server
// config (another authenticator, an admin store) before the server starts.
func startHarnessWith(t *testing.T, dir string, configure func(*server.Config)) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, vkey, err := ledger.LoadOrCreateKeys(dir, "", testOrigin)
	if err != nil {
		t.Fatalf("LoadOrCreateKeys: %v", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	l, err := ledger.Open(t.Context(), ledger.Config{
		Dir:                dir,
		Signer:             signer,
		Verifier:           verifier,
		CheckpointInterval: checkpointInterval,
		BatchMaxSize:       256,
		BatchMaxAge:        10 * time.Millisecond,
		FollowInterval:     50 * time.Millisecond,
		Logger:             logger,
	})
	if err != nil {
		t.Fatalf("ledger.Open: %v", err)
	}
	tokens := &auth.Tokens{}
	tokens.Add(adminToken, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	tokens.Add(acmeToken, &auth.Identity{Name: acmeName, Roles: []auth.Role{auth.RoleAppender}, Tenants: []string{"acme"}})
	tokens.Add(readerToken, &auth.Identity{Name: readerName, Roles: []auth.Role{auth.RoleReader}, Tenants: []string{"other"}})

	h := &harness{dir: dir, ledger: l, verifier: verifier}
	t.Cleanup(func() { h.stop(t) })
	cfg := server.Config{
		Ledger:         l,
		Auth:           tokens,
		Logger:         logger,
		PublishTimeout: 10 * time.Second,
		Now:            func() time.Time { return testNow },
	}
	if configure != nil {
		configure(&cfg)
	}
	h.srv, err = server.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.srv.GRPC.Serve(lis)
	h.srv.SetServing(true)
	h.http = httptest.NewServer(h.srv.HTTPHandler())
	h.conn, err = grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(server.MaxRecvMsgSize)))
	if err != nil {
		t.Fatal(err)
	}
	h.client = pb.NewLogServiceClient(h.conn)
	return h
}

// stop shuts everything down in order: clients, servers, then the ledger,
// which waits for every acknowledged entry to be published and indexed.
func (h *harness) stop(t *testing.T) {
	t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	if h.conn != nil {
		h.conn.Close()
	}
	if h.http != nil {
		h.http.Close()
	}
	if h.srv != nil {
		h.srv.GRPC.Stop()
		h.srv.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.ledger.Close(ctx); err != nil {
		t.Errorf("ledger.Close: %v", err)
	}
}

// withToken returns ctx carrying token as gRPC bearer credentials.
func withToken(ctx context.Context, token string) context.Context {
	if token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// size is the number of leaves integrated in the log (sequenced and
// durable, not necessarily published yet).
func (h *harness) size(t *testing.T) uint64 {
	t.Helper()
	n, err := h.ledger.Reader().IntegratedSize(t.Context())
	if err != nil {
		t.Fatalf("IntegratedSize: %v", err)
	}
	return n
}

// publishedSize waits until the published checkpoint covers at least the
// integrated size and returns it.
func (h *harness) publishedSize(t *testing.T) uint64 {
	t.Helper()
	want := h.size(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, cp, err := h.ledger.Checkpoint(t.Context())
		if err == nil && cp.Size >= want {
			return cp.Size
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering %d leaves after 10s (last: %v, %v)", want, cp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// restResponse is one REST answer.
type restResponse struct {
	status int
	header http.Header
	body   []byte
}

// rest sends a request to the HTTP handler. body is sent as is.
func (h *harness) rest(t *testing.T, method, path, token string, body []byte) restResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, h.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.http.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return restResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

// restError is grpc-gateway's JSON error body.
type restError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (r restResponse) error(t *testing.T) restError {
	t.Helper()
	var e restError
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("REST error body %q is not JSON: %v", r.body, err)
	}
	return e
}

// decode unmarshals a successful REST answer into m.
func (r restResponse) decode(t *testing.T, m proto.Message) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("REST status %d, want 200; body %s", r.status, r.body)
	}
	if err := protojson.Unmarshal(r.body, m); err != nil {
		t.Fatalf("REST body %s: %v", r.body, err)
	}
}

// httpStatus is the HTTP status grpc-gateway gives each gRPC code.
var httpStatus = map[codes.Code]int{
	codes.InvalidArgument:    http.StatusBadRequest,
	codes.Unauthenticated:    http.StatusUnauthorized,
	codes.PermissionDenied:   http.StatusForbidden,
	codes.AlreadyExists:      http.StatusConflict,
	codes.NotFound:           http.StatusNotFound,
	codes.Unavailable:        http.StatusServiceUnavailable,
	codes.FailedPrecondition: http.StatusBadRequest,
}

// sampleEvent reads testdata/events/<name>.json, the body POST /v1/events
// takes.
func sampleEvent(t *testing.T, name string) *pb.ProvenanceEvent {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ev := &pb.ProvenanceEvent{}
	if err := protojson.Unmarshal(b, ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// readEvent is sample event 02 (a READ by tenant acme) under a new event id.
func readEvent(t *testing.T, id string) *pb.ProvenanceEvent {
	t.Helper()
	ev := sampleEvent(t, "02-crm-export-read-contacts")
	ev.EventId = id
	return ev
}

func eventJSON(t *testing.T, ev *pb.ProvenanceEvent) []byte {
	t.Helper()
	b, err := protojson.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustAppend appends over gRPC as admin and fails the test on error.
func (h *harness) mustAppend(t *testing.T, ev *pb.ProvenanceEvent, wait pb.WaitFor) *pb.AppendResponse {
	t.Helper()
	resp, err := h.client.Append(withToken(t.Context(), adminToken), &pb.AppendRequest{Event: ev, Wait: wait})
	if err != nil {
		t.Fatalf("Append(%s): %v", ev.GetEventId(), err)
	}
	return resp
}

// verifyReceipt checks a receipt with x/mod only: the checkpoint's
// signature against the log's verifier, and the inclusion proof of
// the leaf to the checkpoint's root.
func (h *harness) verifyReceipt(t *testing.T, r *pb.Receipt) {
	t.Helper()
	if r == nil {
		t.Fatal("no receipt")
	}
	size, root := openCheckpoint(t, h.verifier, r.GetCheckpoint())
	if r.GetIndex() >= uint64(size) {
		t.Fatalf("receipt index %d not covered by checkpoint size %d", r.GetIndex(), size)
	}
	proof := make(tlog.RecordProof, len(r.GetInclusionProof()))
	for i, p := range r.GetInclusionProof() {
		if len(p) != tlog.HashSize {
			t.Fatalf("proof element %d is %d bytes", i, len(p))
		}
		copy(proof[i][:], p)
	}
	if err := tlog.CheckRecord(proof, size, root, int64(r.GetIndex()), tlog.RecordHash(r.GetLeaf())); err != nil {
		t.Fatalf("inclusion proof does not verify: %v", err)
	}
}

// openCheckpoint verifies a C2SP checkpoint note with x/mod's note package
// and returns its tree size and root hash.
func openCheckpoint(t *testing.T, v note.Verifier, raw []byte) (int64, tlog.Hash) {
	t.Helper()
	n, err := note.Open(raw, note.VerifierList(v))
	if err != nil {
		t.Fatalf("checkpoint does not verify: %v\n%s", err, raw)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != testOrigin {
		t.Fatalf("checkpoint text %q: want origin, size, root", n.Text)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		t.Fatalf("checkpoint size %q: %v", lines[1], err)
	}
	rb, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(rb) != tlog.HashSize {
		t.Fatalf("checkpoint root %q: %v", lines[2], err)
	}
	return size, tlog.Hash(rb)
}

// grpcCode asserts err's gRPC code and that its message contains each of
// want.
func grpcCode(t *testing.T, err error, code codes.Code, want ...string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("gRPC error %v, want code %v", err, code)
	}
	for _, w := range want {
		if !strings.Contains(st.Message(), w) {
			t.Errorf("gRPC message %q does not contain %q", st.Message(), w)
		}
	}
	return st
}

// restCode asserts a REST error's HTTP status, its JSON code and that its
// message contains each of want.
func restCode(t *testing.T, r restResponse, code codes.Code, want ...string) restError {
	t.Helper()
	if ws, ok := httpStatus[code]; !ok || r.status != ws {
		t.Fatalf("HTTP status %d (body %s), want %d for %v", r.status, r.body, ws, code)
	}
	e := r.error(t)
	if codes.Code(e.Code) != code {
		t.Errorf("REST error code %d, want %d (%v)", e.Code, code, code)
	}
	for _, w := range want {
		if !strings.Contains(e.Message, w) {
			t.Errorf("REST message %q does not contain %q", e.Message, w)
		}
	}
	return e
}

// uniqueID is an event id unique to the test and suffix.
func uniqueID(t *testing.T, suffix string) string {
	h := sha256.Sum256([]byte(t.Name() + "\x00" + suffix))
	return fmt.Sprintf("test:%x", h[:12])
}

func protojsonMarshal(m proto.Message) ([]byte, error) { return protojson.Marshal(m) }

// metadataCtx returns ctx with an outgoing gRPC metadata pair.
func metadataCtx(ctx context.Context, k, v string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, k, v)
}
