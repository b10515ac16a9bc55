package main

import (
	"context"
	"errors"
	"io"
	"sync"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamMux shares one AppendStream among many callers: each call sends a
// request under a fresh correlation id and waits for the response that
// carries it. When the stream breaks, every waiting call gets the error,
// and the next call opens a new stream (appends are idempotent, so the
// callers' resends are safe).
type streamMux struct {
	client provlogv1.LogServiceClient
	ctx    context.Context // the streams' lifetime: the phase's

	mu      sync.Mutex
	cur     *muxStream // nil until the first call, or after a break
	nextID  uint64
	streams int // opened so far
}

// muxStream is one open stream and its waiters.
type muxStream struct {
	stream  grpc.BidiStreamingClient[provlogv1.AppendStreamRequest, provlogv1.AppendStreamResponse]
	cancel  context.CancelFunc
	sendMu  sync.Mutex
	mu      sync.Mutex
	waiting map[uint64]chan *provlogv1.AppendStreamResponse
	err     error         // why the stream ended, once done is closed
	done    chan struct{} // closed when the receive loop ends
}

func newStreamMux(ctx context.Context, c provlogv1.LogServiceClient) *streamMux {
	return &streamMux{client: c, ctx: ctx}
}

// get returns the open stream, opening one if needed, and a correlation id.
func (m *streamMux) get() (*muxStream, uint64, error) {
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
	s := &muxStream{stream: st, cancel: cancel, waiting: map[uint64]chan *provlogv1.AppendStreamResponse{}, done: make(chan struct{})}
	go s.receive()
	m.cur = s
	m.streams++
	return s, m.nextID, nil
}

// receive hands each response to its waiter until the stream ends.
func (s *muxStream) receive() {
	var err error
	for {
		var resp *provlogv1.AppendStreamResponse
		resp, err = s.stream.Recv()
		if err != nil {
			break
		}
		s.mu.Lock()
		ch, ok := s.waiting[resp.GetCorrelationId()]
		delete(s.waiting, resp.GetCorrelationId())
		s.mu.Unlock()
		if ok { // else its call gave up waiting (timeout)
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

// call sends req under a fresh correlation id and returns its response,
// or the stream's error (a status) if the stream breaks first.
func (m *streamMux) call(ctx context.Context, req *provlogv1.AppendStreamRequest) (*provlogv1.AppendStreamResponse, error) {
	s, id, err := m.get()
	if err != nil {
		return nil, err
	}
	req.CorrelationId = id
	ch := make(chan *provlogv1.AppendStreamResponse, 1)
	s.mu.Lock()
	s.waiting[id] = ch
	s.mu.Unlock()
	s.sendMu.Lock()
	err = s.stream.Send(req)
	s.sendMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) { // io.EOF: the stream ended; done says why
		s.cancel()
	}
	select {
	case resp := <-ch:
		return resp, nil
	case <-s.done:
		select {
		case resp := <-ch: // answered just before the end
			return resp, nil
		default:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return nil, s.err
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// close ends the open stream's sending side and waits for the server to
// finish it.
func (m *streamMux) close() {
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
