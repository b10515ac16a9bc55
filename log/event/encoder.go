package event

import (
	"crypto/sha256"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// The canonical encoding is written by hand, straight from the proto
// messages into one byte slice: no reflection, no intermediate structs, one
// allocation. It must produce exactly what encMode produces for the mirror
// structs in cbor.go; the tests check that on every golden vector and under
// the fuzzer, so there are two implementations of ENCODING.md that agree.
//
// Every struct-like map here has at most 15 keys, all below 24, so a map
// header is one byte (0xa0 | count) and a key is one byte (its number).
// A map is written with a placeholder header that is patched once the
// number of non-empty fields is known, and a nested message whose fields
// are all empty is cut back out: absent and empty encode alike.
//
// Keys are written as literal bytes: key k (1 ≤ k ≤ 23) encodes as the
// single byte k.

// CBOR major types, shifted into the high bits of the initial byte.
const (
	majorUint  = 0 << 5
	majorNeg   = 1 << 5
	majorBytes = 2 << 5
	majorText  = 3 << 5
	majorArray = 4 << 5
	majorMap   = 5 << 5
)

// encoder carries only the UTF-8 flag. The output slice is passed and
// returned by value rather than kept in the struct: stores of a pointer
// through a pointer cost a GC write barrier each, stores of a bool do not.
type encoder struct {
	// badUTF8 is set when some string was not valid UTF-8; the bytes
	// written are then thrown away and utf8Error finds the field.
	badUTF8 bool
}

// appendHead appends the initial byte(s) of a data item with the shortest
// argument encoding (RFC 8949 §4.2.1, "preferred serialization").
func appendHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major|byte(n))
	case n <= 0xff:
		return append(b, major|24, byte(n))
	case n <= 0xffff:
		return append(b, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		return append(b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(b, majorUint, uint64(v))
	}
	return appendHead(b, majorNeg, uint64(-1-v))
}

func (x *encoder) text(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		x.badUTF8 = true
	}
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

// A struct-like map is written with a placeholder header byte, patched by
// endMap once the number of pairs written is known (always < 24).
func endMap(b []byte, at, n int) { b[at] = majorMap | byte(n) }

// The opt* functions append one map pair, key k, unless the value is
// empty, and return how many pairs they appended.

func optUint(b []byte, k byte, v uint64) ([]byte, int) {
	if v == 0 {
		return b, 0
	}
	return appendHead(append(b, k), majorUint, v), 1
}

func optInt(b []byte, k byte, v int32) ([]byte, int) {
	if v == 0 {
		return b, 0
	}
	return appendInt(append(b, k), int64(v)), 1
}

func (x *encoder) optText(b []byte, k byte, s string) ([]byte, int) {
	if s == "" {
		return b, 0
	}
	return x.text(append(b, k), s), 1
}

func optBytes(b []byte, k byte, p []byte) ([]byte, int) {
	if len(p) == 0 {
		return b, 0
	}
	return append(appendHead(append(b, k), majorBytes, uint64(len(p))), p...), 1
}

func (x *encoder) optTexts(b []byte, k byte, ss []string) ([]byte, int) {
	if len(ss) == 0 {
		return b, 0
	}
	b = appendHead(append(b, k), majorArray, uint64(len(ss)))
	for _, s := range ss {
		b = x.text(b, s)
	}
	return b, 1
}

// optTextMap appends a map<string, string> with its keys in canonical
// order: shorter first, then bytewise (keyLess).
func (x *encoder) optTextMap(b []byte, k byte, m map[string]string) ([]byte, int) {
	if len(m) == 0 {
		return b, 0
	}
	var buf [16]string
	keys := buf[:0]
	for key := range m {
		keys = append(keys, key)
	}
	if len(keys) > 1 {
		slices.SortFunc(keys, keyCompare)
	}
	b = appendHead(append(b, k), majorMap, uint64(len(keys)))
	for _, key := range keys {
		b = x.text(b, key)
		b = x.text(b, m[key])
	}
	return b, 1
}

func (x *encoder) optAssets(b []byte, k byte, as []*provlogv1.Asset) ([]byte, int) {
	if len(as) == 0 {
		return b, 0
	}
	b = appendHead(append(b, k), majorArray, uint64(len(as)))
	for _, a := range as {
		at := len(b)
		b = append(b, majorMap)
		var n, m int
		b, n = x.optText(b, 1, a.GetUri())
		b, m = x.optText(b, 2, a.GetVersion())
		n += m
		b, m = x.optText(b, 3, a.GetDigest())
		n += m
		b, m = x.optTexts(b, 4, a.GetFields())
		n += m
		b, m = x.optText(b, 5, a.GetClassification())
		n += m
		b, m = x.optText(b, 6, a.GetRecordKey())
		n += m
		endMap(b, at, n)
	}
	return b, 1
}

func (x *encoder) optFieldLineage(b []byte, k byte, fls []*provlogv1.FieldLineage) ([]byte, int) {
	if len(fls) == 0 {
		return b, 0
	}
	b = appendHead(append(b, k), majorArray, uint64(len(fls)))
	for _, fl := range fls {
		at := len(b)
		b = append(b, majorMap)
		var n, m int
		b, n = x.optText(b, 1, fl.GetOutputUri())
		b, m = x.optText(b, 2, fl.GetOutputField())
		n += m
		if srcs := fl.GetSources(); len(srcs) > 0 {
			b = appendHead(append(b, 3), majorArray, uint64(len(srcs)))
			for _, s := range srcs {
				at := len(b)
				b = append(b, majorMap)
				var p, q int
				b, p = x.optText(b, 1, s.GetUri())
				b, q = x.optText(b, 2, s.GetField())
				endMap(b, at, p+q)
			}
			n++
		}
		b, m = x.optText(b, 4, fl.GetTransformation())
		n += m
		endMap(b, at, n)
	}
	return b, 1
}

// event appends the canonical encoding of e.
func (x *encoder) event(b []byte, e *provlogv1.ProvenanceEvent, eventTime uint64, withSignature bool) []byte {
	at := len(b)
	b = append(b, majorMap)
	var n, m int
	b, n = optUint(b, 1, uint64(e.GetSchemaVersion()))
	b, m = x.optText(b, 2, e.GetEventId())
	n += m
	b, m = x.optText(b, 3, e.GetTenant())
	n += m
	b, m = optInt(b, 4, int32(e.GetOperation()))
	n += m
	b, m = optUint(b, 5, eventTime)
	n += m
	// A nested message is written as key, placeholder header, fields; if
	// it had no non-empty field, all of that is cut back out.
	if a := e.GetActor(); a != nil {
		mark := len(b)
		b = append(b, 6, majorMap)
		var c, d int
		b, c = optInt(b, 1, int32(a.GetType()))
		b, d = x.optText(b, 2, a.GetId())
		c += d
		b, d = x.optText(b, 3, a.GetOnBehalfOf())
		c += d
		b, d = x.optText(b, 4, a.GetDisplayName())
		c += d
		if c == 0 {
			b = b[:mark]
		} else {
			endMap(b, mark+1, c)
			n++
		}
	}
	if w := e.GetWorkflow(); w != nil {
		mark := len(b)
		b = append(b, 7, majorMap)
		var c, d int
		b, c = x.optText(b, 1, w.GetPlatform())
		for i, s := range [...]string{w.GetPlatformVersion(), w.GetWorkflowId(), w.GetWorkflowVersion(), w.GetRunId(), w.GetParentRunId(), w.GetStepId()} {
			b, d = x.optText(b, byte(i+2), s)
			c += d
		}
		if c == 0 {
			b = b[:mark]
		} else {
			endMap(b, mark+1, c)
			n++
		}
	}
	b, m = x.optAssets(b, 8, e.GetInputs())
	n += m
	b, m = x.optAssets(b, 9, e.GetOutputs())
	n += m
	b, m = x.optFieldLineage(b, 10, e.GetFieldLineage())
	n += m
	b, m = x.optText(b, 11, e.GetRationale())
	n += m
	b, m = x.optTextMap(b, 12, e.GetEnvironment())
	n += m
	b, m = x.optTextMap(b, 13, e.GetExtensions())
	n += m
	b, m = x.optTexts(b, 14, e.GetSubjectEventIds())
	n += m
	if s := e.GetSignature(); withSignature && s != nil {
		mark := len(b)
		b = append(b, 15, majorMap)
		var c, d int
		b, c = x.optText(b, 1, s.GetKeyId())
		b, d = optBytes(b, 2, s.GetSignature())
		c += d
		if c == 0 {
			b = b[:mark]
		} else {
			endMap(b, mark+1, c)
			n++
		}
	}
	b, m = x.optSensitive(b, 16, e.GetSensitive())
	n += m
	endMap(b, at, n)
	return b
}

// optSensitive appends the sensitive values: in a submission with their
// value (key 3), in a leaf with key_id and commitment instead.
func (x *encoder) optSensitive(b []byte, k byte, ss []*provlogv1.SensitiveValue) ([]byte, int) {
	if len(ss) == 0 {
		return b, 0
	}
	b = appendHead(append(b, k), majorArray, uint64(len(ss)))
	for _, s := range ss {
		at := len(b)
		b = append(b, majorMap)
		var n, m int
		b, n = x.optText(b, 1, s.GetName())
		b, m = x.optText(b, 2, s.GetClassification())
		n += m
		b, m = x.optText(b, 3, s.GetValue())
		n += m
		b, m = x.optText(b, 4, s.GetKeyId())
		n += m
		b, m = optBytes(b, 5, s.GetCommitment())
		n += m
		endMap(b, at, n)
	}
	return b, 1
}

// appendEvent appends the canonical encoding of e to b.
func appendEvent(b []byte, e *provlogv1.ProvenanceEvent, withSignature bool) ([]byte, error) {
	if e == nil {
		return b, fieldErr("event", "required")
	}
	et, reason := timestampNanos(e.GetEventTime())
	if reason != "" {
		return b, fieldErr("event_time", reason)
	}
	var x encoder
	out := x.event(b, e, et, withSignature)
	if x.badUTF8 {
		return b, utf8Error(e.ProtoReflect())
	}
	return out, nil
}

// appendLeaf appends the leaf map {1: version, 2: event, 3: received, 4:
// submitter, 5: digest of the event} to b, and returns the digest too. The
// version is 1, or LeafVersionSensitive when the event has sensitive
// values, which must then be sealed: no value, a key id and a 32-byte
// commitment each.
func appendLeaf(b []byte, e *provlogv1.ProvenanceEvent, received uint64, submitter string) ([]byte, [32]byte, error) {
	version := byte(LeafVersion)
	if ss := e.GetSensitive(); len(ss) > 0 {
		if err := sealedReason(ss); err != nil {
			return nil, [32]byte{}, err
		}
		version = LeafVersionSensitive
	}
	b = append(b, majorMap|5, 1, version, 2) // versions < 24: one byte
	start := len(b)
	b, err := appendEvent(b, e, true)
	if err != nil {
		return nil, [32]byte{}, err
	}
	if n := len(b) - start; n > MaxEventBytes {
		return nil, [32]byte{}, fieldErr("event", sizeReason(n))
	}
	digest := sha256.Sum256(b[start:])
	var x encoder
	b, _ = optUint(b, 3, received)
	b, _ = x.optText(b, 4, submitter)
	b, _ = optBytes(b, 5, digest[:])
	if x.badUTF8 {
		return nil, [32]byte{}, fieldErr("submitter", "invalid UTF-8")
	}
	return b, digest, nil
}

// utf8Error finds the first string in m that is not valid UTF-8, in the
// order the encoder writes them, and names it. It is the slow path, run
// only once the encoder has seen such a string.
func utf8Error(m protoreflect.Message) error {
	if p, ok := findBadUTF8(m, ""); ok {
		if r, ok := mapKeyIssue(p); ok {
			return fieldErr(r, "key: invalid UTF-8")
		}
		return fieldErr(p, "invalid UTF-8")
	}
	// Unreachable: the encoder saw one.
	return fieldErr("event", "invalid UTF-8")
}

// mapKeyIssue reports whether a path from findBadUTF8 is about a map key,
// which it marks with a trailing "#key", and strips the mark.
func mapKeyIssue(p string) (string, bool) {
	const mark = "#key"
	if len(p) > len(mark) && p[len(p)-len(mark):] == mark {
		return p[:len(p)-len(mark)], true
	}
	return p, false
}

func findBadUTF8(m protoreflect.Message, prefix string) (string, bool) {
	fields := m.Descriptor().Fields()
	fds := make([]protoreflect.FieldDescriptor, fields.Len())
	for i := range fds {
		fds[i] = fields.Get(i)
	}
	sort.Slice(fds, func(i, j int) bool { return fds[i].Number() < fds[j].Number() })
	for _, fd := range fds {
		if !m.Has(fd) {
			continue
		}
		name := prefix + fd.TextName()
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			mv := v.Map()
			var keys []string
			mv.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k.String())
				return true
			})
			slices.SortFunc(keys, keyCompare)
			for _, k := range keys {
				p := mapPath(name, k)
				if !utf8.ValidString(k) {
					return p + "#key", true
				}
				if s := mv.Get(protoreflect.ValueOfString(k).MapKey()); fd.MapValue().Kind() == protoreflect.StringKind && !utf8.ValidString(s.String()) {
					return p, true
				}
			}
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				p := name + "[" + strconv.Itoa(i) + "]"
				switch fd.Kind() {
				case protoreflect.StringKind:
					if !utf8.ValidString(l.Get(i).String()) {
						return p, true
					}
				case protoreflect.MessageKind:
					if p, ok := findBadUTF8(l.Get(i).Message(), p+"."); ok {
						return p, true
					}
				}
			}
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.ValidString(v.String()) {
				return name, true
			}
		case fd.Kind() == protoreflect.MessageKind:
			if p, ok := findBadUTF8(v.Message(), name+"."); ok {
				return p, true
			}
		}
	}
	return "", false
}

// mapPath names one entry of a map field, quoting the key as Go does.
func mapPath(name, key string) string {
	return name + "[" + strconv.Quote(key) + "]"
}

// keyLess reports whether text key a sorts before b in the canonical
// encoding: shorter keys first, then bytewise. For CBOR text strings this
// is the same as comparing the encoded keys bytewise (RFC 8949 §4.2.1),
// because the length is encoded first and its encoding grows with it.
func keyLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func keyCompare(a, b string) int {
	switch {
	case keyLess(a, b):
		return -1
	case keyLess(b, a):
		return 1
	}
	return 0
}
