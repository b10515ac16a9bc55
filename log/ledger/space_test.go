package ledger

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"testing"
)

func TestSpaceGuard(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		dir     string
		min     uint64
		wantErr error
	}{
		{"no reserve", dir, 0, nil},
		{"reserve met", dir, 1, nil},
		{"reserve beyond any disk", dir, math.MaxUint64, ErrStorageFull},
		{"unreadable dir does not refuse", dir + "/missing", math.MaxUint64, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newSpaceGuard(tc.dir, tc.min, quiet)
			for range 2 { // the second answer comes from the cached figure
				if err := g.check(); !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Fatalf("check() = %v, want %v", err, tc.wantErr)
				}
			}
		})
	}
}
