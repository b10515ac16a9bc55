package lineage_test

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/provlog/provlog/log/lineage"
	"github.com/provlog/provlog/log/lineage/lineagetest"
)

func TestPebbleStoreConformance(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*testing.T]string{}
	lineagetest.StoreConformance(t, func(t *testing.T, name string) lineage.Store {
		mu.Lock()
		dir, ok := dirs[t]
		if !ok {
			dir = t.TempDir()
			dirs[t] = dir
		}
		mu.Unlock()
		s, err := lineage.OpenPebbleStore(filepath.Join(dir, name), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("OpenPebbleStore: %v", err)
		}
		return s
	})
}
