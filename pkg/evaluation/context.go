package evaluation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
