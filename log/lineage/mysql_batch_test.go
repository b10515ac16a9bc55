package lineage

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/provlog/provlog/log/ledger/awstest"
)

// TestMySQLBatchedReads checks the MySQL store's batched reads against
// Get and Scan: present, empty and absent values, more keys and prefixes
// than one query takes, nested prefixes and prefixes ending in 0xFF.
func TestMySQLBatchedReads(t *testing.T) {
	st, err := OpenMySQLStore(t.Context(), awstest.NewDatabase(t), "lineage_batched")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := st.(*mysqlStore)
	b := &Batch{}
	var keys, prefixes [][]byte
	for i := range manyChunk + 20 {
		k := []byte(fmt.Sprintf("k%04d", i))
		switch i % 3 {
		case 0:
			b.Set(k, []byte(fmt.Sprint(i)))
		case 1:
			b.Set(k, nil)
		}
		keys = append(keys, k)
		prefixes = append(prefixes, k[:len(k)-1], k, append(k, 0))
	}
	b.Set([]byte("a\xff\xff"), []byte("v"))
	b.Set([]byte("b\x00"), []byte("w"))
	prefixes = append(prefixes, []byte("a\xff"), []byte("a\xff\xff"), []byte("a\xff\xff\xff"), []byte("b"), []byte("b\x00"), []byte("b\x01"), []byte("c"))
	keys = append(keys, []byte("a\xff\xff"), []byte("a\xff"), []byte("b"))
	if err := s.Commit(t.Context(), b); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{}
	for _, k := range keys {
		if v, err := s.Get(t.Context(), k); err == nil {
			want[string(k)] = string(v)
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	if err := s.getMany(t.Context(), keys, func(k, v []byte) { got[string(k)] = string(v) }); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("getMany differs from Get (-Get +getMany):\n%s", d)
	}

	var wantAny []bool
	for _, p := range prefixes {
		found := false
		if err := s.Scan(t.Context(), p, prefixEnd(p), false, func(_, _ []byte) error {
			found = true
			return ErrStopScan
		}); err != nil {
			t.Fatal(err)
		}
		wantAny = append(wantAny, found)
	}
	gotAny, err := s.anyMany(t.Context(), prefixes)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(wantAny, gotAny); d != "" {
		t.Errorf("anyMany differs from Scan (-Scan +anyMany):\n%s", d)
	}
	if n := len(wantAny); !wantAny[n-7] || !wantAny[n-6] || wantAny[n-5] || !wantAny[n-4] || !wantAny[n-3] || wantAny[n-2] || wantAny[n-1] {
		t.Errorf("prefix probes by Scan: %v", wantAny[n-7:])
	}
}
