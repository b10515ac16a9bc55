package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// payloadSchema is one versioned JSON schema an ingestion path validates
// against. Its raw form also drives drift detection: a property that the
// schema does not declare, in an object that does not allow additional
// properties explicitly (additionalProperties true or a schema), is
// reported as unknown.
type payloadSchema struct {
	compiled *jsonschema.Schema
	raw      map[string]any // the whole document, to resolve local $refs
	root     map[string]any // the schema the payload is checked against
	// shapes memoizes objectShape and items by schema node (the schema
	// never changes after compileSchema).
	shapes sync.Map // uintptr -> *shape
}

type shape struct {
	props      map[string][]map[string]any
	additional map[string]any
	open       bool
	items      []map[string]any
}

// shapeOf returns the memoized shape of a schema node.
func (s *payloadSchema) shapeOf(sch map[string]any) *shape {
	key := reflect.ValueOf(sch).Pointer()
	if v, ok := s.shapes.Load(key); ok {
		return v.(*shape)
	}
	sh := &shape{}
	sh.props, sh.additional, sh.open = s.objectShape(sch, 0)
	sh.items = s.items(sch, 0)
	s.shapes.Store(key, sh)
	return sh
}

// compileSchema compiles the schema at fragment (a JSON pointer such as
// "#/$defs/RunEvent", or "" for the document itself) of doc, which is
// registered under url.
func compileSchema(c *jsonschema.Compiler, url string, doc []byte, fragment string) (*payloadSchema, error) {
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("couldn't parse schema %s: %w", url, err)
	}
	if err := c.AddResource(url, raw); err != nil && !strings.Contains(err.Error(), "already") {
		return nil, fmt.Errorf("couldn't add schema %s: %w", url, err)
	}
	sch, err := c.Compile(url + fragment)
	if err != nil {
		return nil, fmt.Errorf("couldn't compile schema %s%s: %w", url, fragment, err)
	}
	m, _ := raw.(map[string]any)
	root := resolvePointer(m, strings.TrimPrefix(fragment, "#"))
	if root == nil {
		return nil, fmt.Errorf("schema %s has nothing at %q", url, fragment)
	}
	return &payloadSchema{compiled: sch, raw: m, root: root}, nil
}

func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	return c
}

// resolvePointer follows a JSON pointer ("/$defs/RunEvent") in doc.
func resolvePointer(doc map[string]any, ptr string) map[string]any {
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		next, ok := cur[tok].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// SchemaError is a payload that its schema refuses. Field is the path of
// the offending value in the payload ("run.runId", "inputs[0].name"), ""
// for the payload as a whole.
type SchemaError struct {
	Field  string
	Reason string
}

func (e *SchemaError) Error() string {
	if e.Field == "" {
		return "payload: " + e.Reason
	}
	return "payload field " + e.Field + ": " + e.Reason
}

// validate checks v and returns a *SchemaError naming the deepest failing
// location.
func (s *payloadSchema) validate(v any) error {
	err := s.compiled.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &SchemaError{Reason: err.Error()}
	}
	leaf := deepest(ve)
	return &SchemaError{Field: instancePath(leaf.InstanceLocation), Reason: leafReason(leaf)}
}

// deepest picks the first leaf of the error tree with the longest instance
// location: the most precise thing to tell a sender.
func deepest(e *jsonschema.ValidationError) *jsonschema.ValidationError {
	best := e
	var walk func(*jsonschema.ValidationError)
	walk = func(x *jsonschema.ValidationError) {
		if len(x.Causes) == 0 {
			if len(x.InstanceLocation) > len(best.InstanceLocation) || len(best.Causes) > 0 {
				best = x
			}
			return
		}
		for _, c := range x.Causes {
			walk(c)
		}
	}
	walk(e)
	return best
}

func leafReason(e *jsonschema.ValidationError) string {
	msg := e.Error()
	// The library's message is "jsonschema validation failed with ... \n- at '/x': reason";
	// keep the reason of the leaf.
	if i := strings.LastIndex(msg, "': "); i >= 0 {
		msg = msg[i+3:]
	}
	return strings.TrimSpace(msg)
}

// instancePath turns a location (["inputs","0","name"]) into "inputs[0].name".
func instancePath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if isIndex(tok) {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// unknownFields lists the paths of v that s does not declare, with array
// indexes as "[]" and map keys of additionalProperties schemas as "*", so
// that the same drift in many payloads is one path. It follows properties,
// items, additionalProperties, allOf and local $refs; it is a structural
// walk, not a validation (validate does that).
func (s *payloadSchema) unknownFields(v any) []string {
	var out []string
	s.walk(s.root, v, "", &out, 0)
	slices.Sort(out)
	return slices.Compact(out)
}

func (s *payloadSchema) walk(sch map[string]any, v any, path string, out *[]string, depth int) {
	if sch == nil || depth > 32 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		sh := s.shapeOf(sch)
		props, additional, declared := sh.props, sh.additional, sh.open
		for k, val := range x {
			p := pathJoin(path, k)
			if ps, ok := props[k]; ok {
				for _, one := range ps {
					s.walk(one, val, p, out, depth+1)
				}
				continue
			}
			switch {
			case additional != nil:
				s.walk(additional, val, pathJoin(path, "*"), out, depth+1)
			case !declared:
				*out = append(*out, p)
			}
		}
	case []any:
		items := s.shapeOf(sch).items
		for _, val := range x {
			for _, it := range items {
				s.walk(it, val, path+"[]", out, depth+1)
			}
		}
	}
}

// objectShape gathers, through allOf and $ref, the property schemas of an
// object schema, its additionalProperties schema, and whether additional
// properties are declared allowed (additionalProperties: true).
func (s *payloadSchema) objectShape(sch map[string]any, depth int) (props map[string][]map[string]any, additional map[string]any, open bool) {
	props = map[string][]map[string]any{}
	var visit func(map[string]any, int)
	visit = func(sc map[string]any, d int) {
		if sc == nil || d > 16 {
			return
		}
		if ref, ok := sc["$ref"].(string); ok {
			visit(s.ref(ref), d+1)
		}
		if ps, ok := sc["properties"].(map[string]any); ok {
			for k, p := range ps {
				if pm, ok := p.(map[string]any); ok {
					props[k] = append(props[k], pm)
				} else if p == true {
					props[k] = append(props[k], nil)
				}
			}
		}
		switch a := sc["additionalProperties"].(type) {
		case bool:
			open = open || a
		case map[string]any:
			additional = a
		}
		if all, ok := sc["allOf"].([]any); ok {
			for _, x := range all {
				if xm, ok := x.(map[string]any); ok {
					visit(xm, d+1)
				}
			}
		}
	}
	visit(sch, depth)
	return props, additional, open
}

func (s *payloadSchema) items(sch map[string]any, depth int) []map[string]any {
	if sch == nil || depth > 16 {
		return nil
	}
	var out []map[string]any
	if ref, ok := sch["$ref"].(string); ok {
		out = append(out, s.items(s.ref(ref), depth+1)...)
	}
	if it, ok := sch["items"].(map[string]any); ok {
		out = append(out, it)
	}
	if all, ok := sch["allOf"].([]any); ok {
		for _, x := range all {
			if xm, ok := x.(map[string]any); ok {
				out = append(out, s.items(xm, depth+1)...)
			}
		}
	}
	return out
}

// ref resolves a local reference ("#/$defs/Run"); others resolve to nil.
func (s *payloadSchema) ref(ref string) map[string]any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	return resolvePointer(s.raw, ref[1:])
}
