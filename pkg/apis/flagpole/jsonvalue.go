package flagpole

import (
	"errors"
	"fmt"
	"strconv"
)

// MaxJSONDepth bounds how deeply a JSON value Flagpole stores or evaluates
// (variant values, evaluation contexts) may nest objects and arrays. OpenFeature
// structures are shallow; upstream's own limit (10,000) lets a 20 KB value
// expand into hundreds of megabytes of indented output and deep recursion in
// every reader.
const MaxJSONDepth = 32

// ErrNumberOutOfRange marks a JSON number that no float64 holds (1e400).
// encoding/json and structured-merge-diff cannot represent such numbers, so
// they are refused when decoded, before anything else handles the value.
var ErrNumberOutOfRange = errors.New("number is outside the range of a 64-bit float")

// JSONValueInfo is what ScanJSONValue learned about a value.
// +k8s:deepcopy-gen=false
type JSONValueInfo struct {
	// Depth is the deepest nesting of objects and arrays: 0 for a scalar.
	Depth int
}

// ScanJSONValue walks raw, which must be valid JSON (callers validate first,
// or receive it from a JSON decoder that has), without allocating. It returns
// the value's nesting depth, or an error wrapping ErrNumberOutOfRange for the
// first number outside float64's range.
func ScanJSONValue(raw []byte) (JSONValueInfo, error) {
	var info JSONValueInfo
	depth := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			// Skip the string, escapes included.
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case c == '{' || c == '[':
			depth++
			if depth > info.Depth {
				info.Depth = depth
			}
		case c == '}' || c == ']':
			depth--
		case c == '-' || (c >= '0' && c <= '9'):
			start := i
			for i+1 < len(raw) && isNumberByte(raw[i+1]) {
				i++
			}
			lit := raw[start : i+1]
			if !mayOverflow(lit) {
				continue
			}
			if _, err := strconv.ParseFloat(string(lit), 64); err != nil {
				return info, fmt.Errorf("%s: %w", lit, ErrNumberOutOfRange)
			}
		}
	}
	return info, nil
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// mayOverflow is a cheap pre-check: only a literal with an exponent or more
// than 300 digits can leave float64's range (its largest value is ~1.8e308).
// Underflow (1e-400, -1e-400) is not an error: it reads as (negative) zero,
// as it does in encoding/json.
func mayOverflow(lit []byte) bool {
	if len(lit) > 300 {
		return true
	}
	for _, c := range lit {
		if c == 'e' || c == 'E' {
			return true
		}
	}
	return false
}
