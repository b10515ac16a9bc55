package lineage

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// flakySource fails one bundle read, or cancels the pass's context when
// it reaches a bundle, once.
type flakySource struct {
	Source
	mu     sync.Mutex
	bundle uint64
	fail   error              // returned once for bundle
	cancel context.CancelFunc // called once at bundle
}

func (s *flakySource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	s.mu.Lock()
	fail, cancel := s.fail, s.cancel
	if index == s.bundle {
		s.fail, s.cancel = nil, nil
	}
	s.mu.Unlock()
	if index == s.bundle && fail != nil {
		return nil, fail
	}
	if index == s.bundle && cancel != nil {
		cancel()
	}
	return s.Source.ReadEntryBundle(ctx, index, p)
}

// TestPassReadFailure: leaves are read and decoded ahead of indexing on
// another goroutine; a bundle that cannot be read, or a context ended part
// way, ends the pass with nothing committed, and the next pass indexes the
// log as if nothing had happened.
func TestPassReadFailure(t *testing.T) {
	clean := newIndex(openStore(t, t.TempDir()), synthLog(), Options{Logger: testLogger})
	if err := clean.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantSize, want := checkedDigest(t, clean)

	errRead := errors.New("bundle read failed")
	for _, tc := range []struct {
		name   string
		cancel bool
	}{
		{"read error", false},
		{"context ended", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &flakySource{Source: synthLog(), bundle: 3}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.cancel {
				src.cancel = cancel
			} else {
				src.fail = errRead
			}
			ix := newIndex(openStore(t, t.TempDir()), src, Options{Logger: testLogger})
			err := ix.CatchUp(ctx)
			switch {
			case tc.cancel && !errors.Is(err, context.Canceled):
				t.Fatalf("CatchUp with the context ended at bundle 3: %v, want context.Canceled", err)
			case !tc.cancel && !errors.Is(err, errRead):
				t.Fatalf("CatchUp with bundle 3 unreadable: %v, want %v", err, errRead)
			}
			if wm := ix.Watermark(); wm != 0 {
				t.Errorf("watermark after the failed pass = %d, want 0 (the pass covers bundles 0 to 5)", wm)
			}
			if err := ix.CatchUp(t.Context()); err != nil {
				t.Fatal(err)
			}
			if size, d := checkedDigest(t, ix); size != wantSize || d != want {
				t.Errorf("after the retry: %d %x, want %d %x", size, d, wantSize, want)
			}
		})
	}
}
