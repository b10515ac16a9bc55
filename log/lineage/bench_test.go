package lineage

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provlog/provlog/log/ledger/awstest"
)

// benchEvents is the size of the index BenchmarkTrace builds, from
// LINEAGE_BENCH_EVENTS (default 100000): go test -run '^$' -bench Trace
// with LINEAGE_BENCH_EVENTS=1000000 for the 1M-event figures.
func benchEvents(b *testing.B) uint64 {
	s := os.Getenv("LINEAGE_BENCH_EVENTS")
	if s == "" {
		return 100_000
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1000 {
		b.Fatalf("LINEAGE_BENCH_EVENTS=%q: want a number >= 1000", s)
	}
	return n
}

var benchTmp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lineage-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	benchTmp = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// bundleSource serves pre-built bundles, so that a benchmark measures the
// index and not the generator.
type bundleSource struct {
	bundles [][]byte // full bundles
	size    uint64
	g       leafGen
}

func newBundleSource(b *testing.B, g leafGen, n uint64) *bundleSource {
	s := &bundleSource{g: g, size: n}
	for first := uint64(0); first+256 <= n; first += 256 {
		bb, err := synthBundle(g, first, 256)
		if err != nil {
			b.Fatal(err)
		}
		s.bundles = append(s.bundles, bb)
	}
	return s
}

func (s *bundleSource) IntegratedSize(ctx context.Context) (uint64, error) { return s.size, nil }

func (s *bundleSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	if p == 0 {
		if index >= uint64(len(s.bundles)) {
			return nil, fs.ErrNotExist
		}
		return s.bundles[index], nil
	}
	return synthBundle(s.g, index*256, uint64(p))
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// rss is the resident set size of the process, from /proc (0 elsewhere).
func rss() (cur, peak int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			cur = v << 10
		case "VmHWM:":
			peak = v << 10
		}
	}
	return cur, peak
}

// BenchmarkIndex measures indexing: b.N synthetic events, pre-generated,
// indexed from an empty pebble store in passes of the default size.
func BenchmarkIndex(b *testing.B) {
	n := max(uint64(b.N), 256)
	src := newBundleSource(b, synth{tenants: 4}, n)
	dir := b.TempDir()
	s, err := OpenPebbleStore(dir, testLogger)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ResetTimer()
	start := time.Now()
	ix, err := Open(b.Context(), s, src, Options{Logger: testLogger})
	if err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if ix.Watermark() != n {
		b.Fatalf("indexed %d of %d", ix.Watermark(), n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(dirSize(dir))/float64(n), "disk-B/event")
	if ps, ok := s.(*pebbleStore); ok {
		// What flushes and compactions wrote so far: the write
		// amplification that costs provlogd CPU while the index catches up.
		t := ps.db.Metrics().Total()
		b.ReportMetric(float64(t.TableBytesFlushed+t.TableBytesCompacted)/float64(n), "written-B/event")
	}
}

// BenchmarkIndexMySQL is BenchmarkIndex on the shared MySQL store, as
// provlogd --storage aws runs it: b.N events indexed from an empty table
// by the holder of the writer lock, for the synthetic workflows and for
// provbench's events. It needs PROVLOG_TEST_MYSQL_DSN
// (scripts/ci/services.sh); keep -benchtime small (-benchtime 20000x).
func BenchmarkIndexMySQL(b *testing.B) {
	for _, tc := range []struct {
		name string
		g    leafGen
	}{{"synth", synth{tenants: 4}}, {"provbench", benchLike{}}} {
		b.Run(tc.name, func(b *testing.B) { benchIndexMySQL(b, tc.g) })
	}
}

func benchIndexMySQL(b *testing.B, g leafGen) {
	dsn := awstest.NewDatabase(b)
	n := max(uint64(b.N), 256)
	src := newBundleSource(b, g, n)
	sh, err := OpenShared(b.Context(), dsn, "lineage_bench", src, Options{Logger: testLogger}, false)
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Close()
	b.ResetTimer()
	start := time.Now()
	sh.step(b.Context(), false)
	elapsed := time.Since(start)
	b.StopTimer()
	if sh.Index().Watermark() != n {
		b.Fatalf("indexed %d of %d", sh.Index().Watermark(), n)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
}

var (
	bigOnce  sync.Once
	bigIndex *Index
	bigSize  uint64
	bigErr   error
)

// bigIndexFor builds the index BenchmarkTrace queries, once per process.
func bigIndexFor(b *testing.B) (*Index, uint64) {
	n := benchEvents(b)
	bigOnce.Do(func() {
		dir := filepath.Join(benchTmp, "big")
		s, err := OpenPebbleStore(dir, testLogger)
		if err != nil {
			bigErr = err
			return
		}
		src := &synthSource{g: synth{tenants: 4}}
		ix, err := Open(context.Background(), s, src, Options{Logger: testLogger})
		if err != nil {
			bigErr = err
			return
		}
		start := time.Now()
		step := max(n/10, 256)
		var rssLog []string
		for size := step; ; size += step {
			size = min(size, n)
			src.setSize(size)
			if err := ix.CatchUp(context.Background()); err != nil {
				bigErr = err
				return
			}
			runtime.GC()
			cur, peak := rss()
			rssLog = append(rssLog, fmt.Sprintf("%d:%dMiB/%dMiB", size, cur>>20, peak>>20))
			if size == n {
				break
			}
		}
		elapsed := time.Since(start)
		settled := quiesce(s)
		b.Logf("compactions settled in %s", settled.Round(time.Millisecond))
		b.Logf("built an index of %d events in %s (%.0f events/s, generation included); %.0f B/event on disk; RSS/peak by size: %s",
			n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), float64(dirSize(dir))/float64(n), strings.Join(rssLog, " "))
		bigIndex, bigSize = ix, n
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	return bigIndex, bigSize
}

// BenchmarkTrace traces upstream from table versions written by runs in
// the last tenth of the log, at depth 1, 5 and 10, and reports latency
// percentiles and graph sizes.
func BenchmarkTrace(b *testing.B) {
	ix, n := bigIndexFor(b)
	runs := n / synthRunLen
	g := synth{tenants: 4}
	for _, depth := range []int{1, 5, 10} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			var lat []time.Duration
			var nodes, edges, leaves int
			truncated := 0
			i := uint64(0)
			for b.Loop() {
				r := runs - 1 - h(i, 99)%max(runs/10, 1)
				i++
				out := synthOut(r)
				q := TraceQuery{Tenant: g.event(r * synthRunLen).GetTenant(), AssetURI: out.Uri, AssetVersion: out.Version, Direction: Upstream, Depth: depth}
				start := time.Now()
				gr, err := ix.Trace(b.Context(), q)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				nodes += len(gr.Nodes)
				edges += len(gr.Edges)
				leaves += len(gr.Leaves)
				if gr.Truncated {
					truncated++
				}
			}
			if ps, ok := ix.store.(*pebbleStore); ok && os.Getenv("LINEAGE_BENCH_METRICS") != "" {
				b.Logf("pebble metrics:\n%s", ps.db.Metrics())
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			k := float64(len(lat))
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(nodes)/k, "nodes/op")
			b.ReportMetric(float64(edges)/k, "edges/op")
			b.ReportMetric(float64(leaves)/k, "leaves/op")
			b.ReportMetric(float64(truncated)/k, "truncated/op")
		})
	}
}

// TestSynthTrace checks the synthetic shape the benchmarks rely on: a
// depth-10 upstream trace from a late table version crosses several runs
// and is not truncated.
func TestSynthTrace(t *testing.T) {
	src := &synthSource{g: synth{tenants: 2}, size: 4096}
	ix, err := Open(t.Context(), openStore(t, t.TempDir()), src, Options{Logger: testLogger})
	if err != nil {
		t.Fatal(err)
	}
	if c := ix.GapCounts(); c[GapUnproducedInput]+c[GapMissingParentRun]+c[GapRunWithoutStart]+c[GapRunFailed]+c[GapMissingSubject] != 0 {
		t.Errorf("gaps in the synthetic log: %v", c)
	}
	r := uint64(4096/synthRunLen - 1)
	out := synthOut(r)
	g, err := ix.Trace(t.Context(), TraceQuery{Tenant: src.g.event(r * synthRunLen).GetTenant(), AssetURI: out.Uri, AssetVersion: out.Version, Direction: Upstream, Depth: 10})
	if err != nil {
		t.Fatal(err)
	}
	runs := 0
	for _, n := range g.Nodes {
		if n.Kind == NodeRun {
			runs++
		}
	}
	if g.Truncated || runs < 3 || len(g.Nodes) < 20 {
		t.Errorf("depth-10 trace: %d nodes, %d runs, truncated %v", len(g.Nodes), runs, g.Truncated)
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%d nodes, %d edges, %d runs", len(g.Nodes), len(g.Edges), runs)
	t.Log(buf.String())
}

// quiesce waits until pebble runs no flush or compaction, so that trace
// latencies measure queries and not the tail of the build.
func quiesce(s Store) time.Duration {
	ps, ok := s.(*pebbleStore)
	if !ok {
		return 0
	}
	start := time.Now()
	for idle := 0; idle < 5 && time.Since(start) < 5*time.Minute; {
		m := ps.db.Metrics()
		if m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			idle++
		} else {
			idle = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}
