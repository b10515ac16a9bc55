package auth

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

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

func (p Policy) authorize(ctx context.Context, a Authenticator, method string) (context.Context, error) {
	if p.public(method) {
		return ctx, nil
	}
	perm, ok := p.Methods[method]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "method %s is not open to any role", method)
	}
	var token string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if t, ok := BearerToken(v); ok {
				token = t
				break
			}
		}
	}
	id, err := a.Authenticate(ctx, token)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "missing or invalid bearer token (send \"authorization: Bearer TOKEN\")")
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
		id, err := a.Authenticate(r.Context(), tok)
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
