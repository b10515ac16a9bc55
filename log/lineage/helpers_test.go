package lineage

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/provlog/provlog/log/event"
	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// memSource serves leaves as tlog-tiles entry bundles, as a tessera
// LogReader would.
type memSource struct {
	mu     sync.Mutex
	leaves [][]byte
	size   uint64 // the integrated size it reports
	reads  int    // bundle reads
}

func (s *memSource) add(leaves ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.leaves = append(s.leaves, leaves...)
	s.size = uint64(len(s.leaves))
}

func (s *memSource) setSize(n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.size = n
}

func (s *memSource) IntegratedSize(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, nil
}

func (s *memSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	n := uint64(p)
	if p == 0 {
		n = 256
	}
	first := index * 256
	if first+n > uint64(len(s.leaves)) {
		return nil, fmt.Errorf("bundle %d.p/%d: %w", index, p, os.ErrNotExist)
	}
	var out []byte
	for _, l := range s.leaves[first : first+n] {
		out = binary.BigEndian.AppendUint16(out, uint16(len(l)))
		out = append(out, l...)
	}
	return out, nil
}

var testLogger = slog.New(slog.DiscardHandler)

// openStore opens a pebble store in dir, closed when the test ends.
func openStore(t testing.TB, dir string) Store {
	t.Helper()
	s, err := OpenPebbleStore(dir, testLogger)
	if err != nil {
		t.Fatalf("OpenPebbleStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openIndex(t testing.TB, src Source, opts Options) *Index {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger
	}
	ix, err := Open(context.Background(), openStore(t, t.TempDir()), src, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return ix
}

// sample is one of testdata/events, by its file number (1..24).
type sample struct {
	n int
	e *provlogv1.ProvenanceEvent
}

var (
	samplesOnce sync.Once
	samplesList []sample
	samplesErr  error
)

func samples(t testing.TB) []sample {
	t.Helper()
	samplesOnce.Do(func() {
		files, err := filepath.Glob("../../testdata/events/*.json")
		if err != nil || len(files) == 0 {
			samplesErr = fmt.Errorf("no sample events: %v", err)
			return
		}
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				samplesErr = err
				return
			}
			e := &provlogv1.ProvenanceEvent{}
			if err := protojson.Unmarshal(b, e); err != nil {
				samplesErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			n, err := strconv.Atoi(strings.SplitN(filepath.Base(f), "-", 2)[0])
			if err != nil {
				samplesErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			samplesList = append(samplesList, sample{n: n, e: e})
		}
	})
	if samplesErr != nil {
		t.Fatal(samplesErr)
	}
	out := make([]sample, len(samplesList))
	for i, s := range samplesList {
		out[i] = sample{n: s.n, e: proto.Clone(s.e).(*provlogv1.ProvenanceEvent)}
	}
	return out
}

var testReceived = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// leafOf builds the leaf of e, received i milliseconds after testReceived.
func leafOf(t testing.TB, e *provlogv1.ProvenanceEvent, i int) []byte {
	t.Helper()
	_, leaf, err := event.NewLeaf(e, testReceived.Add(time.Duration(i)*time.Millisecond), "token:engine")
	if err != nil {
		t.Fatalf("NewLeaf(%s): %v", e.GetEventId(), err)
	}
	return leaf
}

// feed is a log built from samples: its leaves, and which sample (file
// number, tenant) each leaf is.
type feed struct {
	leaves [][]byte
	nums   []int    // file number of each leaf
	tenant []string // tenant of each leaf
}

func (f *feed) add(t testing.TB, s sample) {
	t.Helper()
	f.leaves = append(f.leaves, leafOf(t, s.e, len(f.leaves)))
	f.nums = append(f.nums, s.n)
	f.tenant = append(f.tenant, s.e.GetTenant())
}

// leafOfNum is the leaf index of sample n of tenant.
func (f *feed) leafOfNum(tenant string, n int) uint64 {
	for i := range f.nums {
		if f.nums[i] == n && f.tenant[i] == tenant {
			return uint64(i)
		}
	}
	panic(fmt.Sprintf("sample %d of %q is not in the feed", n, tenant))
}

// sampleFeed is the 24 samples in file order, leaving out those in drop.
func sampleFeed(t testing.TB, drop ...int) *feed {
	t.Helper()
	f := &feed{}
	for _, s := range samples(t) {
		if !slices.Contains(drop, s.n) {
			f.add(t, s)
		}
	}
	return f
}

func (f *feed) source() *memSource {
	s := &memSource{}
	s.add(f.leaves...)
	return s
}
