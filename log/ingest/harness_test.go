package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/client"
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ingest"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// The harness's bearer tokens.
const (
	adminToken  = "pl_test-admin-token"
	acmeToken   = "pl_test-acme-appender"  // appender for acme
	otherToken  = "pl_test-other-appender" // appender for other
	readerToken = "pl_test-acme-reader"    // reader for acme
)

// harness is a provlogd in process: ledger, lineage index, gRPC on
// loopback, HTTP (with ingestion) on an httptest server.
type harness struct {
	ledger  *ledger.Ledger
	index   *lineage.Index
	srv     *server.Server
	http    *httptest.Server
	conn    *grpc.ClientConn
	log     pb.LogServiceClient
	lineage pb.LineageServiceClient
	policy  *client.Policy
	now     time.Time
}

type harnessOpts struct {
	hooks *ingest.HooksConfig
	now   func() time.Time
}

func startHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, vkey, err := ledger.LoadOrCreateKeys(dir, "", "provlog.test/ingest")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(t.Context(), ledger.Config{
		Dir: dir, Signer: signer, Verifier: verifier,
		CheckpointInterval: 100 * time.Millisecond, BatchMaxSize: 256, BatchMaxAge: 5 * time.Millisecond,
		FollowInterval: 50 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	store, err := lineage.OpenPebbleStore(filepath.Join(dir, "lineage"), logger)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := lineage.Open(t.Context(), store, l.Reader(), lineage.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	tokens := &auth.Tokens{}
	tokens.Add(adminToken, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	tokens.Add(acmeToken, &auth.Identity{Name: "token:acme-bot", Roles: []auth.Role{auth.RoleAppender}, Tenants: []string{"acme"}})
	tokens.Add(otherToken, &auth.Identity{Name: "token:other-bot", Roles: []auth.Role{auth.RoleAppender}, Tenants: []string{"other"}})
	tokens.Add(readerToken, &auth.Identity{Name: "token:acme-reader", Roles: []auth.Role{auth.RoleReader}, Tenants: []string{"acme"}})
	h := &harness{ledger: l, index: ix}
	srv, err := server.New(t.Context(), server.Config{
		Ledger: l, Lineage: ix, Auth: tokens, Logger: logger, PublishTimeout: 10 * time.Second,
		Ingest: &ingest.Config{Tokens: tokens, Hooks: o.hooks, Now: o.now},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC.Serve(lis)
	srv.SetServing(true)
	h.http = httptest.NewServer(srv.HTTPHandler())
	h.conn, err = grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h.log, h.lineage = pb.NewLogServiceClient(h.conn), pb.NewLineageServiceClient(h.conn)
	h.policy, err = client.ParsePolicy(vkey, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.conn.Close()
		h.http.Close()
		srv.GRPC.Stop()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("ledger.Close: %v", err)
		}
		store.Close()
	})
	return h
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// size is the number of leaves sequenced.
func (h *harness) size(t *testing.T) uint64 {
	t.Helper()
	n, err := h.ledger.Reader().IntegratedSize(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// settle waits until a published checkpoint covers every sequenced leaf and
// the lineage index has indexed them.
func (h *harness) settle(t *testing.T) {
	t.Helper()
	want := h.size(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, cp, err := h.ledger.Checkpoint(t.Context())
		if err == nil && cp.Size >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint covering %d leaves after 10s", want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := h.index.CatchUp(t.Context()); err != nil {
		t.Fatalf("lineage CatchUp: %v", err)
	}
}

// trace traces upstream from uri in tenant acme and verifies the answer
// offline with client.VerifyTrace.
func (h *harness) trace(t *testing.T, uri string) *pb.TraceResponse {
	t.Helper()
	h.settle(t)
	resp, err := h.lineage.Trace(bearer(t.Context(), adminToken), &pb.TraceRequest{
		Tenant: "acme", Start: &pb.TraceRequest_Asset{Asset: &pb.AssetRef{Uri: uri}},
		Direction: pb.Direction_DIRECTION_UPSTREAM, Depth: 10,
	})
	if err != nil {
		t.Fatalf("Trace(%s): %v", uri, err)
	}
	if err := client.VerifyTrace(resp, h.policy); err != nil {
		t.Fatalf("VerifyTrace: %v", err)
	}
	return resp
}

type httpAnswer struct {
	status int
	body   []byte
	resp   ingest.Response
}

// post sends body to path with the given headers (a token is sent as a
// bearer credential when not "").
func (h *harness) post(t *testing.T, path, token string, body []byte, hdr map[string]string) httpAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.http.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return h.do(t, req)
}

func (h *harness) get(t *testing.T, path, token string) httpAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, h.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return h.do(t, req)
}

func (h *harness) do(t *testing.T, req *http.Request) httpAnswer {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := httpAnswer{status: res.StatusCode, body: b}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(b, &a.resp)
	}
	return a
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
