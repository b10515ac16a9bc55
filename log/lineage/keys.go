package lineage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
)

// Keyspaces. Every stored key starts with one of these bytes; see the key
// layout in doc.go. Everything except keyMeta is index data and is covered
// by the index digest.
const (
	keyEvent      = 'E' // leaf -> event record
	keyInput      = 'i' // tenant uri version record_key leaf -> ""
	keyOutput     = 'o' // tenant uri version record_key leaf -> ""
	keyObserver   = 'q' // tenant run uri version record_key leaf -> "" (inputs of events without outputs)
	keyHistory    = 'h' // tenant uri leaf -> asset uses
	keyEventID    = 'x' // tenant event_id leaf -> ""
	keySubject    = 'y' // tenant subject_event_id leaf -> operation
	keyActedOn    = 'Y' // tenant subject_event_id -> "" (some approval or override names it)
	keyUnversion  = 'N' // tenant uri -> "" (some event names the uri without a version)
	keyRunEvent   = 'r' // tenant run leaf -> operation
	keyRunMeta    = 'R' // tenant run -> run state
	keyWorkflow   = 'w' // tenant workflow_id leaf -> ""
	keyWfRun      = 'v' // tenant workflow_id run_id -> first leaf (ListWorkflowRuns)
	keyActor      = 'a' // tenant actor id leaf -> ""
	keyOperation  = 'p' // tenant operation leaf -> ""
	keyClass      = 'c' // tenant classification leaf -> ""
	keyTime       = 't' // tenant event_time leaf -> ""
	keyStep       = 's' // tenant step_id leaf -> ""
	keyLocation   = 'L' // tenant location -> "" (something there was produced)
	keyCandidate  = 'K' // tenant location uri version record_key leaf -> run
	keyGap        = 'G' // tenant run kind detail -> gap
	keyWait       = 'W' // kind tenant subject -> waiting gaps
	keyGapCount   = 'C' // kind -> open gaps
	keyUndecoded  = 'U' // leaf -> "" (leaves that do not decode)
	keyMeta       = 'm' // watermark, digest, digests by size, format: not in the digest
	waitRun       = 'r' // keyWait: parent run -> child runs
	waitSubject   = 's' // keyWait: subject event id -> approvals
	waitProducer  = 'u' // keyWait: uri -> unproduced inputs
	metaWatermark = 'w'
	metaSum       = 's'
	metaDigestAt  = 'd'
	metaFormat    = 'f'
)

// formatVersion changes whenever the layout or the meaning of stored data
// changes; Open rebuilds an index written in another format.
const formatVersion = 2 // 2: keyWfRun

// The escaping of strings inside keys keeps byte order and makes every
// string self-delimiting, so that no string is a prefix of another
// component: 0x00 is written 0x00 0xFF, and a string ends with 0x00 0x01.

const (
	escByte = 0x00
	escZero = 0xFF
	escEnd  = 0x01
)

// key builds keys. Methods return a new key with one more component; they
// never write into k's spare capacity, so a key can be extended in several
// ways (a prefix and the keys under it) without the results aliasing.
type key []byte

func newKey(space byte) key { return key{space} }

// grow returns a copy of k with room for n more bytes.
func (k key) grow(n int) key {
	out := make(key, len(k), len(k)+n)
	copy(out, k)
	return out
}

func (k key) str(s string) key { return k.grow(len(s) + 2).appendStr(s) }

// appendStr appends s escaped, in place: only for a key no one else holds.
func (k key) appendStr(s string) key {
	for i := 0; i < len(s); i++ {
		if s[i] == escByte {
			k = append(k, escByte, escZero)
		} else {
			k = append(k, s[i])
		}
	}
	return append(k, escByte, escEnd)
}

// keyAt is newKey(space).str(strs[0]).str(strs[1])….u64(idx) built in
// one allocation: the shape of most keys indexing writes per leaf.
func keyAt(space byte, idx uint64, strs ...string) key {
	n := 1 + 8
	for _, s := range strs {
		n += len(s) + 2 + strings.Count(s, "\x00")
	}
	k := make(key, 1, n)
	k[0] = space
	for _, s := range strs {
		k = k.appendStr(s)
	}
	return binary.BigEndian.AppendUint64(k, idx)
}

func (k key) u64(v uint64) key { return binary.BigEndian.AppendUint64(k.grow(8), v) }

func (k key) b(c byte) key { return append(k.grow(1), c) }

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil when there is none (p is all 0xFF).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

var errBadKey = errors.New("malformed index key")

// keyReader takes components off a key.
type keyReader struct {
	b   []byte
	err error
}

func (r *keyReader) str() string {
	if r.err != nil {
		return ""
	}
	var out []byte
	for i := 0; ; {
		j := bytes.IndexByte(r.b[i:], escByte)
		if j < 0 || i+j+1 >= len(r.b) {
			r.err = errBadKey
			return ""
		}
		j += i
		out = append(out, r.b[i:j]...)
		switch r.b[j+1] {
		case escEnd:
			r.b = r.b[j+2:]
			return string(out)
		case escZero:
			out = append(out, 0)
			i = j + 2
		default:
			r.err = errBadKey
			return ""
		}
	}
}

func (r *keyReader) u64() uint64 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 8 {
		r.err = errBadKey
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}
