package event

import (
	"math"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	provlogv1 "github.com/provlog/provlog/proto/provlog/v1"
)

// decoder parses the canonical encoding strictly, straight into the proto
// messages: every head in shortest form, definite lengths, map keys known,
// strictly increasing (so sorted and unique), no empty values where the
// encoder would have left them out, valid UTF-8. Whatever it accepts is, by
// construction, what the encoder writes for the result; DecodeLeaf checks
// that once more by re-encoding.
//
// The input is held as a string so that decoded text values are substrings
// of it: one allocation for all of them. Lengths are checked against the
// bytes remaining before anything is allocated, so allocations are bounded
// by a small multiple of the input size.
type decoder struct {
	s   string
	off int
}

type decodeError struct{ msg string }

func (e *decodeError) Error() string { return e.msg }

func (d *decoder) fail(what string) error {
	return &decodeError{msg: what + " at byte " + strconv.Itoa(d.off)}
}

// head reads the initial byte and argument of a data item.
func (d *decoder) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.s) {
		return 0, 0, d.fail("unexpected end of data")
	}
	ib := d.s[d.off]
	major, ai := ib>>5, ib&0x1f
	if major == 6 {
		return 0, 0, d.fail("tag")
	}
	if major == 7 {
		return 0, 0, d.fail("float or simple value")
	}
	var size int
	switch {
	case ai < 24:
		d.off++
		return major, uint64(ai), nil
	case ai == 24:
		size = 1
	case ai == 25:
		size = 2
	case ai == 26:
		size = 4
	case ai == 27:
		size = 8
	case ai == 31:
		return 0, 0, d.fail("indefinite length")
	default:
		return 0, 0, d.fail("reserved additional information")
	}
	if len(d.s)-d.off-1 < size {
		return 0, 0, d.fail("unexpected end of data")
	}
	for i := 1; i <= size; i++ {
		arg = arg<<8 | uint64(d.s[d.off+i])
	}
	// Shortest form: the argument would not have fit in the next smaller
	// size.
	if least := [...]uint64{1: 24, 2: 0x100, 4: 0x10000, 8: 0x100000000}[size]; arg < least {
		return 0, 0, d.fail("non-shortest integer or length")
	}
	d.off += 1 + size
	return major, arg, nil
}

func (d *decoder) expect(major byte, what string) (uint64, error) {
	at := d.off
	m, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		d.off = at
		return 0, d.fail(what + ": wrong type")
	}
	return arg, nil
}

// count reads an array or map header; n items of at least per bytes each
// must fit in what is left.
func (d *decoder) count(major byte, per int, what string) (int, error) {
	n, err := d.expect(major, what)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.s)-d.off)/uint64(per) {
		return 0, d.fail(what + ": longer than the data")
	}
	return int(n), nil
}

// key reads a message map key: an unsigned integer above last and at most
// max.
func (d *decoder) key(last, max uint64) (uint64, error) {
	at := d.off
	k, err := d.expect(0, "key")
	if err != nil {
		return 0, err
	}
	switch {
	case k == 0 || k > max:
		d.off = at
		return 0, d.fail("unknown key " + strconv.FormatUint(k, 10))
	case k <= last:
		d.off = at
		return 0, d.fail("key " + strconv.FormatUint(k, 10) + " out of order or repeated")
	}
	return k, nil
}

func (d *decoder) textOrEmpty(what string) (string, error) {
	n, err := d.expect(3, what)
	if err != nil {
		return "", err
	}
	if n > uint64(len(d.s)-d.off) {
		return "", d.fail(what + ": longer than the data")
	}
	s := d.s[d.off : d.off+int(n)]
	if !utf8.ValidString(s) {
		return "", d.fail(what + ": invalid UTF-8")
	}
	d.off += int(n)
	return s, nil
}

// text reads a non-empty text string, as every omittable field must be.
func (d *decoder) text(what string) (string, error) {
	at := d.off
	s, err := d.textOrEmpty(what)
	if err == nil && s == "" {
		d.off = at
		return "", d.fail(what + ": empty value present")
	}
	return s, err
}

func (d *decoder) bytes(what string) ([]byte, error) {
	n, err := d.expect(2, what)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, d.fail(what + ": empty value present")
	}
	if n > uint64(len(d.s)-d.off) {
		return nil, d.fail(what + ": longer than the data")
	}
	b := []byte(d.s[d.off : d.off+int(n)])
	d.off += int(n)
	return b, nil
}

// uint reads a non-zero unsigned integer no greater than max.
func (d *decoder) uint(max uint64, what string) (uint64, error) {
	at := d.off
	v, err := d.expect(0, what)
	switch {
	case err != nil:
		return 0, err
	case v == 0:
		d.off = at
		return 0, d.fail(what + ": empty value present")
	case v > max:
		d.off = at
		return 0, d.fail(what + ": out of range")
	}
	return v, nil
}

// enum reads a non-zero int32.
func (d *decoder) enum(what string) (int32, error) {
	at := d.off
	m, arg, err := d.head()
	switch {
	case err != nil:
		return 0, err
	case m != 0 && m != 1:
		d.off = at
		return 0, d.fail(what + ": wrong type")
	case arg > math.MaxInt32:
		d.off = at
		return 0, d.fail(what + ": out of range")
	case m == 1:
		return int32(-1 - int64(arg)), nil
	case arg == 0:
		d.off = at
		return 0, d.fail(what + ": empty value present")
	}
	return int32(arg), nil
}

func (d *decoder) timestamp(what string) (*timestamppb.Timestamp, error) {
	ns, err := d.uint(math.MaxInt64, what)
	if err != nil {
		return nil, err
	}
	return &timestamppb.Timestamp{Seconds: int64(ns / 1e9), Nanos: int32(ns % 1e9)}, nil
}

// message reads a message map header: at least one pair unless empty is
// allowed (an element of a repeated field).
func (d *decoder) message(what string, emptyOK bool) (int, error) {
	at := d.off
	n, err := d.count(5, 2, what)
	if err == nil && n == 0 && !emptyOK {
		d.off = at
		return 0, d.fail(what + ": empty value present")
	}
	return n, err
}

func (d *decoder) texts(what string) ([]string, error) {
	return array(d, what, func() (string, error) { return d.textOrEmpty(what) })
}

func (d *decoder) textMap(what string) (map[string]string, error) {
	at := d.off
	n, err := d.count(5, 2, what)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		d.off = at
		return nil, d.fail(what + ": empty value present")
	}
	m := make(map[string]string, n)
	var last string
	for i := range n {
		kat := d.off
		k, err := d.textOrEmpty(what + " key")
		if err != nil {
			return nil, err
		}
		if i > 0 && !keyLess(last, k) {
			d.off = kat
			return nil, d.fail(what + ": keys out of order or repeated")
		}
		last = k
		if m[k], err = d.textOrEmpty(what + " value"); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// event reads an event. Unlike a nested message, it is written even when
// empty: a leaf always holds all five of its fields.
func (d *decoder) event() (*provlogv1.ProvenanceEvent, error) {
	n, err := d.message("event", true)
	if err != nil {
		return nil, err
	}
	e := &provlogv1.ProvenanceEvent{}
	var k uint64
	for range n {
		if k, err = d.key(k, 16); err != nil {
			return nil, err
		}
		switch k {
		case 1:
			var v uint64
			v, err = d.uint(math.MaxUint32, "schema_version")
			e.SchemaVersion = uint32(v)
		case 2:
			e.EventId, err = d.text("event_id")
		case 3:
			e.Tenant, err = d.text("tenant")
		case 4:
			var v int32
			v, err = d.enum("operation")
			e.Operation = provlogv1.Operation(v)
		case 5:
			e.EventTime, err = d.timestamp("event_time")
		case 6:
			e.Actor, err = d.actor()
		case 7:
			e.Workflow, err = d.workflow()
		case 8:
			e.Inputs, err = d.assets("inputs")
		case 9:
			e.Outputs, err = d.assets("outputs")
		case 10:
			e.FieldLineage, err = d.fieldLineage()
		case 11:
			e.Rationale, err = d.text("rationale")
		case 12:
			e.Environment, err = d.textMap("environment")
		case 13:
			e.Extensions, err = d.textMap("extensions")
		case 14:
			e.SubjectEventIds, err = d.texts("subject_event_ids")
		case 15:
			e.Signature, err = d.signature()
		case 16:
			e.Sensitive, err = array(d, "sensitive", d.sensitiveValue)
		}
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (d *decoder) actor() (*provlogv1.Actor, error) {
	n, err := d.message("actor", false)
	if err != nil {
		return nil, err
	}
	a := &provlogv1.Actor{}
	var k uint64
	for range n {
		if k, err = d.key(k, 4); err != nil {
			return nil, err
		}
		switch k {
		case 1:
			var v int32
			v, err = d.enum("actor.type")
			a.Type = provlogv1.ActorType(v)
		case 2:
			a.Id, err = d.text("actor.id")
		case 3:
			a.OnBehalfOf, err = d.text("actor.on_behalf_of")
		case 4:
			a.DisplayName, err = d.text("actor.display_name")
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *decoder) workflow() (*provlogv1.Workflow, error) {
	n, err := d.message("workflow", false)
	if err != nil {
		return nil, err
	}
	w := &provlogv1.Workflow{}
	fields := [...]*string{1: &w.Platform, 2: &w.PlatformVersion, 3: &w.WorkflowId, 4: &w.WorkflowVersion, 5: &w.RunId, 6: &w.ParentRunId, 7: &w.StepId}
	var k uint64
	for range n {
		if k, err = d.key(k, 7); err != nil {
			return nil, err
		}
		if *fields[k], err = d.text(workflowFieldNames[k]); err != nil {
			return nil, err
		}
	}
	return w, nil
}

var workflowFieldNames = [...]string{1: "workflow.platform", 2: "workflow.platform_version", 3: "workflow.workflow_id",
	4: "workflow.workflow_version", 5: "workflow.run_id", 6: "workflow.parent_run_id", 7: "workflow.step_id"}

func (d *decoder) assets(what string) ([]*provlogv1.Asset, error) {
	return array(d, what, func() (*provlogv1.Asset, error) {
		a := &provlogv1.Asset{}
		return a, d.fields(what, 6, func(k uint64) (err error) {
			switch k {
			case 1:
				a.Uri, err = d.text("uri")
			case 2:
				a.Version, err = d.text("version")
			case 3:
				a.Digest, err = d.text("digest")
			case 4:
				a.Fields, err = d.texts("fields")
			case 5:
				a.Classification, err = d.text("classification")
			case 6:
				a.RecordKey, err = d.text("record_key")
			}
			return err
		})
	})
}

func (d *decoder) fieldLineage() ([]*provlogv1.FieldLineage, error) {
	return array(d, "field_lineage", func() (*provlogv1.FieldLineage, error) {
		fl := &provlogv1.FieldLineage{}
		return fl, d.fields("field_lineage", 4, func(k uint64) (err error) {
			switch k {
			case 1:
				fl.OutputUri, err = d.text("output_uri")
			case 2:
				fl.OutputField, err = d.text("output_field")
			case 3:
				fl.Sources, err = d.fieldRefs()
			case 4:
				fl.Transformation, err = d.text("transformation")
			}
			return err
		})
	})
}

func (d *decoder) fieldRefs() ([]*provlogv1.FieldRef, error) {
	return array(d, "sources", func() (*provlogv1.FieldRef, error) {
		r := &provlogv1.FieldRef{}
		return r, d.fields("sources", 2, func(k uint64) (err error) {
			if k == 1 {
				r.Uri, err = d.text("uri")
			} else {
				r.Field, err = d.text("field")
			}
			return err
		})
	})
}

// array reads a non-empty CBOR array, decoding each element with elem.
func array[T any](d *decoder, what string, elem func() (T, error)) ([]T, error) {
	at := d.off
	n, err := d.count(4, 1, what)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		d.off = at
		return nil, d.fail(what + ": empty value present")
	}
	out := make([]T, n)
	for i := range out {
		if out[i], err = elem(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fields reads one message (a map with integer keys ascending up to max)
// and calls field for each key, which must read that key's value.
func (d *decoder) fields(what string, max uint64, field func(k uint64) error) error {
	m, err := d.message(what, true)
	if err != nil {
		return err
	}
	var k uint64
	for range m {
		if k, err = d.key(k, max); err != nil {
			return err
		}
		if err := field(k); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) signature() (*provlogv1.SubmitterSignature, error) {
	n, err := d.message("signature", false)
	if err != nil {
		return nil, err
	}
	s := &provlogv1.SubmitterSignature{}
	var k uint64
	for range n {
		if k, err = d.key(k, 2); err != nil {
			return nil, err
		}
		if k == 1 {
			s.KeyId, err = d.text("signature.key_id")
		} else {
			s.Signature, err = d.bytes("signature.signature")
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sensitiveValue reads one element of sensitive. It accepts key 3 (the
// value in clear), which an event may hold but a leaf may not: DecodeLeaf
// refuses it when re-encoding the leaf.
func (d *decoder) sensitiveValue() (*provlogv1.SensitiveValue, error) {
	s := &provlogv1.SensitiveValue{}
	err := d.fields("sensitive[]", 5, func(k uint64) error {
		var err error
		switch k {
		case 1:
			s.Name, err = d.text("sensitive[].name")
		case 2:
			s.Classification, err = d.text("sensitive[].classification")
		case 3:
			s.Value, err = d.text("sensitive[].value")
		case 4:
			s.KeyId, err = d.text("sensitive[].key_id")
		case 5:
			s.Commitment, err = d.bytes("sensitive[].commitment")
		}
		return err
	})
	return s, err
}

// leaf reads a whole leaf. eventStart and eventEnd delimit the event item.
func (d *decoder) leaf() (le *provlogv1.LeafEntry, eventStart, eventEnd int, err error) {
	n, err := d.message("leaf", false)
	if err != nil {
		return nil, 0, 0, err
	}
	le = &provlogv1.LeafEntry{}
	var k uint64
	for range n {
		if k, err = d.key(k, 5); err != nil {
			return nil, 0, 0, err
		}
		switch k {
		case 1:
			var v uint64
			v, err = d.uint(math.MaxUint32, "leaf_version")
			le.LeafVersion = uint32(v)
		case 2:
			eventStart = d.off
			le.Event, err = d.event()
			eventEnd = d.off
		case 3:
			le.ReceivedTime, err = d.timestamp("received_time")
		case 4:
			le.Submitter, err = d.text("submitter")
		case 5:
			le.EventDigest, err = d.bytes("event_digest")
		}
		if err != nil {
			return nil, 0, 0, err
		}
	}
	if d.off != len(d.s) {
		return nil, 0, 0, d.fail("trailing data")
	}
	return le, eventStart, eventEnd, nil
}
