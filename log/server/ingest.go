package server

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/provlog/provlog/log/ingest"
	"google.golang.org/grpc"
)

// mountIngest serves OpenLineage, webhook and drift endpoints (issue 10)
// over the in-process gRPC connection, so ingested events go through the
// same interceptors (auth, validation, idempotency, metrics) as gRPC.
func mountIngest(mux *http.ServeMux, conn grpc.ClientConnInterface, cfg Config, reg *prometheus.Registry) error {
	ic := *cfg.Ingest
	ic.Conn, ic.Auth, ic.Registry = conn, cfg.Auth, reg
	if ic.Logger == nil {
		ic.Logger = cfg.Logger
	}
	routes, err := ingest.Routes(ic)
	if err != nil {
		return fmt.Errorf("couldn't set up ingestion: %w", err)
	}
	for _, r := range routes {
		mux.Handle(r.Pattern, http.MaxBytesHandler(r.Handler, MaxHTTPBody))
	}
	return nil
}
