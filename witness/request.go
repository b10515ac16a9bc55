package witness

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

const (
	// MaxRequestSize bounds an add-checkpoint body. It fits the old size
	// line, 63 proof lines and a checkpoint carrying the 16 signatures
	// signed-note requires verifiers to accept, even ML-DSA-44 ones.
	MaxRequestSize = 128 << 10
	// maxProofLines is the most consistency proof lines a client may send.
	maxProofLines = 63
	// hashSize is the size of an RFC 6962 SHA-256 hash.
	hashSize = 32
)

// addRequest is a parsed add-checkpoint body.
type addRequest struct {
	OldSize    uint64
	Proof      [][]byte
	Checkpoint []byte // the signed note, unverified
}

// parseAddCheckpoint parses an add-checkpoint request body: an "old N" line,
// up to 63 base64 hash lines, an empty line, then a signed checkpoint note.
// Every line ends in a newline. All errors wrap ErrMalformed.
func parseAddCheckpoint(body []byte) (addRequest, error) {
	var req addRequest
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return req, fmt.Errorf("%w: missing old size line", ErrMalformed)
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return req, fmt.Errorf("%w: first line is not \"old <size>\"", ErrMalformed)
	}
	old, err := parseSize(string(num))
	if err != nil {
		return req, fmt.Errorf("%w: old size: %w", ErrMalformed, err)
	}
	req.OldSize = old
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return req, fmt.Errorf("%w: missing empty line before the checkpoint", ErrMalformed)
		}
		if len(line) == 0 {
			break
		}
		if len(req.Proof) == maxProofLines {
			return req, fmt.Errorf("%w: more than %d consistency proof lines", ErrMalformed, maxProofLines)
		}
		h, err := parseHash(string(line))
		if err != nil {
			return req, fmt.Errorf("%w: consistency proof line %d: %w", ErrMalformed, len(req.Proof)+1, err)
		}
		req.Proof = append(req.Proof, h)
	}
	if len(rest) == 0 {
		return req, fmt.Errorf("%w: missing checkpoint", ErrMalformed)
	}
	req.Checkpoint = rest
	return req, nil
}

// parseSize parses an ASCII decimal tree size with no leading zeroes.
func parseSize(s string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty size")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("size %q is not decimal", s)
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("size %q has a leading zero", s)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	return n, nil
}

// parseHash decodes one canonical standard base64 SHA-256 hash.
func parseHash(s string) ([]byte, error) {
	h, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("hash %q is not base64: %w", s, err)
	}
	// The decoder skips \r and accepts non-zero padding bits: insist on
	// the one canonical encoding.
	if len(h) != hashSize || base64.StdEncoding.EncodeToString(h) != s {
		return nil, fmt.Errorf("hash %q is not a canonically encoded %d-byte hash", s, hashSize)
	}
	return h, nil
}

// checkpoint is the parsed text of a tlog-checkpoint note.
type checkpoint struct {
	Origin string
	Size   uint64
	Hash   []byte
}

// parseCheckpoint parses a checkpoint note text (ending in a newline, as
// note.Open returns it): origin, size, root hash, then optional non-empty
// extension lines. Errors wrap ErrMalformed.
func parseCheckpoint(text string) (checkpoint, error) {
	var cp checkpoint
	body, ok := strings.CutSuffix(text, "\n")
	if !ok {
		return cp, fmt.Errorf("%w: checkpoint does not end in a newline", ErrMalformed)
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return cp, fmt.Errorf("%w: checkpoint has %d lines, want at least 3", ErrMalformed, len(lines))
	}
	if lines[0] == "" {
		return cp, fmt.Errorf("%w: checkpoint origin is empty", ErrMalformed)
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return cp, fmt.Errorf("%w: checkpoint size: %w", ErrMalformed, err)
	}
	hash, err := parseHash(lines[2])
	if err != nil {
		return cp, fmt.Errorf("%w: checkpoint root hash: %w", ErrMalformed, err)
	}
	for i, ext := range lines[3:] {
		if ext == "" {
			return cp, fmt.Errorf("%w: checkpoint extension line %d is empty", ErrMalformed, i+1)
		}
	}
	return checkpoint{Origin: lines[0], Size: size, Hash: hash}, nil
}

// noteOrigin returns the first line of a signed note, which for a
// checkpoint is its origin, without verifying anything.
func noteOrigin(signed []byte) (string, error) {
	origin, _, ok := bytes.Cut(signed, []byte("\n"))
	if !ok || len(origin) == 0 {
		return "", fmt.Errorf("%w: checkpoint has no origin line", ErrMalformed)
	}
	return string(origin), nil
}
