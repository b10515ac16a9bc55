package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/internal/testcerts"
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
)

// startServer runs a provlogd server in process on loopback with an admin
// store and returns its gRPC address and a file holding the admin token.
// With serverTLS the gRPC server speaks TLS.
func startServer(t *testing.T, serverTLS ...*tls.Config) (addr, tokenFile string) {
	t.Helper()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	signer, vkey, err := ledger.LoadOrCreateKeys(dir, "", "provctl.test/admin")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(t.Context(), ledger.Config{Dir: dir, Signer: signer, Verifier: verifier, CheckpointInterval: 100 * time.Millisecond,
		BatchMaxSize: 16, BatchMaxAge: 10 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	st, err := auth.OpenStore(filepath.Join(dir, auth.StoreFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	const tok = "pl_provctl-admin-test"
	st.AddStatic(tok, &auth.Identity{Name: "admin", Roles: []auth.Role{auth.RoleAdmin}, Tenants: []string{auth.AllTenants}})
	cfg := server.Config{Ledger: l, Auth: st, Admin: st, Logger: logger}
	if len(serverTLS) > 0 {
		cfg.TLS = serverTLS[0]
	}
	srv, err := server.New(t.Context(), cfg)
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
	})
	tokenFile = filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return lis.Addr().String(), tokenFile
}

func TestAdminCommands(t *testing.T) {
	addr, tokFile := startServer(t)
	conn := []string{"--addr", addr, "--token-file", tokFile, "-o", "json"}
	admin := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(t.Context(), append(args, conn...), strings.NewReader(""), &out, &errb); code != want {
			t.Fatalf("provctl %v exited %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	keygen := func(name, dir string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(t.Context(), []string{"keys", "generate", "submitter", "--name", name, "--out-dir", dir}, strings.NewReader(""), &out, &errb); code != exitVerified {
			t.Fatalf("keys generate: exit %d: %s", code, errb.String())
		}
	}
	admin(exitVerified, "tenant", "create", "acme", "--require-signature")
	var tl pb.ListTenantsResponse
	if out := admin(exitVerified, "tenant", "list"); protojson.Unmarshal([]byte(out), &tl) != nil || !tl.GetTenants()[0].GetPolicy().GetRequireSignature() {
		t.Errorf("tenant list: %s", out)
	}
	admin(exitUsage, "tenant", "create", "acme") // AlreadyExists: a refusal is exit 2
	admin(exitUsage, "tenant", "create")
	admin(exitUsage, "tenant", "list", "extra")

	out := admin(exitVerified, "token", "create", "--name", "ci-bot", "--roles", "appender", "--tenants", "acme", "--ttl", "24h")
	var created pb.CreateTokenResponse
	if err := protojson.Unmarshal([]byte(out), &created); err != nil || !strings.HasPrefix(created.GetSecret(), "pl_") || created.GetToken().GetExpireTime() == nil {
		t.Fatalf("token create: %s (%v)", out, err)
	}
	if out := admin(exitVerified, "token", "list"); strings.Contains(out, created.GetSecret()) || !strings.Contains(out, "ci-bot") {
		t.Errorf("token list: %s", out)
	}
	admin(exitVerified, "token", "revoke", created.GetToken().GetId())
	// The revoked token is refused: exit 2 with the gRPC code.
	secretFile := filepath.Join(t.TempDir(), "bot.token")
	os.WriteFile(secretFile, []byte(created.GetSecret()), 0o600)
	var out2, errb bytes.Buffer
	if code := run(t.Context(), []string{"tenant", "list", "--addr", addr, "--token-file", secretFile}, strings.NewReader(""), &out2, &errb); code != exitUsage || !strings.Contains(errb.String(), "Unauthenticated") {
		t.Errorf("revoked token: exit %d, %s", code, errb.String())
	}

	keyDir := t.TempDir()
	prefix := filepath.Join(keyDir, "acme-ci")
	keygen("acme-ci", keyDir)
	if st, err := os.Stat(prefix + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keys generate: %v %v", st, err)
	}
	out = admin(exitVerified, "keys", "register", "--tenant", "acme", "--key-id", "ci-1", "--public-key", prefix+".pub", "--valid-from", "2026-01-01T00:00:00Z")
	var rk pb.RegisterKeyResponse
	if protojson.Unmarshal([]byte(out), &rk) != nil || rk.GetKey().GetState() != "active" {
		t.Errorf("keys register: %s", out)
	}
	admin(exitUsage, "keys", "register", "--tenant", "acme", "--key-id", "ci-2", "--public-key", "not-a-key")
	prefix2 := filepath.Join(keyDir, "acme-ci-2")
	keygen("acme-ci-2", keyDir)
	admin(exitVerified, "keys", "rotate", "--tenant", "acme", "--key-id", "ci-1", "--new-key-id", "ci-2", "--new-public-key", prefix2+".pub")
	admin(exitVerified, "keys", "revoke", "--tenant", "acme", "--key-id", "ci-2", "--reason", "test")
	out = admin(exitVerified, "keys", "list", "--tenant", "acme")
	var lk pb.ListKeysResponse
	if protojson.Unmarshal([]byte(out), &lk) != nil || len(lk.GetKeys()) != 2 || lk.GetKeys()[0].GetState() != "rotated" || lk.GetKeys()[1].GetState() != "revoked" {
		t.Errorf("keys list: %s", out)
	}
	// Human output, with the settings from the environment alone (as every
	// command resolves them).
	tok, _ := os.ReadFile(tokFile)
	vars := map[string]string{"PROVLOG_ADDR": addr, "PROVLOG_TOKEN": strings.TrimSpace(string(tok))}
	code, sout, serr := provctl(t, vars, "keys", "list", "--tenant", "acme")
	if code != exitVerified || !strings.Contains(sout, "key acme/ci-1  rotated  valid 2026-01-01T00:00:00Z .. ") ||
		!strings.Contains(sout, "replaced by ci-2") || !strings.HasSuffix(sout, "2 keys\n") {
		t.Errorf("keys list (text): exit %d\n%s%s", code, sout, serr)
	}
	if code, sout, serr = provctl(t, vars, "tenant", "list"); code != exitVerified || !strings.HasPrefix(sout, "tenant acme  require_signature=true second_person_overrides=false  created ") {
		t.Errorf("tenant list (text): exit %d\n%s%s", code, sout, serr)
	}
	if code, _, serr = provctl(t, vars, "cert", "revoke", "no-such-subject"); code != exitUsage || !strings.Contains(serr, "NotFound") {
		t.Errorf("cert revoke of nothing: exit %d, %s", code, serr)
	}
	if code, _, serr = provctl(t, map[string]string{"PROVLOG_ADDR": addr, "PROVLOG_TOKEN": "pl_wrong"}, "token", "list"); code != exitUsage || !strings.Contains(serr, "Unauthenticated") {
		t.Errorf("wrong token: exit %d, %s", code, serr)
	}
	admin(exitVerified, "cert", "grant", "--subject", "spiffe://acme.example/ns/etl/sa/n8n", "--roles", "appender", "--tenants", "acme")
	admin(exitVerified, "cert", "revoke", "spiffe://acme.example/ns/etl/sa/n8n")
	admin(exitUsage, "cert", "revoke", "spiffe://acme.example/ns/etl/sa/n8n") // NotFound
}

// TestAdminMTLS: the admin commands use the shared TLS flags: --tls-ca to
// trust provlogd's certificate, --tls-cert/--tls-key to authenticate with a
// client certificate granted the admin role, no token needed.
func TestAdminMTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "provctl test CA")
	caFile := filepath.Join(dir, "ca.pem")
	testcerts.WritePEM(t, caFile, "CERTIFICATE", ca.Cert.Raw)
	srvCert := ca.Issue(t, true, "", "provlogd")
	ops := "spiffe://acme.example/ops/alice"
	certFile, keyFile := filepath.Join(dir, "alice.pem"), filepath.Join(dir, "alice.key")
	testcerts.WriteKeyPair(t, ca.Issue(t, false, ops, "alice"), certFile, keyFile)
	addr, tokFile := startServer(t, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.Pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})

	vars := map[string]string{"PROVLOG_ADDR": addr}
	// Over TLS with the admin token, grant the certificate the admin role.
	if code, out, errs := provctl(t, vars, "cert", "grant", "--tls-ca", caFile, "--token-file", tokFile, "--subject", ops, "--roles", "admin", "--tenants", "*"); code != exitVerified {
		t.Fatalf("cert grant over TLS: exit %d\n%s%s", code, out, errs)
	}
	// The certificate alone is an admin.
	if code, out, errs := provctl(t, vars, "tenant", "create", "acme", "--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile); code != exitVerified || !strings.HasPrefix(out, "tenant acme ") {
		t.Fatalf("tenant create with a client certificate: exit %d\n%s%s", code, out, errs)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no certificate, no token", []string{"--tls-ca", caFile}, "Unauthenticated"},
		{"plaintext to a TLS server", []string{"--token-file", tokFile}, "Unavailable"},
		{"system roots only", []string{"--tls", "--token-file", tokFile}, "Unavailable"},
		{"certificate without key", []string{"--tls-ca", caFile, "--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		{"not a CA file", []string{"--tls-ca", keyFile}, "holds no PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := provctl(t, vars, append([]string{"tenant", "list"}, tc.args...)...)
			if code != exitUsage || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, want 2 and %q\n%s%s", code, tc.want, out, errs)
			}
		})
	}
}
