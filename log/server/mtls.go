package server

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/provlog/provlog/log/auth"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// inprocOrTLS is the gRPC server's TLS, except on the gateway's in-process
// pipe (bufconn), which never leaves the process: the gateway's HTTP
// listener did the TLS.
type inprocOrTLS struct {
	credentials.TransportCredentials
}

func (c inprocOrTLS) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if conn.RemoteAddr().Network() == auth.InProcessNetwork {
		return insecure.NewCredentials().ServerHandshake(conn)
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c inprocOrTLS) Clone() credentials.TransportCredentials {
	return inprocOrTLS{c.TransportCredentials.Clone()}
}

// gatewayCert drops any client-sent header that the gateway would forward
// as the in-process certificate metadata: only gatewayCertMetadata, from
// the verified TLS connection, may set it.
func gatewayCert(next http.Handler) http.Handler {
	forged := "grpc-metadata-" + auth.GatewayCertKey
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.EqualFold(k, forged) || strings.EqualFold(k, auth.GatewayCertKey) {
				r.Header.Del(k)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// gatewayCertMetadata forwards the names of the HTTP client's verified
// certificate to the gRPC interceptors over the in-process connection.
func gatewayCertMetadata(_ context.Context, r *http.Request) metadata.MD {
	names := auth.HTTPCertNames(r)
	if len(names) == 0 {
		return nil
	}
	return metadata.MD{auth.GatewayCertKey: names}
}
