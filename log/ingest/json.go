package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// decodeJSON reads exactly one JSON value, numbers kept as json.Number so
// that re-encoding does not change them.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not valid JSON: data after the first value")
	}
	return v, nil
}

// canonicalJSON is the form whose digest identifies an ingested payload:
// object keys sorted (by UTF-8 bytes), no insignificant white space, strings
// escaped as Go's encoding/json does without HTML escaping, numbers exactly
// as sent. Two payloads differing only in key order or white space have the
// same canonical form.
func canonicalJSON(v any) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		// v came from decodeJSON: maps, slices, strings, json.Number, bools, nil.
		panic(fmt.Sprintf("ingest: canonical JSON of a decoded value: %v", err))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// digestOf is "sha256:<hex>" of b.
func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

// pathJoin appends an object key to a JSON path in the dotted form used in
// error messages: "run.facets.parent", "inputs[2].name".
func pathJoin(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

func pathIndex(base string, i int) string { return base + "[" + strconv.Itoa(i) + "]" }

// lookup finds the value at a dotted path ("a.b[2].c") in v.
func lookup(v any, path string) (any, bool) {
	if path == "" || path == "." {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		name, idxs := part, []int(nil)
		if i := strings.IndexByte(part, '['); i >= 0 {
			name = part[:i]
			rest := part[i:]
			for rest != "" {
				j := strings.IndexByte(rest, ']')
				if rest[0] != '[' || j < 0 {
					return nil, false
				}
				n, err := strconv.Atoi(rest[1:j])
				if err != nil {
					return nil, false
				}
				idxs = append(idxs, n)
				rest = rest[j+1:]
			}
		}
		if name != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[name]; !ok {
				return nil, false
			}
		}
		for _, n := range idxs {
			a, ok := v.([]any)
			if !ok || n < 0 || n >= len(a) {
				return nil, false
			}
			v = a[n]
		}
	}
	return v, true
}

// str returns the string at key of object m, "" when absent or not a string.
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func obj(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

func arr(m map[string]any, key string) []any {
	a, _ := m[key].([]any)
	return a
}

// scalarString renders a JSON scalar as text: strings as they are, numbers
// as sent, booleans as true/false; ok is false for objects, arrays and null.
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// DigestJSON is the digest provlog records for an ingested JSON payload
// (decoded with json.Decoder.UseNumber): "sha256:" and the hex SHA-256 of
// its canonical form (see canonicalJSON).
func DigestJSON(v any) string { return digestOf(canonicalJSON(v)) }
