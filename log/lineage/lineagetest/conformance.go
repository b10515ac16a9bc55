// Package lineagetest is the conformance suite every lineage.Store
// implementation runs, so that the embedded store and the MySQL store
// behave the same under the index.
package lineagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/provlog/provlog/log/lineage"
)

// Opener opens the store called name: a new, empty one the first time a
// name is used within t, the same one (with what was committed to it)
// again after it was closed. The opener cleans up after t.
type Opener func(t *testing.T, name string) lineage.Store

// StoreConformance checks a Store implementation against the contract
// documented on lineage.Store.
func StoreConformance(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"GetReturnsCopy", testGetReturnsCopy},
		{"Order", testOrder},
		{"Scan", testScan},
		{"ScanStop", testScanStop},
		{"BatchOrder", testBatchOrder},
		{"DeleteRange", testDeleteRange},
		{"EmptyBatch", testEmptyBatch},
		{"Durable", testDurable},
		{"ConcurrentReadersAndCommits", testConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func commit(t *testing.T, s lineage.Store, fill func(b *lineage.Batch)) {
	t.Helper()
	b := &lineage.Batch{}
	fill(b)
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

type kv struct{ K, V string }

// scan returns [start, end) as pairs, copying what the callback sees.
func scan(t *testing.T, s lineage.Store, start, end []byte, reverse bool) []kv {
	t.Helper()
	var out []kv
	err := s.Scan(t.Context(), start, end, reverse, func(k, v []byte) error {
		out = append(out, kv{string(k), string(v)})
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %q, %v): %v", start, end, reverse, err)
	}
	return out
}

func get(t *testing.T, s lineage.Store, k string) (string, bool) {
	t.Helper()
	v, err := s.Get(t.Context(), []byte(k))
	if errors.Is(err, lineage.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	return string(v), true
}

func testGetMissing(t *testing.T, open Opener) {
	s := open(t, "get-missing")
	defer s.Close()
	if _, err := s.Get(t.Context(), []byte("nope")); !errors.Is(err, lineage.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	if got := scan(t, s, []byte{0}, nil, false); len(got) != 0 {
		t.Fatalf("empty store scans %v", got)
	}
}

func testSetGet(t *testing.T, open Opener) {
	s := open(t, "set-get")
	defer s.Close()
	big := bytes.Repeat([]byte{0xA5}, lineage.MaxValueSize)
	pairs := []kv{
		{"a", "1"},
		{"k\x00zero\x00", "nul bytes in key"},
		{"\x01", ""}, // empty value
		{"\xfe\xfe", "high bytes"},
		{"big", string(big)},
		{string(bytes.Repeat([]byte("long-key/"), 200)), "long key"},
	}
	commit(t, s, func(b *lineage.Batch) {
		for _, p := range pairs {
			b.Set([]byte(p.K), []byte(p.V))
		}
	})
	for _, p := range pairs {
		v, ok := get(t, s, p.K)
		if !ok || v != p.V {
			t.Errorf("Get(%.20q) = %.20q, %v; want %.20q", p.K, v, ok, p.V)
		}
	}
	// Overwrite.
	commit(t, s, func(b *lineage.Batch) { b.Set([]byte("a"), []byte("2")) })
	if v, _ := get(t, s, "a"); v != "2" {
		t.Errorf("after overwrite Get(a) = %q, want 2", v)
	}
}

func testGetReturnsCopy(t *testing.T, open Opener) {
	s := open(t, "get-copy")
	defer s.Close()
	commit(t, s, func(b *lineage.Batch) { b.Set([]byte("k"), []byte("value")) })
	v, err := s.Get(t.Context(), []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	copy(v, "XXXXX")
	if v, _ := get(t, s, "k"); v != "value" {
		t.Fatalf("modifying a returned value changed the store: %q", v)
	}
}

func testOrder(t *testing.T, open Opener) {
	s := open(t, "order")
	defer s.Close()
	// Unsigned byte order, shorter prefix first.
	want := []string{"\x00", "\x00\x00", "\x01", "a", "a\x00", "a\x01", "ab", "b", "\x7f", "\x80", "\xfe", "\xfe\xff"}
	shuffled := slices.Clone(want)
	for i := range shuffled {
		j := (i*7 + 3) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	commit(t, s, func(b *lineage.Batch) {
		for _, k := range shuffled {
			b.Set([]byte(k), []byte("v"+k))
		}
	})
	var got []string
	for _, p := range scan(t, s, []byte{0}, nil, false) {
		got = append(got, p.K)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ascending scan order (-want +got):\n%s", d)
	}
	got = got[:0]
	for _, p := range scan(t, s, []byte{0}, nil, true) {
		got = append(got, p.K)
	}
	rev := slices.Clone(want)
	slices.Reverse(rev)
	if d := cmp.Diff(rev, got); d != "" {
		t.Errorf("descending scan order (-want +got):\n%s", d)
	}
}

func testScan(t *testing.T, open Opener) {
	s := open(t, "scan")
	defer s.Close()
	commit(t, s, func(b *lineage.Batch) {
		for i := range 100 {
			b.Set(fmt.Appendf(nil, "k%03d", i), fmt.Appendf(nil, "v%d", i))
		}
		b.Set([]byte("j"), []byte("before"))
		b.Set([]byte("l"), []byte("after"))
	})
	keys := func(ps []kv) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.K)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		start, end string
		reverse    bool
		nilEnd     bool
		want       []string
	}{
		{name: "range", start: "k010", end: "k013", want: []string{"k010", "k011", "k012"}},
		{name: "range reverse", start: "k010", end: "k013", reverse: true, want: []string{"k012", "k011", "k010"}},
		{name: "start between keys", start: "k0105", end: "k012", want: []string{"k011"}},
		{name: "empty range", start: "k020", end: "k020"},
		{name: "prefix", start: "k09", end: "k0:", want: []string{"k090", "k091", "k092", "k093", "k094", "k095", "k096", "k097", "k098", "k099"}},
		{name: "nil end", start: "k098", nilEnd: true, want: []string{"k098", "k099", "l"}},
		{name: "nil end reverse", start: "k098", nilEnd: true, reverse: true, want: []string{"l", "k099", "k098"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var end []byte
			if !tc.nilEnd {
				end = []byte(tc.end)
			}
			got := scan(t, s, []byte(tc.start), end, tc.reverse)
			if d := cmp.Diff(tc.want, keys(got)); d != "" {
				t.Errorf("keys (-want +got):\n%s", d)
			}
			for _, p := range got {
				if want := "v" + fmt.Sprint(atoi(p.K[1:])); p.K[0] == 'k' && p.V != want {
					t.Errorf("value of %q = %q, want %q", p.K, p.V, want)
				}
			}
		})
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func testScanStop(t *testing.T, open Opener) {
	s := open(t, "scan-stop")
	defer s.Close()
	commit(t, s, func(b *lineage.Batch) {
		for i := range 10 {
			b.Set([]byte{'k', byte('0' + i)}, nil)
		}
	})
	n := 0
	err := s.Scan(t.Context(), []byte("k"), []byte("l"), false, func(k, v []byte) error {
		n++
		if n == 3 {
			return lineage.ErrStopScan
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("ErrStopScan after 3: err %v, %d calls; want nil, 3", err, n)
	}
	boom := errors.New("boom")
	n = 0
	err = s.Scan(t.Context(), []byte("k"), []byte("l"), true, func(k, v []byte) error {
		n++
		return fmt.Errorf("callback: %w", boom)
	})
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("callback error: err %v, %d calls; want boom, 1", err, n)
	}
}

func testBatchOrder(t *testing.T, open Opener) {
	s := open(t, "batch-order")
	defer s.Close()
	commit(t, s, func(b *lineage.Batch) {
		b.Set([]byte("deleted-later"), []byte("x"))
		b.Set([]byte("set-twice"), []byte("first"))
		b.Set([]byte("existing"), []byte("old"))
	})
	commit(t, s, func(b *lineage.Batch) {
		b.Delete([]byte("deleted-later"))
		b.Set([]byte("set-twice"), []byte("second"))
		b.Set([]byte("set-twice"), []byte("third"))
		b.Delete([]byte("existing"))
		b.Set([]byte("existing"), []byte("new"))
		b.Set([]byte("created-then-deleted"), []byte("x"))
		b.Delete([]byte("created-then-deleted"))
		b.Delete([]byte("never-existed"))
	})
	want := []kv{{"existing", "new"}, {"set-twice", "third"}}
	if d := cmp.Diff(want, scan(t, s, []byte{0}, nil, false)); d != "" {
		t.Errorf("after batch (-want +got):\n%s", d)
	}
}

func testDeleteRange(t *testing.T, open Opener) {
	s := open(t, "delete-range")
	defer s.Close()
	fill := func(b *lineage.Batch) {
		for _, k := range []string{"a", "b", "b\x00", "ba", "c", "d", "\xfe"} {
			b.Set([]byte(k), []byte("v"))
		}
	}
	commit(t, s, fill)
	commit(t, s, func(b *lineage.Batch) { b.DeleteRange([]byte("b"), []byte("c")) })
	want := []kv{{"a", "v"}, {"c", "v"}, {"d", "v"}, {"\xfe", "v"}}
	if d := cmp.Diff(want, scan(t, s, []byte{0}, nil, false)); d != "" {
		t.Errorf("after DeleteRange [b, c) (-want +got):\n%s", d)
	}
	// A range deletion, then sets in the same batch: the sets survive.
	commit(t, s, func(b *lineage.Batch) {
		b.DeleteRange([]byte{0}, nil)
		b.Set([]byte("kept"), []byte("1"))
	})
	want = []kv{{"kept", "1"}}
	if d := cmp.Diff(want, scan(t, s, []byte{0}, nil, false)); d != "" {
		t.Errorf("after DeleteRange to the end, then Set (-want +got):\n%s", d)
	}
	// Sets, then a range deletion over them, in one batch.
	commit(t, s, func(b *lineage.Batch) {
		fill(b)
		b.DeleteRange([]byte("a"), []byte("d"))
	})
	want = []kv{{"d", "v"}, {"kept", "1"}, {"\xfe", "v"}}
	if d := cmp.Diff(want, scan(t, s, []byte{0}, nil, false)); d != "" {
		t.Errorf("after Set, then DeleteRange [a, d) (-want +got):\n%s", d)
	}
}

func testEmptyBatch(t *testing.T, open Opener) {
	s := open(t, "empty-batch")
	defer s.Close()
	if err := s.Commit(t.Context(), &lineage.Batch{}); err != nil {
		t.Fatalf("empty Commit: %v", err)
	}
}

func testDurable(t *testing.T, open Opener) {
	s := open(t, "durable")
	commit(t, s, func(b *lineage.Batch) {
		for i := range 1000 {
			b.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d", i))
		}
	})
	commit(t, s, func(b *lineage.Batch) {
		b.DeleteRange([]byte("k0100"), []byte("k0200"))
		b.Delete([]byte("k0999"))
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, "durable")
	defer s.Close()
	got := scan(t, s, []byte("k"), []byte("l"), false)
	if len(got) != 899 {
		t.Fatalf("after reopening: %d keys, want 899", len(got))
	}
	if v, ok := get(t, s, "k0050"); !ok || v != "v50" {
		t.Errorf("after reopening Get(k0050) = %q, %v", v, ok)
	}
	for _, k := range []string{"k0100", "k0199", "k0999"} {
		if _, ok := get(t, s, k); ok {
			t.Errorf("after reopening %s is still there", k)
		}
	}
}

// testConcurrent commits batches that keep an invariant (every key of the
// batch holds the batch number) while readers check that every Get sees a
// value a batch wrote, and that scans see whole keys. Run it with -race.
func testConcurrent(t *testing.T, open Opener) {
	s := open(t, "concurrent")
	defer s.Close()
	const keys, batches = 32, 50
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := fmt.Appendf(nil, "c%02d", r*7%keys)
				v, err := s.Get(ctx, k)
				if err != nil && !errors.Is(err, lineage.ErrNotFound) {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("Get: %w", err)
					}
					return
				}
				if err == nil && len(v) != 4 {
					errs <- fmt.Errorf("Get(%s) = %q: not a value any batch wrote", k, v)
					return
				}
				last := -1
				err = s.Scan(ctx, []byte("c"), []byte("d"), false, func(k, v []byte) error {
					if len(v) != 4 {
						return fmt.Errorf("scan saw %q = %q", k, v)
					}
					n := atoi(string(k[1:]))
					if n <= last {
						return fmt.Errorf("scan out of order: %s after c%02d", k, last)
					}
					last = n
					return nil
				})
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range batches {
		b := &lineage.Batch{}
		for k := range keys {
			b.Set(fmt.Appendf(nil, "c%02d", k), fmt.Appendf(nil, "%04d", i))
		}
		if err := s.Commit(t.Context(), b); err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for k := range keys {
		if v, _ := get(t, s, fmt.Sprintf("c%02d", k)); v != fmt.Sprintf("%04d", batches-1) {
			t.Errorf("c%02d = %q after the last batch", k, v)
		}
	}
}
