package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/provlog/provlog/proto/provlog/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// BenchmarkAppendSensitive appends batches of 100 events over gRPC to an
// in-process provlogd with a vault and the lineage indexer running,
// 16 batches in flight: plain events, and the same events carrying 3
// sensitive values each (sealed into the vault: AES-256-GCM, one synced
// vault write per batch). One op is one batch; events/s is the figure to
// compare.
func BenchmarkAppendSensitive(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", "02-crm-export-read-contacts.json"))
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &pb.ProvenanceEvent{}
	if err := protojson.Unmarshal(raw, tmpl); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 3} {
		b.Run(fmt.Sprintf("sensitive=%d", n), func(b *testing.B) {
			h := startSV(b, b.TempDir(), newKeyFile(b), &vclock{t: testNow})
			ctx := withToken(b.Context(), svAppender)
			var seq atomic.Int64
			batch := func() []*pb.ProvenanceEvent {
				evs := make([]*pb.ProvenanceEvent, 100)
				for i := range evs {
					ev := proto.Clone(tmpl).(*pb.ProvenanceEvent)
					id := seq.Add(1)
					ev.EventId = fmt.Sprintf("bench-%d", id)
					for j := range n {
						ev.Sensitive = append(ev.Sensitive, &pb.SensitiveValue{
							Name: fmt.Sprintf("field-%d", j), Classification: []string{"pii", "pii", "confidential"}[j],
							Value: fmt.Sprintf("value %d of event %d: alice.%d@example.com", j, id, id),
						})
					}
					evs[i] = ev
				}
				return evs
			}
			b.SetParallelism(8)
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb_ *testing.PB) {
				for pb_.Next() {
					r, err := h.log.AppendBatch(ctx, &pb.AppendBatchRequest{Events: batch()})
					if err != nil {
						b.Error(err)
						return
					}
					for _, res := range r.GetResults() {
						if res.GetError() != nil {
							b.Error(res.GetError())
							return
						}
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N*100)/time.Since(start).Seconds(), "events/s")
			h.stop(b)
		})
	}
}
