package event

import provlogv1 "github.com/provlog/provlog/proto/provlog/v1"

// The functions here compute the length of the canonical encoding without
// writing it, for Validate's size check. They follow encoder.go exactly;
// the tests and FuzzValidateJSON check that they agree with it.

func headLen(n uint64) int {
	switch {
	case n < 24:
		return 1
	case n <= 0xff:
		return 2
	case n <= 0xffff:
		return 3
	case n <= 0xffffffff:
		return 5
	}
	return 9
}

func intLen(v int64) int {
	if v < 0 {
		return headLen(uint64(-1 - v))
	}
	return headLen(uint64(v))
}

func textLen(s string) int { return headLen(uint64(len(s))) + len(s) }

// The opt*Len functions count a key byte and the value, or nothing for an
// empty value.

func optUintLen(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + headLen(v)
}

func optIntLen(v int32) int {
	if v == 0 {
		return 0
	}
	return 1 + intLen(int64(v))
}

func optTextLen(s string) int {
	if s == "" {
		return 0
	}
	return 1 + textLen(s)
}

func optTextsLen(ss []string) int {
	if len(ss) == 0 {
		return 0
	}
	n := 1 + headLen(uint64(len(ss)))
	for _, s := range ss {
		n += textLen(s)
	}
	return n
}

func optTextMapLen(m map[string]string) int {
	if len(m) == 0 {
		return 0
	}
	n := 1 + headLen(uint64(len(m)))
	for k, v := range m {
		n += textLen(k) + textLen(v)
	}
	return n
}

// optMessageLen counts a nested message whose fields take body bytes: a key
// and a one-byte map header, or nothing when all its fields are empty.
func optMessageLen(body int) int {
	if body == 0 {
		return 0
	}
	return 2 + body
}

func optAssetsLen(as []*provlogv1.Asset) int {
	if len(as) == 0 {
		return 0
	}
	n := 1 + headLen(uint64(len(as)))
	for _, a := range as {
		n += 1 + optTextLen(a.GetUri()) + optTextLen(a.GetVersion()) + optTextLen(a.GetDigest()) +
			optTextsLen(a.GetFields()) + optTextLen(a.GetClassification()) + optTextLen(a.GetRecordKey())
	}
	return n
}

func optFieldLineageLen(fls []*provlogv1.FieldLineage) int {
	if len(fls) == 0 {
		return 0
	}
	n := 1 + headLen(uint64(len(fls)))
	for _, fl := range fls {
		n += 1 + optTextLen(fl.GetOutputUri()) + optTextLen(fl.GetOutputField()) + optTextLen(fl.GetTransformation())
		if srcs := fl.GetSources(); len(srcs) > 0 {
			n += 1 + headLen(uint64(len(srcs)))
			for _, s := range srcs {
				n += 1 + optTextLen(s.GetUri()) + optTextLen(s.GetField())
			}
		}
	}
	return n
}

// encodedEventSize returns len(EncodeEvent(e)) for an event that EncodeEvent
// accepts (valid UTF-8, event_time in range).
func encodedEventSize(e *provlogv1.ProvenanceEvent) int {
	et, _ := timestampNanos(e.GetEventTime())
	n := 1 + optUintLen(uint64(e.GetSchemaVersion())) + optTextLen(e.GetEventId()) + optTextLen(e.GetTenant()) +
		optIntLen(int32(e.GetOperation())) + optUintLen(et)
	if a := e.GetActor(); a != nil {
		n += optMessageLen(optIntLen(int32(a.GetType())) + optTextLen(a.GetId()) + optTextLen(a.GetOnBehalfOf()) + optTextLen(a.GetDisplayName()))
	}
	if w := e.GetWorkflow(); w != nil {
		n += optMessageLen(optTextLen(w.GetPlatform()) + optTextLen(w.GetPlatformVersion()) + optTextLen(w.GetWorkflowId()) +
			optTextLen(w.GetWorkflowVersion()) + optTextLen(w.GetRunId()) + optTextLen(w.GetParentRunId()) + optTextLen(w.GetStepId()))
	}
	n += optAssetsLen(e.GetInputs()) + optAssetsLen(e.GetOutputs()) + optFieldLineageLen(e.GetFieldLineage()) +
		optTextLen(e.GetRationale()) + optTextMapLen(e.GetEnvironment()) + optTextMapLen(e.GetExtensions()) +
		optTextsLen(e.GetSubjectEventIds())
	if s := e.GetSignature(); s != nil {
		n += optMessageLen(optTextLen(s.GetKeyId()) + optBytesLen(s.GetSignature()))
	}
	return n + optSensitiveLen(e.GetSensitive())
}

func optSensitiveLen(ss []*provlogv1.SensitiveValue) int {
	if len(ss) == 0 {
		return 0
	}
	n := 1 + headLen(uint64(len(ss)))
	for _, s := range ss {
		n += 1 + optTextLen(s.GetName()) + optTextLen(s.GetClassification()) + optTextLen(s.GetValue()) +
			optTextLen(s.GetKeyId()) + optBytesLen(s.GetCommitment())
	}
	return n
}

func optBytesLen(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	return 1 + headLen(uint64(len(p))) + len(p)
}
