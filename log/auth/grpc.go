package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// GatewayCertKey is the metadata key under which the in-process REST
// gateway forwards the names of the HTTP client's verified certificate. It
// is trusted only on the in-process connection (InProcessNetwork); HTTP
// handlers must strip any client-sent header that would map to it.
const GatewayCertKey = "provlog-gateway-client-cert"

// InProcessNetwork is the network name of the gateway's in-process
// connection (bufconn).
const InProcessNetwork = "bufconn"

// CertNames returns the names a client certificate can be granted under,
// most specific first: URI SANs, DNS SANs, email SANs, then the subject CN.
func CertNames(c *x509.Certificate) []string {
	var out []string
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.DNSNames...)
	out = append(out, c.EmailAddresses...)
	if c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// verifiedCertNames returns the names of the verified client certificate of
// a TLS connection, or nil.
func verifiedCertNames(cs *tls.ConnectionState) []string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return CertNames(cs.VerifiedChains[0][0])
}

// grpcCertNames returns the names of the caller's verified client
// certificate: from the TLS connection, or forwarded by the in-process
// gateway.
func grpcCertNames(ctx context.Context, md metadata.MD) []string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	if p.Addr != nil && p.Addr.Network() == InProcessNetwork {
		return md.Get(GatewayCertKey)
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
		return verifiedCertNames(&ti.State)
	}
	return nil
}

// authenticate finds the caller's identity: a bearer token when one is
// sent, else a verified client certificate granted by a CertAuthenticator.
func authenticate(ctx context.Context, a Authenticator, token string, certNames []string) (*Identity, error) {
	if token == "" && len(certNames) > 0 {
		if ca, ok := a.(CertAuthenticator); ok {
			return ca.AuthenticateCert(ctx, certNames)
		}
	}
	return a.Authenticate(ctx, token)
}

// Policy maps full gRPC method names ("/provlog.v1.LogService/Append") to the
// permission they need. Methods in Public need no credential.
type Policy struct {
	Methods map[string]Permission
	Public  map[string]bool
	// PublicPrefixes lists service prefixes needing no credential, e.g.
	// "/grpc.health.v1.Health/".
	PublicPrefixes []string
}

func (p Policy) public(method string) bool {
	if p.Public[method] {
		return true
	}
	for _, pre := range p.PublicPrefixes {
		if len(method) >= len(pre) && method[:len(pre)] == pre {
			return true
		}
	}
	return false
}

// Authorize is what the interceptors do for a call: authenticate the
// caller of ctx (an incoming gRPC context) and check that it may call
// method, returning ctx with its Identity. A long-lived stream calls it
// again for each message, so that a token revoked or expired mid-stream
// stops working there too.
func (p Policy) Authorize(ctx context.Context, a Authenticator, method string) (context.Context, error) {
	return p.authorize(ctx, a, method)
}

func (p Policy) authorize(ctx context.Context, a Authenticator, method string) (context.Context, error) {
	if p.public(method) {
		return ctx, nil
	}
	perm, ok := p.Methods[method]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "method %s is not open to any role", method)
	}
	var token string
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := BearerToken(v); ok {
			token = t
			break
		}
	}
	id, err := authenticate(ctx, a, token, grpcCertNames(ctx, md))
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "missing or invalid credentials (send \"authorization: Bearer TOKEN\" or a granted client certificate)")
	}
	if !id.Allowed(perm) {
		return nil, status.Errorf(codes.PermissionDenied, "%s needs the %s permission", method, perm)
	}
	return NewContext(ctx, id), nil
}

// UnaryInterceptor authenticates and authorises every unary call.
func UnaryInterceptor(a Authenticator, p Policy) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := p.authorize(ctx, a, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates and authorises every streaming call.
func StreamInterceptor(a Authenticator, p Policy) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := p.authorize(ss.Context(), a, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// RequireHTTP wraps an HTTP handler so that it needs a bearer token granting perm.
func RequireHTTP(a Authenticator, perm Permission, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := BearerToken(r.Header.Get("Authorization"))
		id, err := authenticate(r.Context(), a, tok, verifiedCertNames(r.TLS))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="provlog"`)
			http.Error(w, "missing or invalid bearer token", http.StatusUnauthorized)
			return
		}
		if !id.Allowed(perm) {
			http.Error(w, "permission denied", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// HTTPCertNames returns the names of the verified client certificate of an
// HTTP request, or nil.
func HTTPCertNames(r *http.Request) []string { return verifiedCertNames(r.TLS) }
