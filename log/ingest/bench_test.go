package ingest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/provlog/provlog/log/ingest"
	pb "github.com/provlog/provlog/proto/provlog/v1"
)

// benchBatch is the number of events per request in BenchmarkIngest.
const benchBatch = 100

// benchClients is the number of concurrent senders in BenchmarkIngest.
const benchClients = 8

// olBatch returns a JSON array of n distinct Spark COMPLETE events (column
// lineage, facets), numbered from first.
func olBatch(b *testing.B, tmpl []byte, first, n int) []byte {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i := range n {
		if i > 0 {
			buf.WriteByte(',')
		}
		id := fmt.Sprintf("01932a4f-0a00-7c5d-9e40-%012x", first+i)
		buf.Write(bytes.Replace(tmpl, []byte("01932a4f-0a00-7c5d-9e40-6b3f4d5e6f70"), []byte(id), 1))
	}
	buf.WriteByte(']')
	return buf.Bytes()
}

// BenchmarkIngest compares, in one run on one log, appending OpenLineage
// events through POST /api/v1/lineage (HTTP, JSON, schema validation,
// mapping, then the in-process AppendBatch) with appending the same events,
// already mapped, through the native gRPC AppendBatch over loopback. Each
// iteration is one batch of 100 distinct events, sent by 8 concurrent
// clients (an append waits for its batch to be durably sequenced, so one
// client measures latency, not throughput); events/s is the figure to
// compare.
func BenchmarkIngest(b *testing.B) {
	tmpl := readFile(b, "../../testdata/openlineage/spark-03-complete.json")
	var compact bytes.Buffer
	if err := json.Compact(&compact, tmpl); err != nil {
		b.Fatal(err)
	}
	tmpl = compact.Bytes()
	h := startHarness(b, harnessOpts{})
	next := 0
	b.Run("openlineage-http", func(b *testing.B) {
		bodies := make([][]byte, b.N)
		for i := range bodies {
			bodies[i] = olBatch(b, tmpl, next, benchBatch)
			next += benchBatch
		}
		var n atomic.Int64
		b.SetParallelism(benchClients / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := n.Add(1) - 1
				req, _ := http.NewRequest(http.MethodPost, h.http.URL+"/api/v1/lineage?tenant=acme", bytes.NewReader(bodies[i]))
				req.Header.Set("Authorization", "Bearer "+acmeToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var r ingest.Response
				json.NewDecoder(res.Body).Decode(&r)
				res.Body.Close()
				if res.StatusCode != 200 || len(r.Results) != benchBatch || r.Results[0].Duplicate {
					b.Errorf("status %d, %d results", res.StatusCode, len(r.Results))
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("native-grpc", func(b *testing.B) {
		batches := make([][]*pb.ProvenanceEvent, b.N)
		for i := range batches {
			evs, err := ingest.MapOpenLineage(olBatch(b, tmpl, next, benchBatch), "acme")
			if err != nil {
				b.Fatal(err)
			}
			next += benchBatch
			batches[i] = evs
		}
		ctx := bearer(b.Context(), acmeToken)
		var n atomic.Int64
		b.SetParallelism(benchClients / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(p *testing.PB) {
			for p.Next() {
				i := n.Add(1) - 1
				resp, err := h.log.AppendBatch(ctx, &pb.AppendBatchRequest{Events: batches[i]})
				if err != nil {
					b.Error(err)
					return
				}
				if r := resp.GetResults()[0]; r.GetError() != nil || r.GetDuplicate() {
					b.Errorf("result %v", r)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "events/s")
	})
}
