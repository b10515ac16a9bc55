package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/provlog/provlog/log/event"
)

func TestReplay(t *testing.T) {
	f := newFakeServer(t, 0)
	c := f.newClient(t, nil)
	for _, tc := range []struct {
		lie       lie
		size      int64
		wantIndex int64 // -1: no error
		want      string
	}{
		{honest, 24, -1, ""},
		{honest, 1, -1, ""},
		{grownLog, 10, -1, ""},
		{lieEntryBundle, 24, 5, "the entry bundle holds a leaf whose hash is not the one the checkpoint commits to"},
		{lieTile, 24, 7, "hash tile tile/0/000.p/24 does not match the leaf"},
	} {
		t.Run(lieName(tc.lie), func(t *testing.T) {
			f.setLie(tc.lie)
			f.setSize(tc.size)
			defer f.setLie(honest)
			cp, _, err := c.Checkpoint(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var seen []uint64
			var done uint64
			err = c.Tiles().Replay(t.Context(), cp, func(i uint64, leaf []byte) error {
				if _, err := event.DecodeLeaf(leaf); err != nil {
					return err
				}
				seen = append(seen, i)
				return nil
			}, func(d uint64) { done = d })
			if tc.wantIndex < 0 {
				if err != nil || len(seen) != int(tc.size) || done != uint64(tc.size) {
					t.Fatalf("replay: %v, %d leaves, progress %d", err, len(seen), done)
				}
				return
			}
			var le *LeafError
			if !errors.As(err, &le) || le.Index != uint64(tc.wantIndex) || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrVerification) {
				t.Fatalf("replay error %v, want leaf %d: %s", err, tc.wantIndex, tc.want)
			}
		})
	}
}
