package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Size limits on what the tiles reader accepts.
const (
	maxCheckpointBytes = 1 << 16
	maxTileBytes       = 1 << 24
)

// TileFetcher reads the C2SP tlog-tiles API under BASE/log/ anonymously.
// It verifies nothing by itself: VerifiedLeafHashes and the audit check
// what it fetched against a checkpoint. It is safe for concurrent use.
type TileFetcher struct {
	base string
	hc   *http.Client
	mu   sync.Mutex
	// full holds complete hash tiles of level >= 1 already fetched: they
	// never change, and every bundle's proof reads the same few.
	full map[string][]byte
}

// NewTileFetcher reads BASE/log/...; hc may be nil.
func NewTileFetcher(base string, hc *http.Client) *TileFetcher {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &TileFetcher{base: strings.TrimRight(base, "/"), hc: hc, full: map[string][]byte{}}
}

// ErrNotFound is returned for a 404 from the tiles API.
var ErrNotFound = errors.New("not found")

func (f *TileFetcher) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	u := f.base + "/log/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	b, err := readAllLimit(resp.Body, limit)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %w", u, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s: %.200s", u, resp.Status, b)
	}
	return b, nil
}

// Checkpoint fetches /log/checkpoint, unverified.
func (f *TileFetcher) Checkpoint(ctx context.Context) ([]byte, error) {
	return f.get(ctx, "checkpoint", maxCheckpointBytes)
}

// EntryBundle fetches entry bundle n holding width entries (256 for a full
// bundle) and splits it.
func (f *TileFetcher) EntryBundle(ctx context.Context, n uint64, width int) ([][]byte, error) {
	b, err := f.entryBundle(ctx, n, width)
	if err != nil {
		return nil, err
	}
	entries, err := ParseEntryBundle(b)
	if err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", n, err)
	}
	if len(entries) > width && width < 256 {
		entries = entries[:width] // read from the full bundle
	}
	if len(entries) != width {
		return nil, fmt.Errorf("entry bundle %d holds %d entries, want %d", n, len(entries), width)
	}
	return entries, nil
}

// entryBundle fetches entry bundle n of width entries, falling back to
// the full bundle when the partial one is gone (the log grew).
func (f *TileFetcher) entryBundle(ctx context.Context, n uint64, width int) ([]byte, error) {
	b, err := f.get(ctx, entryBundlePath(n, width), maxTileBytes)
	if errors.Is(err, ErrNotFound) && width < 256 {
		if fb, ferr := f.get(ctx, entryBundlePath(n, 256), maxTileBytes); ferr == nil {
			return fb, nil
		}
	}
	return b, err
}

// HashTile fetches a hash tile (tlog-tiles: tile/L/N[.p/W]).
func (f *TileFetcher) HashTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	p := tilePath(t)
	cache := t.L > 0 && t.W == 1<<t.H
	if cache {
		f.mu.Lock()
		b, ok := f.full[p]
		f.mu.Unlock()
		if ok {
			return b, nil
		}
	}
	b, err := f.get(ctx, p, maxTileBytes)
	if errors.Is(err, ErrNotFound) && t.W < 1<<t.H {
		// The log grew and dropped the partial tile: the full one
		// begins with the same hashes.
		full := t
		full.W = 1 << t.H
		if fb, ferr := f.get(ctx, tilePath(full), maxTileBytes); ferr == nil && len(fb) >= 32*t.W {
			b, err = fb[:32*t.W], nil
		}
	}
	if err != nil {
		return nil, err
	}
	if cache {
		f.mu.Lock()
		if len(f.full) > 4096 {
			clear(f.full)
		}
		f.full[p] = b
		f.mu.Unlock()
	}
	return b, nil
}

// TileIndexPath is the tlog-tiles path of tile index n: 3-digit groups,
// all but the last prefixed "x".
func TileIndexPath(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

// ParseEntryBundle splits a tlog-tiles entry bundle: each entry is a
// big-endian uint16 length and that many bytes.
func ParseEntryBundle(b []byte) ([][]byte, error) {
	out, err := parseEntryBundlePrefix(b)
	if err != nil {
		return nil, fmt.Errorf("after %d entries: %w", len(out), err)
	}
	return out, nil
}

// tileReader adapts a TileFetcher to x/mod's tlog.TileReader, which checks
// every tile it reads against the tree's root hash: verification by code
// independent of the server's.
type tileReader struct {
	ctx context.Context
	f   *TileFetcher
}

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.f.HashTile(r.ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// VerifiedLeafHashes returns the leaf hashes at indexes [from, to) of the
// tree of size size and root hash root, read from hash tiles each verified
// against root (x/mod/sumdb/tlog). An error means the tiles do not prove
// the root: a tile was edited or the server lies.
func (f *TileFetcher) VerifiedLeafHashes(ctx context.Context, size uint64, root []byte, from, to uint64) ([][32]byte, error) {
	if len(root) != 32 {
		return nil, fmt.Errorf("root hash of %d bytes", len(root))
	}
	tree := tlog.Tree{N: int64(size), Hash: tlog.Hash(root)}
	hr := tlog.TileHashReader(tree, tileReader{ctx: ctx, f: f})
	idx := make([]int64, 0, to-from)
	for i := from; i < to; i++ {
		idx = append(idx, tlog.StoredHashIndex(0, int64(i)))
	}
	hs, err := hr.ReadHashes(idx)
	if err != nil {
		return nil, fmt.Errorf("%w: hash tiles for leaves %d..%d do not verify against the checkpoint: %w", ErrVerification, from, to-1, err)
	}
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, nil
}
