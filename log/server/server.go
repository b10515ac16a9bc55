// Package server exposes a ledger over gRPC (with health and reflection), the
// grpc-gateway REST mapping under /v1/, the tlog-tiles read API under /log/,
// Prometheus metrics under /metrics and liveness under /healthz.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/provlog/provlog/log/auth"
	"github.com/provlog/provlog/log/ingest"
	"github.com/provlog/provlog/log/ledger"
	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/vault"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"github.com/provlog/provlog/ui"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/encoding/protojson"
)

// Limits on what one request may carry.
const (
	// MaxRecvMsgSize bounds one gRPC message (a batch of events).
	MaxRecvMsgSize = 16 << 20
	// MaxHTTPBody bounds one REST request body.
	MaxHTTPBody = 16 << 20
)

// Config configures a Server.
type Config struct {
	Ledger *ledger.Ledger
	// Lineage, when set, serves provlog.v1.LineageService.
	Lineage *lineage.Index
	Auth    auth.Authenticator
	// Admin, when set, serves provlog.v1.AdminService, and its tenant
	// policies and submitter keys govern appends (issue 6).
	Admin  *auth.Store
	Logger *slog.Logger
	// PublishTimeout bounds how long an append waiting for publication waits.
	PublishTimeout time.Duration
	// Now is the clock for validation; time.Now when nil.
	Now func() time.Time
	// TLS, when set, makes the gRPC server speak TLS with it (the HTTP
	// listener is the caller's). A verified client certificate then
	// authenticates through Auth when it is an auth.CertAuthenticator.
	TLS *tls.Config
	// Limits rate-limits callers per identity and tenant (off when zero).
	Limits Limits
	// AccessAudit tunes the access auditor (defaults when zero).
	AccessAudit AccessAudit
	// Registry receives the server's metrics and is served at /metrics; a
	// new one when nil.
	Registry *prometheus.Registry
	// Vault, when set, stores sensitive values (log/vault); without it,
	// events with sensitive values are refused. VaultPolicy says who reads
	// them (nil: auditors and admins) and which fields are sensitive.
	Vault       *vault.Vault
	VaultPolicy *vault.Policy
	// Ingest, when set, serves OpenLineage ingestion, webhooks and the
	// drift report (its Conn, Auth and Registry are filled in here).
	Ingest *ingest.Config
	// LogKey is the log's note verifier key, which the web UI at /ui/
	// offers as its default (issue 9).
	LogKey string
}

// Server holds the gRPC server and the HTTP handler of one provlogd.
type Server struct {
	GRPC    *grpc.Server
	health  *health.Server
	http    http.Handler
	inproc  *bufconn.Listener
	gwConn  *grpc.ClientConn
	log     *slog.Logger
	serving atomic.Bool
}

// Policy is the permission each gRPC method needs.
var Policy = auth.Policy{
	Methods: map[string]auth.Permission{
		pb.LogService_Append_FullMethodName:              auth.PermAppend,
		pb.LogService_AppendBatch_FullMethodName:         auth.PermAppend,
		pb.LogService_AppendStream_FullMethodName:        auth.PermAppend, // issue 8
		pb.LogService_GetEntry_FullMethodName:            auth.PermRead,
		pb.LogService_GetCheckpoint_FullMethodName:       auth.PermProof,
		pb.LogService_GetInclusionProof_FullMethodName:   auth.PermProof,
		pb.LogService_GetConsistencyProof_FullMethodName: auth.PermProof,
		pb.LineageService_Trace_FullMethodName:           auth.PermRead,
		pb.LineageService_History_FullMethodName:         auth.PermRead,
		pb.LineageService_ListRunEvents_FullMethodName:   auth.PermRead,
		pb.LineageService_GetIndexDigest_FullMethodName:  auth.PermProof,

		// issue 9: the runs of a workflow (search by workflow).
		pb.LineageService_ListWorkflowRuns_FullMethodName: auth.PermRead,

		// issue 6: AdminService, admin only.
		pb.AdminService_CreateTenant_FullMethodName:           auth.PermAdmin,
		pb.AdminService_ListTenants_FullMethodName:            auth.PermAdmin,
		pb.AdminService_SetTenantPolicy_FullMethodName:        auth.PermAdmin,
		pb.AdminService_CreateToken_FullMethodName:            auth.PermAdmin,
		pb.AdminService_ListTokens_FullMethodName:             auth.PermAdmin,
		pb.AdminService_RevokeToken_FullMethodName:            auth.PermAdmin,
		pb.AdminService_GrantCertificate_FullMethodName:       auth.PermAdmin,
		pb.AdminService_ListCertificateGrants_FullMethodName:  auth.PermAdmin,
		pb.AdminService_RevokeCertificateGrant_FullMethodName: auth.PermAdmin,
		pb.AdminService_RegisterKey_FullMethodName:            auth.PermAdmin,
		pb.AdminService_RotateKey_FullMethodName:              auth.PermAdmin,
		pb.AdminService_RevokeKey_FullMethodName:              auth.PermAdmin,
		pb.AdminService_ListKeys_FullMethodName:               auth.PermAdmin,
	},
	// Health and reflection expose no data: load balancers and grpcurl use
	// them without credentials.
	PublicPrefixes: []string{"/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"},
}

// New builds the servers. Call Close when done.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 30 * time.Second
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	m := newMetrics(cfg.Registry)
	sens := &sensitive{vault: cfg.Vault, policy: cfg.VaultPolicy, log: cfg.Logger}
	guard, limits := newGuard(cfg)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.ChainUnaryInterceptor(logUnary(cfg.Logger), m.unary(), auth.UnaryInterceptor(cfg.Auth, Policy), guard, recoverUnary(cfg.Logger)),
		grpc.ChainStreamInterceptor(logStream(cfg.Logger), m.stream(), auth.StreamInterceptor(cfg.Auth, Policy), recoverStream(cfg.Logger)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute}),
	}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(inprocOrTLS{credentials.NewTLS(cfg.TLS)}))
	}
	g := grpc.NewServer(opts...)
	pb.RegisterLogServiceServer(g, &logService{
		ledger:         cfg.Ledger,
		log:            cfg.Logger,
		publishTimeout: cfg.PublishTimeout,
		now:            cfg.Now,
		metrics:        m,
		sens:           sens,
		authz:          &authorChecks{store: cfg.Admin, ledger: cfg.Ledger},
		limits:         limits,
		auth:           cfg.Auth,
	})
	if cfg.Admin != nil {
		as := &adminService{store: cfg.Admin, ledger: cfg.Ledger, log: cfg.Logger, now: cfg.Now}
		if err := as.resolvePending(ctx); err != nil {
			return nil, fmt.Errorf("couldn't finish interrupted key changes: %w", err)
		}
		pb.RegisterAdminServiceServer(g, as)
	}
	if cfg.Lineage != nil {
		pb.RegisterLineageServiceServer(g, &lineageService{ledger: cfg.Ledger, index: cfg.Lineage, log: cfg.Logger, sens: sens})
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)

	s := &Server{GRPC: g, health: hs, log: cfg.Logger, inproc: bufconn.Listen(1 << 20)}
	go g.Serve(s.inproc)

	// The gateway goes through the gRPC server (in process), so REST gets
	// exactly the same interceptors: auth, validation, metrics.
	conn, err := grpc.NewClient("passthrough:///provlogd-inproc",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.inproc.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(MaxRecvMsgSize), grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect the REST gateway: %w", err)
	}
	s.gwConn = conn
	gw := runtime.NewServeMux(
		// Forward only our own trailers: the binary grpc-status-details-bin
		// is not a valid HTTP trailer value and would drop them all.
		runtime.WithOutgoingTrailerMatcher(func(key string) (string, bool) {
			if key == ExistingIndexKey {
				return runtime.MetadataTrailerPrefix + key, true
			}
			return "", false
		}),
		runtime.WithMetadata(gatewayCertMetadata),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, oneValueJSON{&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
	)
	if err := pb.RegisterLogServiceHandler(ctx, gw, conn); err != nil {
		return nil, fmt.Errorf("couldn't register the REST gateway: %w", err)
	}
	if cfg.Lineage != nil {
		if err := pb.RegisterLineageServiceHandler(ctx, gw, conn); err != nil {
			return nil, fmt.Errorf("couldn't register the lineage REST gateway: %w", err)
		}
	}
	if cfg.Admin != nil {
		if err := pb.RegisterAdminServiceHandler(ctx, gw, conn); err != nil {
			return nil, fmt.Errorf("couldn't register the admin REST gateway: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", http.MaxBytesHandler(gatewayCert(gw), MaxHTTPBody))
	mux.Handle("/log/", http.StripPrefix("/log", tilesHandler(cfg.Ledger.Reader())))
	mux.Handle("/ui/", ui.Handler(ui.Config{Origin: cfg.Ledger.Origin(), LogKey: cfg.LogKey}))
	mux.Handle("/metrics", auth.RequireHTTP(cfg.Auth, auth.PermAudit, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})))
	// The API description is public, like gRPC reflection: it describes
	// the API, not data.
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(pb.OpenAPI)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.serving.Load() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	if cfg.Ingest != nil {
		if err := mountIngest(mux, conn, cfg, m.reg); err != nil {
			return nil, err
		}
	}
	s.http = mux
	return s, nil
}

// oneValueJSON is the gateway's JSON marshaler, refusing a request body
// that holds anything but white space after its JSON value. The gateway
// reads bodies with a streaming decoder that stops after the first value, so
// without this two concatenated events would append the first and silently
// drop the second.
type oneValueJSON struct{ *runtime.JSONPb }

func (m oneValueJSON) NewDecoder(r io.Reader) runtime.Decoder {
	d := runtime.DecoderWrapper{Decoder: json.NewDecoder(r), UnmarshalOptions: m.UnmarshalOptions}
	return runtime.DecoderFunc(func(v any) error {
		if err := d.Decode(v); err != nil {
			return err
		}
		if _, err := d.Token(); err != io.EOF {
			return errors.New("request body holds more than one JSON value")
		}
		return nil
	})
}

// HTTPHandler is the handler for the HTTP listener.
func (s *Server) HTTPHandler() http.Handler { return s.http }

// SetServing flips health to SERVING or NOT_SERVING.
func (s *Server) SetServing(ok bool) {
	s.serving.Store(ok)
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(pb.LogService_ServiceDesc.ServiceName, st)
}

// Close releases the in-process gateway connection.
func (s *Server) Close() error { return s.gwConn.Close() }
