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

// CBOR major types, shifted into the high bits of the initial byte.
const (
	majorUint  = 0 << 5
	majorNeg   = 1 << 5
	majorBytes = 2 << 5
	majorText  = 3 << 5
	majorArray = 4 << 5
	majorMap   = 5 << 5
)

type encoder struct {
	b []byte
	// badUTF8 is set when some string was not valid UTF-8; the bytes
	// written are then thrown away and utf8Error finds the field.
	badUTF8 bool
}

// head appends the initial byte(s) of a data item with the shortest
// argument encoding (RFC 8949 §4.2.1, "preferred serialization").
func (x *encoder) head(major byte, n uint64) {
	switch {
	case n < 24:
		x.b = append(x.b, major|byte(n))
	case n <= 0xff:
		x.b = append(x.b, major|24, byte(n))
	case n <= 0xffff:
		x.b = append(x.b, major|25, byte(n>>8), byte(n))
	case n <= 0xffffffff:
		x.b = append(x.b, major|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		x.b = append(x.b, major|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
			byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func (x *encoder) int(v int64) {
	if v >= 0 {
		x.head(majorUint, uint64(v))
	} else {
		x.head(majorNeg, uint64(-1-v))
	}
}

func (x *encoder) text(s string) {
	if !utf8.ValidString(s) {
		x.badUTF8 = true
	}
	x.head(majorText, uint64(len(s)))
	x.b = append(x.b, s...)
}

// beginMap writes a placeholder map header and returns its offset.
func (x *encoder) beginMap() int {
	x.b = append(x.b, majorMap)
	return len(x.b) - 1
}

// endMap patches the header written by beginMap with the pair count.
func (x *encoder) endMap(at, n int) {
	x.b[at] = majorMap | byte(n)
}

// The opt* methods write one map pair, key k, unless the value is empty,
// and return how many pairs they wrote.

func (x *encoder) optUint(k byte, v uint64) int {
	if v == 0 {
		return 0
	}
	x.b = append(x.b, k)
	x.head(majorUint, v)
	return 1
}

func (x *encoder) optInt(k byte, v int32) int {
	if v == 0 {
		return 0
	}
	x.b = append(x.b, k)
	x.int(int64(v))
	return 1
}

func (x *encoder) optText(k byte, s string) int {
	if s == "" {
		return 0
	}
	x.b = append(x.b, k)
	x.text(s)
	return 1
}

func (x *encoder) optBytes(k byte, p []byte) int {
	if len(p) == 0 {
		return 0
	}
	x.b = append(x.b, k)
	x.head(majorBytes, uint64(len(p)))
	x.b = append(x.b, p...)
	return 1
}

func (x *encoder) optTexts(k byte, ss []string) int {
	if len(ss) == 0 {
		return 0
	}
	x.b = append(x.b, k)
	x.head(majorArray, uint64(len(ss)))
	for _, s := range ss {
		x.text(s)
	}
	return 1
}

// optTextMap writes a map<string, string> with its keys in canonical order:
// shorter first, then bytewise (keyLess).
func (x *encoder) optTextMap(k byte, m map[string]string) int {
	if len(m) == 0 {
		return 0
	}
	var buf [16]string
	keys := buf[:0]
	for key := range m {
		keys = append(keys, key)
	}
	if len(keys) > 1 {
		slices.SortFunc(keys, keyCompare)
	}
	x.b = append(x.b, k)
	x.head(majorMap, uint64(len(keys)))
	for _, key := range keys {
		x.text(key)
		x.text(m[key])
	}
	return 1
}

// optMessage writes key k and the map that body writes, unless body writes
// no pairs, in which case it leaves nothing behind.
func (x *encoder) optMessage(k byte, body func() int) int {
	mark := len(x.b)
	x.b = append(x.b, k)
	at := x.beginMap()
	n := body()
	if n == 0 {
		x.b = x.b[:mark]
		return 0
	}
	x.endMap(at, n)
	return 1
}

func (x *encoder) optAssets(k byte, as []*provlogv1.Asset) int {
	if len(as) == 0 {
		return 0
	}
	x.b = append(x.b, k)
	x.head(majorArray, uint64(len(as)))
	for _, a := range as {
		at := x.beginMap()
		n := x.optText(1, a.GetUri())
		n += x.optText(2, a.GetVersion())
		n += x.optText(3, a.GetDigest())
		n += x.optTexts(4, a.GetFields())
		n += x.optText(5, a.GetClassification())
		n += x.optText(6, a.GetRecordKey())
		x.endMap(at, n)
	}
	return 1
}

func (x *encoder) optFieldLineage(k byte, fls []*provlogv1.FieldLineage) int {
	if len(fls) == 0 {
		return 0
	}
	x.b = append(x.b, k)
	x.head(majorArray, uint64(len(fls)))
	for _, fl := range fls {
		at := x.beginMap()
		n := x.optText(1, fl.GetOutputUri())
		n += x.optText(2, fl.GetOutputField())
		if srcs := fl.GetSources(); len(srcs) > 0 {
			x.b = append(x.b, 3)
			x.head(majorArray, uint64(len(srcs)))
			for _, s := range srcs {
				at := x.beginMap()
				m := x.optText(1, s.GetUri())
				m += x.optText(2, s.GetField())
				x.endMap(at, m)
			}
			n++
		}
		n += x.optText(4, fl.GetTransformation())
		x.endMap(at, n)
	}
	return 1
}

// event appends the canonical encoding of e.
func (x *encoder) event(e *provlogv1.ProvenanceEvent, eventTime uint64, withSignature bool) {
	at := x.beginMap()
	n := x.optUint(1, uint64(e.GetSchemaVersion()))
	n += x.optText(2, e.GetEventId())
	n += x.optText(3, e.GetTenant())
	n += x.optInt(4, int32(e.GetOperation()))
	n += x.optUint(5, eventTime)
	if a := e.GetActor(); a != nil {
		n += x.optMessage(6, func() int {
			m := x.optInt(1, int32(a.GetType()))
			m += x.optText(2, a.GetId())
			m += x.optText(3, a.GetOnBehalfOf())
			m += x.optText(4, a.GetDisplayName())
			return m
		})
	}
	if w := e.GetWorkflow(); w != nil {
		n += x.optMessage(7, func() int {
			m := x.optText(1, w.GetPlatform())
			m += x.optText(2, w.GetPlatformVersion())
			m += x.optText(3, w.GetWorkflowId())
			m += x.optText(4, w.GetWorkflowVersion())
			m += x.optText(5, w.GetRunId())
			m += x.optText(6, w.GetParentRunId())
			m += x.optText(7, w.GetStepId())
			return m
		})
	}
	n += x.optAssets(8, e.GetInputs())
	n += x.optAssets(9, e.GetOutputs())
	n += x.optFieldLineage(10, e.GetFieldLineage())
	n += x.optText(11, e.GetRationale())
	n += x.optTextMap(12, e.GetEnvironment())
	n += x.optTextMap(13, e.GetExtensions())
	n += x.optTexts(14, e.GetSubjectEventIds())
	if s := e.GetSignature(); withSignature && s != nil {
		n += x.optMessage(15, func() int {
			return x.optText(1, s.GetKeyId()) + x.optBytes(2, s.GetSignature())
		})
	}
	x.endMap(at, n)
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
	x := encoder{b: b}
	x.event(e, et, withSignature)
	if x.badUTF8 {
		return b, utf8Error(e.ProtoReflect())
	}
	return x.b, nil
}

// appendLeaf appends the leaf map {1: 1, 2: event, 3: received, 4:
// submitter, 5: digest of the event} to b, and returns the digest too.
func appendLeaf(b []byte, e *provlogv1.ProvenanceEvent, received uint64, submitter string) ([]byte, [32]byte, error) {
	b = append(b, majorMap|5, 1, LeafVersion, 2) // LeafVersion < 24: one byte
	start := len(b)
	b, err := appendEvent(b, e, true)
	if err != nil {
		return nil, [32]byte{}, err
	}
	if n := len(b) - start; n > MaxEventBytes {
		return nil, [32]byte{}, fieldErr("event", sizeReason(n))
	}
	digest := sha256.Sum256(b[start:])
	x := encoder{b: b}
	x.optUint(3, received)
	x.optText(4, submitter)
	x.optBytes(5, digest[:])
	if x.badUTF8 {
		return nil, [32]byte{}, fieldErr("submitter", "invalid UTF-8")
	}
	return x.b, digest, nil
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
