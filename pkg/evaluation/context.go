package evaluation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Context is a parsed OpenFeature evaluation context.
type Context struct {
	// Attributes is the context object; numbers are int64 when integral,
	// float64 otherwise, so that CEL compares them as a user expects.
	Attributes map[string]any
	// TargetingKey is the context's targetingKey member, if it has one.
	TargetingKey    string
	HasTargetingKey bool

	// pending are the values SetValues checked and attributes converts
	// on first use; owned is the map that conversion made, which a later
	// one reuses (never the caller's values).
	pending, owned map[string]any
}

// ErrInvalidContext marks a context the engine cannot use.
var ErrInvalidContext = errors.New("invalid evaluation context")

// ParseContext parses a JSON object into a Context, enforcing the caps the
// cost estimator relies on: at most MaxContextBytes, nested at most
// flagpole.MaxJSONDepth deep, numbers within float64's range, and a
// targetingKey, if any, that is a string of at most flagpole.MaxTargetingKeyLength.
// No input (an absent context) is an empty context; anything sent, null
// included, must be an object.
func ParseContext(raw []byte) (*Context, error) {
	raw = bytes.TrimSpace(raw)
	c := &Context{Attributes: map[string]any{}}
	if len(raw) == 0 {
		return c, nil
	}
	if len(raw) > MaxContextBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidContext, len(raw), MaxContextBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidContext, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidContext)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: must be a JSON object, not %s", ErrInvalidContext, jsonKind(v))
	}
	// Valid JSON now: the shared scanner measures depth and numbers.
	info, err := flagpole.ScanJSONValue(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidContext, err)
	}
	if info.Depth > flagpole.MaxJSONDepth {
		return nil, fmt.Errorf("%w: nested %d deep, at most %d", ErrInvalidContext, info.Depth, flagpole.MaxJSONDepth)
	}
	c.Attributes = normalize(obj).(map[string]any)
	if tk, present := c.Attributes["targetingKey"]; present {
		s, ok := tk.(string)
		if !ok {
			return nil, fmt.Errorf("%w: targetingKey must be a string", ErrInvalidContext)
		}
		if len(s) > flagpole.MaxTargetingKeyLength {
			return nil, fmt.Errorf("%w: targetingKey is %d bytes, at most %d", ErrInvalidContext, len(s), flagpole.MaxTargetingKeyLength)
		}
		c.TargetingKey, c.HasTargetingKey = s, s != ""
	}
	return c, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// normalize turns numbers into int64 or float64. ScanJSONValue has refused
// numbers no float64 holds.
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	}
	return v
}

// Contexts converted by ContextFromValues are at most this large (a lower
// bound of their JSON encoding, which escaping can make up to six times
// longer) and this deep; larger or deeper ones take ParseContext's path,
// whose caps then apply exactly.
const (
	maxDirectContextBytes = MaxContextBytes / 6
	maxDirectContextDepth = 8
)

// ContextFromValues converts an in-process context (an OpenFeature SDK's
// flattened context) into what ParseContext makes of the JSON that
// encoding/json encodes it to, without encoding it: the Go provider's
// answers are OFREP's for the same context. ok is false for what it does
// not convert the same way (structs, times, typed maps and slices,
// float32, floats beyond 2^53 that are whole numbers, strings that are not
// UTF-8) and for large or deep contexts; the caller then encodes and
// parses. values is not modified, and is used as it is when nothing in it
// needs converting.
func ContextFromValues(values map[string]any) (c *Context, ok bool, err error) {
	c = &Context{}
	if ok, err = c.SetValues(values); !ok || err != nil {
		return nil, ok, err
	}
	c.attributes()
	return c, true, nil
}

// SetValues makes c what ContextFromValues(values) returns, reusing the
// attributes map an earlier SetValues of c made (so a caller that keeps
// Contexts, as the Go provider does in a pool, converts a context without
// allocating). c is left unusable when ok is false or err is set.
//
// SetValues only checks values (it converts nothing): values that need
// converting (an int, which JSON would make int64) are converted when an
// evaluation first reads the attributes, and a flag that reads none — no
// rules, or an override deciding — never pays for it. Such a Context must
// not be evaluated by two goroutines at once.
func (c *Context) SetValues(values map[string]any) (ok bool, err error) {
	size := 0
	_, convert, ok := directObject(values, nil, 1, &size, false)
	if !ok || size > maxDirectContextBytes {
		return false, nil
	}
	c.Attributes, c.pending, c.TargetingKey, c.HasTargetingKey = values, nil, "", false
	if convert {
		c.Attributes, c.pending = nil, values
	}
	if tk, present := values["targetingKey"]; present {
		s, isString := tk.(string)
		if !isString {
			return true, fmt.Errorf("%w: targetingKey must be a string", ErrInvalidContext)
		}
		if len(s) > flagpole.MaxTargetingKeyLength {
			return true, fmt.Errorf("%w: targetingKey is %d bytes, at most %d", ErrInvalidContext, len(s), flagpole.MaxTargetingKeyLength)
		}
		c.TargetingKey, c.HasTargetingKey = s, s != ""
	}
	return true, nil
}

// attributes are the context's attributes, converted from what SetValues
// was given on first use.
func (c *Context) attributes() map[string]any {
	if c.pending != nil {
		if c.owned != nil {
			clear(c.owned)
		}
		size := 0
		// SetValues checked these values: the conversion succeeds.
		c.Attributes, _, _ = directObject(c.pending, c.owned, 1, &size, true)
		c.owned, c.pending = c.Attributes, nil
	}
	return c.Attributes
}

// Release drops c's attributes (the caller's values, or its own copy,
// cleared) so that a pooled Context keeps no one's data.
func (c *Context) Release() {
	if c.owned != nil {
		clear(c.owned)
	}
	c.Attributes, c.pending, c.TargetingKey, c.HasTargetingKey = nil, nil, "", false
}

// directObject checks (build false) or converts (build true) an object's
// members. Converting, it returns m itself (changed false) when none
// changes, and otherwise a copy in reuse (an empty map, or nil for a new
// one); checking, it only tells whether anything would change.
func directObject(m, reuse map[string]any, depth int, size *int, build bool) (_ map[string]any, changed, ok bool) {
	if depth > maxDirectContextDepth {
		return nil, false, false
	}
	var out map[string]any
	for k, v := range m {
		if !utf8.ValidString(k) {
			return nil, false, false
		}
		*size += len(k) + 4
		nv, ch, ok := directValue(v, depth, size, build)
		if !ok || *size > maxDirectContextBytes {
			return nil, false, false
		}
		changed = changed || ch
		if !build {
			continue
		}
		if ch && out == nil {
			out = reuse
			if out == nil {
				out = make(map[string]any, len(m))
			}
			for k2, v2 := range m {
				out[k2] = v2
			}
		}
		if out != nil {
			out[k] = nv
		}
	}
	if out == nil {
		return m, changed, true
	}
	return out, true, true
}

// directValue converts (or, build false, checks) one value as its JSON
// encoding would be parsed: whole numbers are int64, others float64.
func directValue(v any, depth int, size *int, build bool) (out any, changed, ok bool) {
	*size += 8
	switch t := v.(type) {
	case nil, bool:
		return v, false, true
	case string:
		*size += len(t)
		return v, false, utf8.ValidString(t)
	case int64:
		return v, false, true
	case int:
		return int64(t), true, true
	case int32:
		return int64(t), true, true
	case int16:
		return int64(t), true, true
	case int8:
		return int64(t), true, true
	case uint8:
		return int64(t), true, true
	case uint16:
		return int64(t), true, true
	case uint32:
		return int64(t), true, true
	case uint:
		return directUint(uint64(t))
	case uint64:
		return directUint(t)
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, false, false // encoding/json refuses them: let it say so
		}
		if t == math.Trunc(t) {
			if math.Abs(t) > 1<<53 {
				return nil, false, false
			}
			return int64(t), true, true
		}
		return v, false, true
	case map[string]any:
		return directObject(t, nil, depth+1, size, build)
	case []any:
		var out []any
		changed := false
		for i, e := range t {
			ne, ch, ok := directValue(e, depth+1, size, build)
			if !ok {
				return nil, false, false
			}
			changed = changed || ch
			if !build {
				continue
			}
			if ch && out == nil {
				out = slices.Clone(t)
			}
			if out != nil {
				out[i] = ne
			}
		}
		if out == nil {
			return v, changed, true
		}
		return out, true, true
	}
	return nil, false, false
}

func directUint(u uint64) (any, bool, bool) {
	if u <= math.MaxInt64 {
		return int64(u), true, true
	}
	return float64(u), true, true
}
