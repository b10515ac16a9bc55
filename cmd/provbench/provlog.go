package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// checkLoopback refuses any address that is not on this machine: provbench
// is a load generator and must not be pointed at someone else's log.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("bad address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("address %q is not a loopback address: provbench only drives a log on this machine", addr)
}

// bearer sends a bearer token with every call. The connection is plaintext,
// which is acceptable only because it never leaves the machine.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

// dialProvlog connects to provlogd at addr and checks it is serving.
func dialProvlog(ctx context.Context, addr, token string) (*grpc.ClientConn, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(token)))
	if err != nil {
		return nil, fmt.Errorf("couldn't create gRPC client for %s: %w", addr, err)
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(hctx, &grpc_health_v1.HealthCheckRequest{}, grpc.WaitForReady(true))
	switch {
	case status.Code(err) == codes.Unimplemented:
		// No health service: the first append will tell.
	case err != nil:
		conn.Close()
		return nil, fmt.Errorf("provlogd at %s is not reachable: %w", addr, err)
	case resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING:
		conn.Close()
		return nil, fmt.Errorf("provlogd at %s is %v", addr, resp.GetStatus())
	}
	return conn, nil
}

// retryable says whether an append failure is pushback: the log is busy or
// restarting, and the same request (appends are idempotent by event id)
// may succeed later.
func retryable(c codes.Code) bool {
	return c == codes.Unavailable || c == codes.ResourceExhausted
}

// provlogTarget appends generated events to provlogd.
type provlogTarget struct {
	client provlogv1.LogServiceClient
	gen    *generator
	wait   provlogv1.WaitFor
}

// unary appends one event per Append call; n is always 1.
func (p *provlogTarget) unary(ctx context.Context, n int, st *workerStats, stopAt time.Time) error {
	for range n {
		if err := p.appendOne(ctx, st, stopAt); err != nil {
			return err
		}
	}
	return nil
}

func (p *provlogTarget) appendOne(ctx context.Context, st *workerStats, stopAt time.Time) error {
	req := &provlogv1.AppendRequest{Event: p.gen.next(), Wait: p.wait}
	var b backoff
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		resp, err := p.client.Append(cctx, req)
		cancel()
		if err == nil {
			st.events++
			if resp.GetDuplicate() {
				st.duplicates++
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(status.Code(err)) {
			return fmt.Errorf("couldn't append event %q: %w", req.GetEvent().GetEventId(), err)
		}
		if !time.Now().Before(stopAt) {
			st.abandoned++
			return nil
		}
		st.retries++
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

// batch appends n events in one AppendBatch call, resending the events
// that met pushback.
func (p *provlogTarget) batch(ctx context.Context, n int, st *workerStats, stopAt time.Time) error {
	pending := p.gen.nextN(n)
	var b backoff
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		resp, err := p.client.AppendBatch(cctx, &provlogv1.AppendBatchRequest{Events: pending, Wait: p.wait})
		cancel()
		var again []*provlogv1.ProvenanceEvent
		switch {
		case err == nil:
			if got := len(resp.GetResults()); got != len(pending) {
				return fmt.Errorf("AppendBatch returned %d results for %d events", got, len(pending))
			}
			for i, r := range resp.GetResults() {
				if e := r.GetError(); e != nil {
					c := codes.Code(e.GetCode())
					if retryable(c) {
						again = append(again, pending[i])
						continue
					}
					return fmt.Errorf("event %q rejected: %v: %s (field %q)", pending[i].GetEventId(), c, e.GetMessage(), e.GetField())
				}
				st.events++
				if r.GetDuplicate() {
					st.duplicates++
				}
			}
			if len(again) == 0 {
				return nil
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case retryable(status.Code(err)):
			again = pending
		default:
			return fmt.Errorf("couldn't append a batch of %d events: %w", len(pending), err)
		}
		if !time.Now().Before(stopAt) {
			st.abandoned += uint64(len(again))
			return nil
		}
		st.retries++
		if err := b.wait(ctx); err != nil {
			return err
		}
		pending = again
	}
}

var errNoToken = errors.New("no bearer token: pass --token or --token-file")
