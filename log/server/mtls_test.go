package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/provlog/provlog/log/server"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

// issue signs a leaf certificate: a server one for 127.0.0.1, or a client
// one with the given URI SAN and CN.
func (ca *testCA) issue(t *testing.T, server bool, uri, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if uri != "" {
			u, _ := url.Parse(uri)
			tmpl.URIs = []*url.URL{u}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// clientTLS trusts ca for the server and always sends cert when given, even
// if it is not from a CA the server asks for (Go's client would otherwise
// silently send none).
func clientTLS(ca *testCA, cert *tls.Certificate) *tls.Config {
	tc := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12}
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
	ca := newTestCA(t, "provlog test CA")
	rogue := newTestCA(t, "rogue CA")
	srvCert := ca.issue(t, true, "", "provlogd")
	serverTLS := &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: ca.pool, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
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
	adminConn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatal(err)
	}
	defer adminConn.Close()
	if _, err := pb.NewAdminServiceClient(adminConn).GrantCertificate(withToken(t.Context(), adminToken), &pb.GrantCertificateRequest{Subject: n8n, Roles: []string{"appender"}, Tenants: []string{"acme"}}); err != nil {
		t.Fatalf("GrantCertificate over TLS: %v", err)
	}

	granted := ca.issue(t, false, n8n, "n8n")
	ungranted := ca.issue(t, false, "spiffe://acme.example/ns/etl/sa/other", "other")
	untrusted := rogue.issue(t, false, n8n, "n8n") // same name, wrong CA

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
