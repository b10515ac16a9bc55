package server

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/provlog/provlog/log/event"
	"github.com/provlog/provlog/log/ledger"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ExistingIndexKey is the trailer carrying the index of the event that an
// AlreadyExists error conflicts with.
const ExistingIndexKey = "provlog-existing-index"

// toStatus is the one place errors become gRPC statuses. Internal details
// are logged here and never sent to the caller.
func toStatus(ctx context.Context, log *slog.Logger, op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var fe *event.FieldError
	var ce *ledger.ConflictError
	switch {
	case errors.As(err, &fe):
		st := status.New(codes.InvalidArgument, fe.Error())
		if d, derr := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: fe.Field, Description: fe.Reason}}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.As(err, &ce):
		idx := strconv.FormatUint(ce.Index, 10)
		_ = grpc.SetTrailer(ctx, metadata.Pairs(ExistingIndexKey, idx))
		st := status.New(codes.AlreadyExists, ce.Error())
		// The index is in the details too, so REST clients see it in the
		// error body without asking for trailers.
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: "EVENT_ID_CONFLICT", Domain: "provlog", Metadata: map[string]string{"existing_index": idx}}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, ledger.ErrPushback):
		st := status.New(codes.Unavailable, "log is busy: too many entries outstanding; retry after the delay given in RetryInfo")
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(200 * time.Millisecond)}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, ledger.ErrClosed):
		return status.Error(codes.Unavailable, "log is shutting down; retry against another instance or later")
	case errors.Is(err, ledger.ErrNoCheckpoint):
		return status.Error(codes.Unavailable, "no checkpoint published yet; retry shortly")
	case errors.Is(err, ledger.ErrNotFound):
		return status.Error(codes.NotFound, "not found in the published log")
	case errors.Is(err, ledger.ErrTreeSize):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: deadline exceeded", op)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled", op)
	case errors.Is(err, ledger.ErrStorageFull):
		// Not logged per call: the ledger logs when the disk fills and empties.
		st := status.New(codes.ResourceExhausted, "log storage is full: the data directory's disk is below its free-space reserve; nothing was appended; retry once space is freed")
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(5 * time.Second)}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, ledger.ErrUnavailable):
		if ok, n := storageErrLog.allow(time.Now()); ok {
			log.ErrorContext(ctx, "storage unavailable", "op", op, "err", err, "suppressed", n)
		}
		st := status.New(codes.Unavailable, "log storage is unavailable; nothing was appended; retry after the delay given in RetryInfo")
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}); derr == nil {
			st = d
		}
		return st.Err()
	}
	if ok, n := internalErrLog.allow(time.Now()); ok {
		log.ErrorContext(ctx, "internal error", "op", op, "err", err, "suppressed", n)
	}
	return status.Errorf(codes.Internal, "%s failed: internal error", op)
}

// A storage failure fails every event of every batch in flight at once:
// one ERROR line a second says so, with how many were left out since the
// last line, instead of one line per event.
var storageErrLog, internalErrLog = sampledLog{every: time.Second}, sampledLog{every: time.Second}

type sampledLog struct {
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now and how many lines it left out since
// the last one it allowed.
func (s *sampledLog) allow(now time.Time) (bool, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.last.IsZero() && now.Sub(s.last) < s.every {
		s.suppressed++
		return false, 0
	}
	n := s.suppressed
	s.last, s.suppressed = now, 0
	return true, n
}

// invalid is an InvalidArgument naming field.
func invalid(field, reason string) error {
	return toStatus(context.Background(), nil, "", &event.FieldError{Field: field, Reason: reason})
}
