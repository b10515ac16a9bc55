package main

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// tileReader reads C2SP tlog-tiles hash tiles over HTTP for x/mod's
// tlog.TileHashReader, which checks every tile against the tree root: an
// independent tlog-tiles client. x/mod names tiles "tile/8/L/N[.p/W]" (the
// sumdb layout); tlog-tiles drops the height: "tile/L/N[.p/W]".
type tileReader struct {
	t    *testing.T
	d    *daemon
	tree tlog.Tree
}

func (r *tileReader) Height() int { return 8 }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tile := range tiles {
		p := "/log/" + strings.Replace(tile.Path(), "tile/8/", "tile/", 1)
		code, b := r.d.get(p)
		if code != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %d", p, code)
		}
		out[i] = b
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// readWholeLog reads every entry of the tree through /log/tile/entries/,
// checks each entry's RFC 6962 hash against the verified hash tiles, and
// returns the entries.
func readWholeLog(t *testing.T, d *daemon, cp checkpoint) [][]byte {
	t.Helper()
	tree := tlog.Tree{N: cp.size, Hash: cp.root}
	hr := tlog.TileHashReader(tree, &tileReader{t: t, d: d, tree: tree})
	// Reading the root's stored hashes through the reader makes it verify
	// the tiles against the checkpoint root.
	var entries [][]byte
	for bundle := int64(0); bundle*256 < cp.size; bundle++ {
		n := min(256, cp.size-bundle*256)
		path := "/log/tile/entries/" + tileIndexPath(bundle)
		if n < 256 {
			path += fmt.Sprintf(".p/%d", n)
		}
		code, b := d.get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		got, err := parseBundle(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if int64(len(got)) != n {
			t.Fatalf("%s holds %d entries, want %d", path, len(got), n)
		}
		entries = append(entries, got...)
	}
	idx := make([]int64, len(entries))
	for i := range entries {
		idx[i] = tlog.StoredHashIndex(0, int64(i))
	}
	hashes, err := hr.ReadHashes(idx)
	if err != nil {
		t.Fatalf("reading leaf hashes from tiles verified against the checkpoint: %v", err)
	}
	for i, e := range entries {
		if got := tlog.RecordHash(e); got != hashes[i] {
			t.Fatalf("entry %d hashes to %v, the tiles say %v", i, got, hashes[i])
		}
	}
	return entries
}

// tileIndexPath formats N as tlog-tiles does: groups of three digits, all
// but the last prefixed with x.
func tileIndexPath(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}

// parseBundle splits an entry bundle: each entry is a big-endian uint16
// length and that many bytes.
func parseBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("dangling byte")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return nil, fmt.Errorf("entry of %d bytes overruns bundle", n)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

func TestTileIndexPath(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "000"}, {7, "007"}, {999, "999"}, {1000, "x001/000"}, {1234067, "x001/x234/067"}} {
		if got := tileIndexPath(tc.n); got != tc.want {
			t.Errorf("tileIndexPath(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
