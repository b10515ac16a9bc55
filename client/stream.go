package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// AppendStreamer shares one LogService.AppendStream among goroutines: each
// Append sends one request under a fresh correlation id and waits for the
// response that carries it, so many appends are in flight on one stream.
// When the stream breaks, every waiting Append gets its error (a gRPC
// status) and the next Append opens a new stream. It does not retry:
// pushback (Unavailable, ResourceExhausted, as the response's error or an
// event's) is the caller's to resend, which appends' idempotency makes
// safe. Safe for concurrent use.
type AppendStreamer struct {
	client pb.LogServiceClient
	ctx    context.Context // the streams' lifetime
	// check, when set, verifies each appended event's result.
	check func(ev *pb.ProvenanceEvent, r *pb.AppendResult, wait pb.WaitFor) error

	mu     sync.Mutex
	cur    *appendStream // nil before the first Append, or after a break
	nextID uint64
	opened int
}

// appendStream is one open stream and the Appends waiting on it.
type appendStream struct {
	stream  grpc.BidiStreamingClient[pb.AppendStreamRequest, pb.AppendStreamResponse]
	cancel  context.CancelFunc
	sendMu  sync.Mutex
	mu      sync.Mutex
	waiting map[uint64]chan *pb.AppendStreamResponse
	err     error         // why the stream ended, once done is closed
	done    chan struct{} // closed when the receive loop ends
}

// NewAppendStreamer returns an AppendStreamer on c whose streams live until
// ctx ends or Close; ctx carries the credentials (metadata) if c's
// connection does not. Responses are returned as the server sent them,
// unverified.
func NewAppendStreamer(ctx context.Context, c pb.LogServiceClient) *AppendStreamer {
	return &AppendStreamer{client: c, ctx: ctx}
}

// AppendStreamer returns an AppendStreamer on the client's connection and
// token whose Append verifies receipts as Append does: with
// WAIT_FOR_PUBLISHED, every appended event's receipt must verify against
// the policy and hold exactly the event sent.
func (c *Client) AppendStreamer(ctx context.Context) *AppendStreamer {
	s := NewAppendStreamer(c.Context(ctx), c.log)
	s.check = func(ev *pb.ProvenanceEvent, r *pb.AppendResult, wait pb.WaitFor) error {
		return c.checkResult(ev, r.GetIndex(), r.GetLeafHash(), r.GetReceipt(), r.GetOpenings(), wait)
	}
	return s
}

// Opened is how many streams have been opened so far.
func (m *AppendStreamer) Opened() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.opened
}

// stream returns the open stream, opening one if needed, and a fresh
// correlation id.
func (m *AppendStreamer) stream() (*appendStream, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextID++
	if m.cur != nil {
		select {
		case <-m.cur.done:
			m.cur = nil
		default:
			return m.cur, m.nextID, nil
		}
	}
	sctx, cancel := context.WithCancel(m.ctx)
	st, err := m.client.AppendStream(sctx)
	if err != nil {
		cancel()
		return nil, 0, err
	}
	s := &appendStream{stream: st, cancel: cancel, waiting: map[uint64]chan *pb.AppendStreamResponse{}, done: make(chan struct{})}
	go s.receive()
	m.cur = s
	m.opened++
	return s, m.nextID, nil
}

// receive hands each response to its waiter until the stream ends.
func (s *appendStream) receive() {
	var err error
	for {
		var resp *pb.AppendStreamResponse
		if resp, err = s.stream.Recv(); err != nil {
			break
		}
		s.mu.Lock()
		ch, ok := s.waiting[resp.GetCorrelationId()]
		delete(s.waiting, resp.GetCorrelationId())
		s.mu.Unlock()
		if ok { // else its Append gave up waiting
			ch <- resp
		}
	}
	if errors.Is(err, io.EOF) {
		err = status.Error(codes.Unavailable, "AppendStream ended by the server")
	}
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.done)
	s.cancel()
}

// Append sends evs in one request and returns its response: per-event
// results in request order, or the request's error (resp.Error) where
// AppendBatch would have failed the call. The error is non-nil when the
// stream broke (a gRPC status), ctx ended, or a result did not verify
// (wrapping ErrVerification).
func (m *AppendStreamer) Append(ctx context.Context, evs []*pb.ProvenanceEvent, wait pb.WaitFor) (*pb.AppendStreamResponse, error) {
	s, id, err := m.stream()
	if err != nil {
		return nil, fmt.Errorf("append stream: %w", err)
	}
	ch := make(chan *pb.AppendStreamResponse, 1)
	s.mu.Lock()
	s.waiting[id] = ch
	s.mu.Unlock()
	s.sendMu.Lock()
	err = s.stream.Send(&pb.AppendStreamRequest{CorrelationId: id, Events: evs, Wait: wait})
	s.sendMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) { // io.EOF: the stream ended, and receive says why
		s.cancel()
	}
	var resp *pb.AppendStreamResponse
	select {
	case resp = <-ch:
	case <-s.done:
		select {
		case resp = <-ch: // answered just before the end
		default:
			s.mu.Lock()
			defer s.mu.Unlock()
			return nil, fmt.Errorf("append stream: %w", s.err)
		}
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	if resp.GetError() == nil && len(resp.GetResults()) != len(evs) {
		return nil, fmt.Errorf("%w: sent %d events, got %d results", ErrVerification, len(evs), len(resp.GetResults()))
	}
	if m.check != nil {
		for i, r := range resp.GetResults() {
			if r.GetError() == nil {
				if err := m.check(evs[i], r, wait); err != nil {
					return nil, fmt.Errorf("append stream: event %d (%q): %w", i, evs[i].GetEventId(), err)
				}
			}
		}
	}
	return resp, nil
}

// Close ends the open stream's sending side and waits until the server has
// answered what it was sent and ended the stream.
func (m *AppendStreamer) Close() {
	m.mu.Lock()
	s := m.cur
	m.cur = nil
	m.mu.Unlock()
	if s == nil {
		return
	}
	s.sendMu.Lock()
	s.stream.CloseSend()
	s.sendMu.Unlock()
	<-s.done
}
