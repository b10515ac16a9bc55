package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/provlog/provlog/log/event"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/tlog"
)

// LeafError names the first leaf of a replayed log that is not what the
// checkpoint commits to, or that the replay's callback refused.
type LeafError struct {
	Index  uint64
	Reason string
	Err    error
}

func (e *LeafError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("leaf %d: %s: %v", e.Index, e.Reason, e.Err)
	}
	return fmt.Sprintf("leaf %d: %s", e.Index, e.Reason)
}

func (e *LeafError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrVerification, e.Err}
	}
	return []error{ErrVerification}
}

// Replay reads every leaf of the tree of cp, in order, from the tlog-tiles
// API: each entry bundle's leaf hashes must equal the hashes that the hash
// tiles, verified against cp's root with x/mod/sumdb/tlog, commit to. It
// calls fn with each verified leaf; progress, when set, after each bundle.
// A leaf that does not match (an edited entry bundle or hash tile) stops
// the replay with a *LeafError naming its index; fn's error stops it
// likewise. Network errors are returned as they are.
func (f *TileFetcher) Replay(ctx context.Context, cp *log.Checkpoint, fn func(index uint64, leaf []byte) error, progress func(done uint64)) error {
	for start := uint64(0); start < cp.Size; start += 256 {
		width := int(min(256, cp.Size-start))
		bundle := start / 256
		raw, err := f.entryBundle(ctx, bundle, width)
		if err != nil {
			return err
		}
		entries, perr := parseEntryBundlePrefix(raw)
		if perr == nil && len(entries) > width && width < 256 {
			entries = entries[:width] // read from the full bundle
		}
		if perr != nil || len(entries) != width {
			reason := fmt.Sprintf("entry bundle %d holds %d entries, want %d", bundle, len(entries), width)
			if perr != nil {
				reason = fmt.Sprintf("entry bundle %d does not parse after %d entries: %v", bundle, len(entries), perr)
			}
			return &LeafError{Index: start + uint64(min(len(entries), width)), Reason: reason}
		}
		want, verr := f.VerifiedLeafHashes(ctx, cp.Size, cp.Hash, start, start+uint64(width))
		if verr != nil {
			return f.locateBadTile(ctx, cp, start, width, entries, verr)
		}
		for j, leaf := range entries {
			if event.LeafHash(leaf) != want[j] {
				return &LeafError{Index: start + uint64(j), Reason: "the entry bundle holds a leaf whose hash is not the one the checkpoint commits to"}
			}
		}
		for j, leaf := range entries {
			if err := fn(start+uint64(j), leaf); err != nil {
				var le *LeafError
				if errors.As(err, &le) {
					return err
				}
				return &LeafError{Index: start + uint64(j), Reason: "refused", Err: err}
			}
		}
		if progress != nil {
			progress(start + uint64(width))
		}
	}
	return nil
}

// locateBadTile is called when the hash tiles of a bundle do not verify:
// it compares the bundle's leaf hashes with the level-0 tile as served, so
// as to name the leaf whose hash was edited.
func (f *TileFetcher) locateBadTile(ctx context.Context, cp *log.Checkpoint, start uint64, width int, entries [][]byte, verr error) error {
	t := tlog.Tile{H: 8, L: 0, N: int64(start / 256), W: width}
	data, err := f.HashTile(ctx, t)
	if err == nil && len(data) == 32*width {
		for j, leaf := range entries {
			h := event.LeafHash(leaf)
			if string(h[:]) != string(data[32*j:32*(j+1)]) {
				return &LeafError{Index: start + uint64(j), Reason: fmt.Sprintf("hash tile %s does not match the leaf in the entry bundle, and the tiles do not verify against the checkpoint", tilePath(t)), Err: verr}
			}
		}
	}
	return &LeafError{Index: start, Reason: fmt.Sprintf("the hash tiles above leaves %d..%d do not verify against the checkpoint", start, start+uint64(width)-1), Err: verr}
}

// tilePath is the tlog-tiles path of a hash tile: x/mod's without the
// height.
func tilePath(t tlog.Tile) string {
	return strings.Replace(t.Path(), fmt.Sprintf("tile/%d/", t.H), "tile/", 1)
}

func entryBundlePath(n uint64, width int) string {
	p := "tile/entries/" + TileIndexPath(n)
	if width < 256 {
		p += fmt.Sprintf(".p/%d", width)
	}
	return p
}

// parseEntryBundlePrefix is ParseEntryBundle returning the entries read
// before an error.
func parseEntryBundlePrefix(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return out, errors.New("dangling byte")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			return out, fmt.Errorf("entry of %d bytes overruns the bundle", n)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}
