package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// ErrStorageFull means the file system under the data directory has less
// free space than Config.MinFreeBytes: nothing was appended, and appending
// again is safe once space is freed.
var ErrStorageFull = errors.New("log storage is full")

// spaceGuard refuses appends while the data directory's file system is
// below a reserve of free space. The reserve is what lets everything that
// writes after an append (tessera's tiles and checkpoint, the idempotency
// and lineage indexes, their compactions) finish without ever meeting a
// full disk: pebble treats a failed WAL write as fatal and panics, and a
// crash loop on a full disk is worse than refusing appends.
type spaceGuard struct {
	dir string
	min uint64
	log *slog.Logger

	mu      sync.Mutex
	checked time.Time
	free    uint64
	full    bool
}

// spaceCheckEvery bounds how stale the free-space figure may be (one
// statfs per interval, whatever the append rate).
const spaceCheckEvery = 100 * time.Millisecond

func newSpaceGuard(dir string, min uint64, log *slog.Logger) *spaceGuard {
	if min == 0 {
		return nil
	}
	return &spaceGuard{dir: dir, min: min, log: log}
}

// check returns an ErrStorageFull error while free space is below the
// reserve. A nil guard never refuses.
func (g *spaceGuard) check() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); now.Sub(g.checked) >= spaceCheckEvery {
		g.checked = now
		var st syscall.Statfs_t
		if err := syscall.Statfs(g.dir, &st); err != nil {
			g.log.Warn("couldn't read the data directory's free space; not refusing appends for it", "dir", g.dir, "err", err)
			g.full = false
			return nil
		}
		g.free = uint64(st.Bavail) * uint64(st.Bsize)
		if full := g.free < g.min; full != g.full {
			g.full = full
			if full {
				g.log.Error("disk nearly full: refusing appends until space is freed", "dir", g.dir, "free_bytes", g.free, "reserve_bytes", g.min)
			} else {
				g.log.Info("disk space is back: accepting appends", "dir", g.dir, "free_bytes", g.free, "reserve_bytes", g.min)
			}
		}
	}
	if g.full {
		return fmt.Errorf("%w: %d bytes free under %s, below the reserve of %d", ErrStorageFull, g.free, g.dir, g.min)
	}
	return nil
}
