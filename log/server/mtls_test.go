package server_test

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/provlog/provlog/internal/testcerts"
	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// clientTLS trusts ca for the server and always sends cert when given, even
// if it is not from a CA the server asks for (Go's client would otherwise
// silently send none).
func clientTLS(ca *testcerts.CA, cert *tls.Certificate) *tls.Config {
	tc := &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
	if cert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return tc
}

// TestMTLS: a client certificate from the trusted CA, granted roles through
// AdminService, authenticates over gRPC and over REST; an untrusted one
// fails the handshake; a trusted but ungranted one is Unauthenticated; a
// client cannot forge the gateway's certificate metadata.
func TestMTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "provlog test CA")
	rogue := testcerts.NewCA(t, "rogue CA")
	srvCert := ca.Issue(t, true, "", "provlogd")
	serverTLS := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.Pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	h := startAdminHarnessWith(t, func(c *server.Config, _ string) { c.TLS = serverTLS })
	const n8n = "spiffe://acme.example/ns/etl/sa/n8n"
	if _, err := h.admin.GrantCertificate(withToken(t.Context(), adminToken), &pb.GrantCertificateRequest{Subject: n8n, Roles: []string{"appender"}, Tenants: []string{"acme"}}); err == nil {
		t.Fatal("the plaintext harness client reached a TLS server")
	}
	grpcAddr := h.conn.Target()
	hs := httptest.NewUnstartedServer(h.srv.HTTPHandler())
	hs.TLS = serverTLS.Clone()
	hs.StartTLS()
	t.Cleanup(hs.Close)

	dial := func(cert *tls.Certificate) pb.LogServiceClient {
		t.Helper()
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(ca, cert))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return pb.NewLogServiceClient(conn)
	}
	// Grant the certificate, as admin over TLS with the bootstrap token.
	adminConn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	if _, err := pb.NewAdminServiceClient(adminConn).GrantCertificate(withToken(t.Context(), adminToken), &pb.GrantCertificateRequest{Subject: n8n, Roles: []string{"appender"}, Tenants: []string{"acme"}}); err != nil {
		t.Fatalf("GrantCertificate over TLS: %v", err)
	}

	granted := ca.Issue(t, false, n8n, "n8n")
	ungranted := ca.Issue(t, false, "spiffe://acme.example/ns/etl/sa/other", "other")
	untrusted := rogue.Issue(t, false, n8n, "n8n") // same name, wrong CA

	// gRPC.
	r, err := dial(&granted).Append(t.Context(), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "cert")), Wait: pb.WaitFor_WAIT_FOR_PUBLISHED})
	if err != nil {
		t.Fatalf("Append with a granted certificate: %v", err)
	}
	if e := r.GetReceipt().GetLeaf(); !bytes.Contains(e, []byte("cert:"+n8n)) {
		t.Errorf("leaf does not name the certificate identity as submitter")
	}
	foreign := readEvent(t, uniqueID(t, "cert-foreign"))
	foreign.Tenant = "other"
	_, err = dial(&granted).Append(t.Context(), &pb.AppendRequest{Event: foreign})
	grpcCode(t, err, codes.PermissionDenied, "tenant")
	_, err = dial(&ungranted).Append(t.Context(), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "ungranted"))})
	grpcCode(t, err, codes.Unauthenticated)
	_, err = dial(&untrusted).Append(t.Context(), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "untrusted"))})
	if c := status.Code(err); c != codes.Unavailable {
		t.Errorf("untrusted certificate: %v, want the handshake refused (Unavailable)", err)
	}
	_, err = dial(nil).Append(t.Context(), &pb.AppendRequest{Event: readEvent(t, uniqueID(t, "anon"))})
	grpcCode(t, err, codes.Unauthenticated)

	// REST.
	post := func(cert *tls.Certificate, hdr map[string]string) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(ca, cert)}, Timeout: 10 * time.Second}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, hs.URL+"/v1/events", bytes.NewReader(eventJSON(t, readEvent(t, uniqueID(t, "rest"+hdr["n"])))))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return resp, err
	}
	if resp, err := post(&granted, map[string]string{"n": "1"}); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("REST with a granted certificate: %v, %v", resp, err)
	}
	if _, err := post(&untrusted, map[string]string{"n": "2"}); err == nil {
		t.Error("REST with an untrusted certificate: the handshake succeeded")
	}
	for _, k := range []string{"Grpc-Metadata-Provlog-Gateway-Client-Cert", "grpc-metadata-provlog-gateway-client-cert", "Provlog-Gateway-Client-Cert"} {
		if resp, err := post(nil, map[string]string{"n": k, k: n8n}); err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("REST with a forged %s header: %v, %v; want 401", k, resp, err)
		}
	}
}
