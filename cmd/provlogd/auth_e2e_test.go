package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provlog/provlog/internal/testcerts"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestAuthE2E runs the real provlogd with --tls-cert, --tls-key and
// --client-ca: an admin token creates a tenant, a token and a certificate
// grant; the certificate appends over gRPC and HTTPS; an untrusted
// certificate is refused; after a restart the token (hash in auth.json)
// still works and a revoked one stays refused.
func TestAuthE2E(t *testing.T) {
	bin := provlogdBinary(t)
	dir := t.TempDir()
	ca, rogue := testcerts.NewCA(t, "e2e CA"), testcerts.NewCA(t, "rogue")
	testcerts.WriteKeyPair(t, ca.Issue(t, true, "", "provlogd"), filepath.Join(dir, "srv.pem"), filepath.Join(dir, "srv.key"))
	testcerts.WritePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Cert.Raw)
	data := filepath.Join(dir, "data")
	grpcAddr, httpAddr := freePort(t), freePort(t)

	var cmd *exec.Cmd
	var logs bytes.Buffer
	exited := make(chan error, 1)
	start := func() {
		t.Helper()
		logs.Reset()
		cmd = exec.Command(bin, "--data-dir", data, "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--checkpoint-interval", "200ms",
			"--tls-cert", filepath.Join(dir, "srv.pem"), "--tls-key", filepath.Join(dir, "srv.key"), "--client-ca", filepath.Join(dir, "ca.pem"))
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func(c *exec.Cmd) { exited <- c.Wait() }(cmd)
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}, Timeout: 2 * time.Second}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := hc.Get("https://" + httpAddr + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("provlogd not healthy over HTTPS after 20s\n%s", logs.String())
			}
		}
	}
	stop := func() {
		t.Helper()
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-exited:
			if err != nil || !strings.Contains(logs.String(), "stopped cleanly") {
				t.Fatalf("unclean stop: %v\n%s", err, logs.String())
			}
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("no stop within 40s\n%s", logs.String())
		}
		cmd = nil
	}
	t.Cleanup(func() {
		if cmd != nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	start()
	adminTok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	dial := func(cert *tls.Certificate) *grpc.ClientConn {
		t.Helper()
		tc := &tls.Config{RootCAs: ca.Pool}
		if cert != nil {
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		c, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	bearer := func(tok string) metadataCtx {
		return metadataCtx{t, strings.TrimSpace(tok)}
	}
	admin := pb.NewAdminServiceClient(dial(nil))
	actx := bearer(string(adminTok)).ctx()
	if _, err := admin.CreateTenant(actx, &pb.CreateTenantRequest{Name: "acme"}); err != nil {
		t.Fatalf("CreateTenant: %v\n%s", err, logs.String())
	}
	keep, err := admin.CreateToken(actx, &pb.CreateTokenRequest{Name: "keep", Roles: []string{"reader"}, Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := admin.CreateToken(actx, &pb.CreateTokenRequest{Name: "gone", Roles: []string{"reader"}, Tenants: []string{"acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeToken(actx, &pb.RevokeTokenRequest{Id: gone.GetToken().GetId()}); err != nil {
		t.Fatal(err)
	}
	const n8n = "spiffe://acme.example/ns/etl/sa/n8n"
	if _, err := admin.GrantCertificate(actx, &pb.GrantCertificateRequest{Subject: n8n, Roles: []string{"appender"}, Tenants: []string{"acme"}}); err != nil {
		t.Fatal(err)
	}
	_, _, events := loadSamples(t)
	good := ca.Issue(t, false, n8n, "")
	if _, err := pb.NewLogServiceClient(dial(&good)).Append(t.Context(), &pb.AppendRequest{Event: events[0]}); err != nil {
		t.Fatalf("Append with the granted certificate: %v", err)
	}
	bad := rogue.Issue(t, false, n8n, "")
	_, err = pb.NewLogServiceClient(dial(&bad)).Append(t.Context(), &pb.AppendRequest{Event: events[1]})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Append with an untrusted certificate: %v, want the handshake refused", err)
	}
	// HTTPS with the certificate, through the REST gateway.
	body, _ := protojson.Marshal(events[1])
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{good}}}, Timeout: 10 * time.Second}
	resp, err := hc.Post("https://"+httpAddr+"/v1/events", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTPS append with the granted certificate: %v %v", resp, err)
	}
	resp.Body.Close()
	// Plain HTTP is not served.
	if resp, err := http.Get("http://" + httpAddr + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("plaintext HTTP answered on a TLS listener")
	}

	stop()
	start()
	log := pb.NewLogServiceClient(dial(nil))
	if _, err := log.GetEntry(bearer(keep.GetSecret()).ctx(), &pb.GetEntryRequest{Index: 0}); err != nil && status.Code(err) != codes.NotFound {
		t.Errorf("kept token after restart: %v", err)
	}
	_, err = log.GetEntry(bearer(gone.GetSecret()).ctx(), &pb.GetEntryRequest{Index: 0})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("revoked token after restart: %v, want Unauthenticated", err)
	}
	st, err := os.Stat(filepath.Join(data, "auth.json"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("auth.json: %v, %v", st, err)
	}
	b, _ := os.ReadFile(filepath.Join(data, "auth.json"))
	if bytes.Contains(b, []byte(keep.GetSecret())) || bytes.Contains(b, []byte(gone.GetSecret())) {
		t.Error("auth.json holds a token secret")
	}
	stop()
}

type metadataCtx struct {
	t   *testing.T
	tok string
}

func (m metadataCtx) ctx() context.Context {
	return metadata.AppendToOutgoingContext(m.t.Context(), "authorization", "Bearer "+m.tok)
}
