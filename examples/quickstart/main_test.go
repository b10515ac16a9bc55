package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/client/run"
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/server"
	"golang.org/x/mod/sumdb/note"
)

// TestQuickstart runs the example workflow against a log in process (the
// same server provlogd runs) and checks what it printed: the trace from its
// output reaches both sources and verified.
func TestQuickstart(t *testing.T) {
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, vkey, err := ledger.LoadOrCreateKeys(dir, "", "provlog.test/quickstart")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(t.Context(), ledger.Config{Dir: dir, Signer: signer, Verifier: verifier,
		CheckpointInterval: 100 * time.Millisecond, BatchMaxSize: 256, BatchMaxAge: 5 * time.Millisecond,
		FollowInterval: 50 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	store, err := lineage.OpenPebbleStore(filepath.Join(dir, "lineage"), logger)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := lineage.Open(t.Context(), store, l.Reader(), lineage.Options{Logger: logger, PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ictx, stopIndex := context.WithCancel(context.Background())
	indexDone := make(chan struct{})
	go func() { ix.Run(ictx); close(indexDone) }()
	const token = "pl_quickstart-admin"
	if err := os.WriteFile(filepath.Join(dir, "admin.token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := &auth.Tokens{}
	tokens.Add(token, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	srv, err := server.New(t.Context(), server.Config{Ledger: l, Lineage: ix, Auth: tokens, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.GRPC.Serve(lis)
	t.Cleanup(func() {
		srv.GRPC.Stop()
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Close(ctx)
		stopIndex()
		<-indexDone
		store.Close()
	})

	var out bytes.Buffer
	outDir := t.TempDir()
	err = runExample(t.Context(), config{GRPCAddr: lis.Addr().String(), DataDir: dir, Tenant: "acme", Orders: "orders.csv", OutDir: outDir, Out: &out})
	if err != nil {
		t.Fatalf("quickstart: %v\n%s", err, out.String())
	}
	t.Log(out.String())
	got, err := os.ReadFile(filepath.Join(outDir, "revenue_eur.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "customer,revenue_eur\nada@example.com,110.40\nalan@example.com,285.43\ngrace@example.com,69.46\n"; string(got) != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	for _, want := range []string{"verified against log.pub", "asset     " + run.FileURI("orders.csv"), "/v1/rates", "field     revenue_eur <- amount_usd", "OPERATION_EXTERNAL_CALL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not mention %q", want)
		}
	}
}
