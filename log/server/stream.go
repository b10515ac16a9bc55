package server

import (
	"context"
	"errors"
	"io"
	"runtime/debug"
	"sync"

	"github.com/provlog/provlog/log/auth"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxStreamInFlight bounds the requests of one AppendStream being handled
// at once. Past it the server stops reading the stream, so HTTP/2 flow
// control holds the client back instead of the server's memory growing.
const maxStreamInFlight = 256

// AppendStream handles each request as AppendBatch would (appendEvents),
// concurrently up to maxStreamInFlight, and answers each in completion
// order. Request-level failures go into the response's error and the
// stream continues; only a broken stream or a failed send ends it.
func (s *logService) AppendStream(stream grpc.BidiStreamingServer[pb.AppendStreamRequest, pb.AppendStreamResponse]) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	var (
		sendMu  sync.Mutex
		sendErr error
		wg      sync.WaitGroup
		slots   = make(chan struct{}, maxStreamInFlight)
	)
	send := func(resp *pb.AppendStreamResponse) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if sendErr != nil {
			return
		}
		if err := stream.Send(resp); err != nil {
			sendErr = err
			cancel() // nobody is listening: stop the work in flight
		}
	}
	var recvErr error
	for {
		req, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		// The credentials are checked again for each request: a token
		// revoked or expired while the stream is open ends it.
		id, err := s.reauthorize(ctx)
		if err != nil {
			recvErr = err
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			send(s.streamOne(ctx, id, req))
		})
	}
	wg.Wait()
	sendMu.Lock()
	defer sendMu.Unlock()
	switch {
	case recvErr != nil:
		return recvErr
	case sendErr != nil:
		return sendErr
	}
	return ctx.Err()
}

// reauthorize authenticates the stream's caller again, as the stream
// interceptor did when it opened.
func (s *logService) reauthorize(ctx context.Context) (*auth.Identity, error) {
	if s.auth == nil {
		return auth.FromContext(ctx), nil
	}
	actx, err := Policy.Authorize(ctx, s.auth, pb.LogService_AppendStream_FullMethodName)
	if err != nil {
		return nil, err
	}
	return auth.FromContext(actx), nil
}

// streamOne handles one request of a stream: the rate limits the unary
// interceptor applies to AppendBatch, then appendEvents. A panic becomes
// this request's Internal error, as recoverUnary makes it for a call.
func (s *logService) streamOne(ctx context.Context, id *auth.Identity, req *pb.AppendStreamRequest) (resp *pb.AppendStreamResponse) {
	resp = &pb.AppendStreamResponse{CorrelationId: req.GetCorrelationId()}
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "handler panic", "method", pb.LogService_AppendStream_FullMethodName, "panic", r, "stack", string(debug.Stack()))
			resp = &pb.AppendStreamResponse{CorrelationId: req.GetCorrelationId(), Error: &pb.AppendError{Code: int32(codes.Internal), Message: "internal error"}}
		}
	}()
	err := s.limits.allow(id, req)
	var out *pb.AppendBatchResponse
	if err == nil {
		out, err = s.appendEvents(ctx, req.GetEvents(), req.GetWait(), "AppendStream")
	}
	if err != nil {
		resp.Error = requestError(err)
		return resp
	}
	resp.Results, resp.Checkpoint = out.GetResults(), out.GetCheckpoint()
	return resp
}

// requestError is a request-level failure of a stream request, as the
// AppendError the response carries; err is already a status (appendEvents
// and the limiter return statuses). The field comes from a BadRequest
// detail, as AppendBatch's InvalidArgument carries it.
func requestError(err error) *pb.AppendError {
	st := status.Convert(err)
	ae := &pb.AppendError{Code: int32(st.Code()), Message: st.Message()}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			ae.Field = br.GetFieldViolations()[0].GetField()
		}
	}
	return ae
}
