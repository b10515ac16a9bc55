package ingest

import (
	"context"
	"fmt"

	"github.com/provlog/provlog/log/event"
	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// appender sends mapped events through the log's own gRPC API, in process,
// with a bearer token: the caller's (OpenLineage) or the source's
// (webhooks). Authorization, validation, idempotency and metrics are then
// exactly those of a gRPC AppendBatch.
type appender struct {
	client pb.LogServiceClient
}

func newAppender(conn grpc.ClientConnInterface) *appender {
	return &appender{client: pb.NewLogServiceClient(conn)}
}

// appendAll appends evs in AppendBatch calls of at most event.MaxBatch
// events and returns one result per event, in order. An error is a call
// that failed as a whole (authentication, permission, unavailable): events
// of earlier calls may be appended, and a retry is a duplicate.
func (a *appender) appendAll(ctx context.Context, token string, evs []*pb.ProvenanceEvent) ([]*pb.AppendResult, error) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	out := make([]*pb.AppendResult, 0, len(evs))
	for start := 0; start < len(evs); start += event.MaxBatch {
		end := min(start+event.MaxBatch, len(evs))
		resp, err := a.client.AppendBatch(ctx, &pb.AppendBatchRequest{Events: evs[start:end]})
		if err != nil {
			return out, err
		}
		if n := len(resp.GetResults()); n != end-start {
			return out, fmt.Errorf("AppendBatch answered %d results for %d events", n, end-start)
		}
		out = append(out, resp.GetResults()...)
	}
	return out, nil
}
