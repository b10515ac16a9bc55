package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// fakeLineage answers GetIndexDigest with a watermark that grows by step
// on every call, or with err.
type fakeLineage struct {
	provlogv1.UnimplementedLineageServiceServer
	step  uint64
	err   error
	calls atomic.Uint64
}

func (f *fakeLineage) GetIndexDigest(context.Context, *provlogv1.GetIndexDigestRequest) (*provlogv1.GetIndexDigestResponse, error) {
	n := f.calls.Add(1)
	if f.err != nil {
		return nil, f.err
	}
	return &provlogv1.GetIndexDigestResponse{Watermark: n * f.step}, nil
}

// TestWaitIndexed covers every way the wait for the lineage index ends: the
// watermark reaching the log's end, a frontend that cannot say (the phase
// then reports no sustained rate), a watermark that never gets there, and
// a failure that is not pushback.
func TestWaitIndexed(t *testing.T) {
	for _, tc := range []struct {
		name        string
		lineage     *fakeLineage // nil: no LineageService at all
		unavailable bool         // want errIndexUnavailable
		wantErr     string       // want another error containing this
		minCalls    uint64
	}{
		{name: "catches up", lineage: &fakeLineage{step: 40}, minCalls: 3},
		{name: "no lineage service", unavailable: true},
		{name: "permission denied", lineage: &fakeLineage{err: status.Error(codes.PermissionDenied, "auditor only")}, unavailable: true},
		{name: "unauthenticated", lineage: &fakeLineage{err: status.Error(codes.Unauthenticated, "no token")}, unavailable: true},
		{name: "stuck", lineage: &fakeLineage{step: 0}, wantErr: "reached 0 of 100 leaves"},
		{name: "internal", lineage: &fakeLineage{err: status.Error(codes.Internal, "disk on fire")}, wantErr: "disk on fire"},
		// Pushback is waited out like a watermark that is not there yet.
		{name: "pushback until the limit", lineage: &fakeLineage{err: status.Error(codes.Unavailable, "busy")}, wantErr: "reached 0 of 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer()
			if tc.lineage != nil {
				provlogv1.RegisterLineageServiceServer(srv, tc.lineage)
			}
			go srv.Serve(lis)
			t.Cleanup(srv.Stop)
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			p := &provlogTarget{conns: []*grpc.ClientConn{conn}}
			took, err := p.waitIndexed(t.Context(), 100, 600*time.Millisecond) // the log holds leaves 0..99
			switch {
			case tc.unavailable:
				if !errors.Is(err, errIndexUnavailable) {
					t.Fatalf("err = %v, want errIndexUnavailable", err)
				}
			case tc.wantErr != "":
				if err == nil || errors.Is(err, errIndexUnavailable) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				// 40, 80, 120: the third call sees the watermark past 100,
				// after two polls.
				if n := tc.lineage.calls.Load(); n < tc.minCalls {
					t.Errorf("returned after %d GetIndexDigest calls, want %d", n, tc.minCalls)
				}
				if took < 2*indexPoll {
					t.Errorf("took %v, less than the two polls it had to wait", took)
				}
			}
		})
	}
}
