package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/provlog/provlog/client"
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

// provlogTarget appends generated events to one or more provlogd
// frontends: worker w calls frontend w mod len(clients).
type provlogTarget struct {
	conns   []*grpc.ClientConn
	clients []provlogv1.LogServiceClient
	gen     *generator
	wait    provlogv1.WaitFor
	// streams, in stream mode: worker w sends on streams[w mod len].
	streams []*client.AppendStreamer
}

// indexPoll is how often waitIndexed asks for the index's watermark.
const indexPoll = 100 * time.Millisecond

// errIndexUnavailable means the frontend does not say how far its lineage
// index is (no lineage service, or a token that may not ask).
var errIndexUnavailable = errors.New("the lineage index watermark is not available")

// waitIndexed waits until the lineage index covers the log up to want (its
// watermark reaches want: a phase's logEnd), for at most limit, and
// returns how long that took.
func (p *provlogTarget) waitIndexed(ctx context.Context, want uint64, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	lc := provlogv1.NewLineageServiceClient(p.conns[0])
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		resp, err := lc.GetIndexDigest(cctx, &provlogv1.GetIndexDigestRequest{})
		cancel()
		switch c := status.Code(err); {
		case err == nil:
		case c == codes.Unimplemented || c == codes.PermissionDenied || c == codes.Unauthenticated:
			return 0, fmt.Errorf("%w: %w", errIndexUnavailable, err)
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case !retryable(c):
			return 0, fmt.Errorf("couldn't read the lineage index watermark: %w", err)
		}
		if err == nil && resp.GetWatermark() >= want {
			return time.Since(start), nil
		}
		if time.Since(start) >= limit {
			return 0, fmt.Errorf("the lineage index reached %d of %d leaves in %v", resp.GetWatermark(), want, limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(indexPoll):
		}
	}
}

func (p *provlogTarget) client(w int) provlogv1.LogServiceClient {
	return p.clients[w%len(p.clients)]
}

func (p *provlogTarget) close() {
	for _, c := range p.conns {
		c.Close()
	}
}

// probeTimeout bounds the setup check of each frontend.
const probeTimeout = 30 * time.Second

// probe appends one event to each frontend, so that a setup problem (no
// vault for sensitive values, a token that may not append) ends the run
// before the first phase, with the frontend's own error. A frontend other
// than the first may not know a just registered submitter key yet
// (frontends of one log share it through the database: one that does not
// know a key rereads the shared state, at most four times a second, and
// every 500ms anyway): those it refuses, it is asked again, for up to
// probeTimeout.
func (p *provlogTarget) probe(ctx context.Context) error {
	for i, c := range p.clients {
		deadline := time.Now().Add(probeTimeout)
		var b backoff
		for {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			_, err := c.Append(cctx, &provlogv1.AppendRequest{Event: p.gen.next(), Wait: p.wait})
			cancel()
			if err == nil {
				break
			}
			code := status.Code(err)
			again := retryable(code) || (i > 0 && p.gen.kind.name == kindSigned && code == codes.InvalidArgument)
			if ctx.Err() != nil || !again || time.Now().After(deadline) {
				hint := ""
				if i > 0 && p.gen.kind.name == kindSigned {
					hint = fmt.Sprintf(" (the submitter key was registered through frontend 1; frontend %d has not learnt it in %v: do both use the same --mysql-dsn database?)", i+1, probeTimeout)
				}
				return fmt.Errorf("frontend %d refused a %s test event%s: %w", i+1, p.gen.kind.name, hint, err)
			}
			if err := b.wait(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// openStreams sets up perFrontend AppendStream multiplexers per frontend
// for a stream phase; stream i is on frontend i mod len(clients), so worker
// w streams to the frontend it would call in the other modes.
func (p *provlogTarget) openStreams(ctx context.Context, perFrontend int) {
	p.streams = nil
	for range perFrontend {
		for _, c := range p.clients {
			p.streams = append(p.streams, client.NewAppendStreamer(ctx, c))
		}
	}
}

// closeStreams ends the phase's streams and returns how many were opened
// (more than set up when some broke and were reopened).
func (p *provlogTarget) closeStreams() int {
	n := 0
	for _, m := range p.streams {
		m.Close()
		n += m.Opened()
	}
	p.streams = nil
	return n
}

// unary appends one event per Append call; n is always 1.
func (p *provlogTarget) unary(ctx context.Context, w, n int, st *workerStats, stopAt time.Time) error {
	for range n {
		if err := p.appendOne(ctx, p.client(w), st, stopAt); err != nil {
			return err
		}
	}
	return nil
}

func (p *provlogTarget) appendOne(ctx context.Context, c provlogv1.LogServiceClient, st *workerStats, stopAt time.Time) error {
	req := &provlogv1.AppendRequest{Event: p.gen.next(), Wait: p.wait}
	var b backoff
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		resp, err := c.Append(cctx, req)
		cancel()
		if err == nil {
			st.events++
			st.sequenced(resp.GetIndex())
			if resp.GetDuplicate() {
				st.duplicates++
			}
			if cp := resp.GetReceipt().GetCheckpoint(); cp != nil {
				st.sigs.add(countSignatures(cp))
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
func (p *provlogTarget) batch(ctx context.Context, w, n int, st *workerStats, stopAt time.Time) error {
	c := p.client(w)
	return p.resend(ctx, p.gen.nextN(n), st, stopAt, func(ctx context.Context, evs []*provlogv1.ProvenanceEvent) ([]*provlogv1.AppendResult, []byte, error) {
		resp, err := c.AppendBatch(ctx, &provlogv1.AppendBatchRequest{Events: evs, Wait: p.wait})
		return resp.GetResults(), resp.GetCheckpoint(), err
	})
}

// stream appends n events in one request on worker w's AppendStream,
// resending the events that met pushback.
func (p *provlogTarget) stream(ctx context.Context, w, n int, st *workerStats, stopAt time.Time) error {
	m := p.streams[w%len(p.streams)]
	return p.resend(ctx, p.gen.nextN(n), st, stopAt, func(ctx context.Context, evs []*provlogv1.ProvenanceEvent) ([]*provlogv1.AppendResult, []byte, error) {
		resp, err := m.Append(ctx, evs, p.wait)
		if err != nil {
			return nil, nil, err
		}
		if e := resp.GetError(); e != nil {
			return nil, nil, status.Error(codes.Code(e.GetCode()), e.GetMessage())
		}
		return resp.GetResults(), resp.GetCheckpoint(), nil
	})
}

// sendFunc sends events in one call and returns one result per event and
// the checkpoint of a published wait, or the call's error as a status.
type sendFunc func(ctx context.Context, evs []*provlogv1.ProvenanceEvent) ([]*provlogv1.AppendResult, []byte, error)

// resend sends pending and then, after a backoff, whatever met pushback
// (the whole call's, or single events'), until all are acknowledged or
// stopAt has passed.
func (p *provlogTarget) resend(ctx context.Context, pending []*provlogv1.ProvenanceEvent, st *workerStats, stopAt time.Time, send sendFunc) error {
	var b backoff
	for {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		results, cp, err := send(cctx, pending)
		cancel()
		var again []*provlogv1.ProvenanceEvent
		switch {
		case err == nil:
			if got := len(results); got != len(pending) {
				return fmt.Errorf("%d results for %d events", got, len(pending))
			}
			if cp != nil {
				st.sigs.add(countSignatures(cp))
			}
			for i, r := range results {
				if e := r.GetError(); e != nil {
					c := codes.Code(e.GetCode())
					if retryable(c) {
						again = append(again, pending[i])
						continue
					}
					return fmt.Errorf("event %q rejected: %v: %s (field %q)", pending[i].GetEventId(), c, e.GetMessage(), e.GetField())
				}
				st.events++
				st.sequenced(r.GetIndex())
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
			return fmt.Errorf("couldn't append %d events: %w", len(pending), err)
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

// countSignatures counts the signature lines of a signed note (a
// checkpoint): the lines after its last blank line that start with "— ".
func countSignatures(note []byte) int {
	i := bytes.LastIndex(note, []byte("\n\n"))
	if i < 0 {
		return 0
	}
	n := 0
	for _, line := range bytes.Split(note[i+2:], []byte("\n")) {
		if bytes.HasPrefix(line, []byte("\u2014 ")) {
			n++
		}
	}
	return n
}

var errNoToken = errors.New("no bearer token: pass --token or --token-file")
