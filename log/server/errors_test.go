package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/provlog/provlog/log/ledger"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestStorageErrorStatus: storage failures become retryable codes with a
// message and RetryInfo, never Internal.
func TestStorageErrorStatus(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		err  error
		code codes.Code
		msg  string
	}{
		{fmt.Errorf("%w: 1 bytes free under /data, below the reserve of 2", ledger.ErrStorageFull), codes.ResourceExhausted, "log storage is full"},
		{fmt.Errorf("%w: sequencing entry: write x: no space left on device", ledger.ErrUnavailable), codes.Unavailable, "log storage is unavailable"},
		{fmt.Errorf("%w: too many", ledger.ErrPushback), codes.Unavailable, "log is busy"},
	} {
		st := status.Convert(toStatus(context.Background(), quiet, "Append", tc.err))
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%v: got %v %q, want %v %q", tc.err, st.Code(), st.Message(), tc.code, tc.msg)
		}
		if strings.Contains(st.Message(), "/data") || strings.Contains(st.Message(), "no space left") {
			t.Errorf("%v: the message leaks internal detail: %q", tc.err, st.Message())
		}
		var retry bool
		for _, d := range st.Details() {
			_, ok := d.(*errdetails.RetryInfo)
			retry = retry || ok
		}
		if !retry {
			t.Errorf("%v: no RetryInfo in %v", tc.err, st.Details())
		}
	}
}

// TestSampledLog: a burst of failures logs one line a second, and the next
// line says how many it left out.
func TestSampledLog(t *testing.T) {
	s := sampledLog{every: time.Second}
	t0 := time.Unix(1000, 0)
	if ok, n := s.allow(t0); !ok || n != 0 {
		t.Fatalf("first allow = %v, %d; want true, 0", ok, n)
	}
	for i := range 99 {
		if ok, _ := s.allow(t0.Add(time.Duration(i) * time.Millisecond)); ok {
			t.Fatalf("allow %d within the second = true", i)
		}
	}
	if ok, n := s.allow(t0.Add(time.Second)); !ok || n != 99 {
		t.Fatalf("allow after a second = %v, %d; want true, 99", ok, n)
	}
}
