package lineage

import (
	"bytes"
	"testing"
)

// TestKeyAt checks the one-allocation builder against the chained one, for
// strings with escapes, empty strings and every count of components.
func TestKeyAt(t *testing.T) {
	for _, tc := range []struct {
		idx  uint64
		strs []string
	}{
		{0, nil},
		{1, []string{""}},
		{42, []string{"acme", "run-1"}},
		{1 << 63, []string{"a\x00b", "\x00", "\x00\x00\xff\x01", ""}},
		{7, []string{"t", "s3://bucket/x", "v2", "row\x0017", "tail"}},
	} {
		want := newKey(keyOutput)
		for _, s := range tc.strs {
			want = want.str(s)
		}
		want = want.u64(tc.idx)
		got := keyAt(keyOutput, tc.idx, tc.strs...)
		if !bytes.Equal(got, want) {
			t.Errorf("keyAt(%d, %q) = %x, want %x", tc.idx, tc.strs, got, want)
		}
		if cap(got) != len(got) {
			t.Errorf("keyAt(%d, %q): cap %d, len %d: sized wrong", tc.idx, tc.strs, cap(got), len(got))
		}
	}
	// A prefix extended two ways does not alias.
	p := newKey(keyOutput).str("t")
	a, b := p.u64(1), p.u64(2)
	if bytes.Equal(a, b) {
		t.Error("keys extended from one prefix alias each other")
	}
}
