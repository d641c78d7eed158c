package flagd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits on what is read. flagd has none of its own but Go's JSON nesting
// limit of 10,000; these keep a hostile file from costing more than its
// translation is worth, and every translated expression must fit the API's
// limits anyway.
const (
	// MaxDocumentBytes bounds one flagd document.
	MaxDocumentBytes = 8 << 20
	// MaxDepth bounds the nesting of a document, and so of a targeting rule.
	MaxDepth = 64
)

// valueType is a JSON value's type.
type valueType int

const (
	typeNull valueType = iota
	typeBool
	typeNumber
	typeString
	typeArray
	typeObject
)

// value is a JSON value that keeps object members in document order (flag
// and variant order is the order of the objects written), with the path it
// was read at.
type value struct {
	typ  valueType
	b    bool
	n    float64
	s    string
	arr  []*value
	obj  []member
	path *field.Path
	// ref names the evaluator a {"$ref": name} was replaced by, refAt is
	// where that reference was.
	ref   string
	refAt *field.Path
}

type member struct {
	key string
	val *value
}

// get is the member key of an object, or nil.
func (v *value) get(key string) *value {
	if v == nil || v.typ != typeObject {
		return nil
	}
	for _, m := range v.obj {
		if m.key == key {
			return m.val
		}
	}
	return nil
}

func (v *value) typeName() string {
	switch v.typ {
	case typeNull:
		return "null"
	case typeBool:
		return "a boolean"
	case typeNumber:
		return "a number"
	case typeString:
		return "a string"
	case typeArray:
		return "an array"
	}
	return "an object"
}

// decodeJSON reads one JSON document. Numbers are float64, as flagd reads
// them (one out of its range fails flagd's decoding, and here); a key given
// twice keeps its last value, as Go's decoder does.
func decodeJSON(data []byte, root *field.Path) (*value, error) {
	if len(data) > MaxDocumentBytes {
		return nil, fmt.Errorf("the document is %d bytes, more than the %d this import reads", len(data), MaxDocumentBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, root, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON document")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, path *field.Path, depth int) (*value, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	return decodeToken(dec, tok, path, depth)
}

func decodeToken(dec *json.Decoder, tok json.Token, path *field.Path, depth int) (*value, error) {
	switch t := tok.(type) {
	case nil:
		return &value{typ: typeNull, path: path}, nil
	case bool:
		return &value{typ: typeBool, b: t, path: path}, nil
	case string:
		return &value{typ: typeString, s: t, path: path}, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: the number %s does not fit a 64-bit float, so flagd cannot read the file", path, t)
		}
		return &value{typ: typeNumber, n: f, path: path}, nil
	case json.Delim:
		if depth >= MaxDepth {
			return nil, fmt.Errorf("%s: nested more than %d levels deep", path, MaxDepth)
		}
		switch t {
		case '[':
			v := &value{typ: typeArray, arr: []*value{}, path: path}
			for i := 0; dec.More(); i++ {
				el, err := decodeValue(dec, indexPath(path, i), depth+1)
				if err != nil {
					return nil, err
				}
				v.arr = append(v.arr, el)
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonError(err)
			}
			return v, nil
		case '{':
			v := &value{typ: typeObject, obj: []member{}, path: path}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, jsonError(err)
				}
				key, _ := kt.(string)
				el, err := decodeValue(dec, childPath(path, key), depth+1)
				if err != nil {
					return nil, err
				}
				replaced := false
				for i := range v.obj {
					if v.obj[i].key == key {
						v.obj[i].val, replaced = el, true
					}
				}
				if !replaced {
					v.obj = append(v.obj, member{key: key, val: el})
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, jsonError(err)
			}
			return v, nil
		}
	}
	return nil, fmt.Errorf("%s: unexpected %v", path, tok)
}

func jsonError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("unexpected end of the JSON document")
	}
	return fmt.Errorf("not valid JSON: %v", err)
}

// native is v as encoding/json would decode it into any.
func (v *value) native() any {
	switch v.typ {
	case typeBool:
		return v.b
	case typeNumber:
		return v.n
	case typeString:
		return v.s
	case typeArray:
		out := make([]any, len(v.arr))
		for i, el := range v.arr {
			out[i] = el.native()
		}
		return out
	case typeObject:
		out := make(map[string]any, len(v.obj))
		for _, m := range v.obj {
			out[m.key] = m.val.native()
		}
		return out
	}
	return nil
}

// marshal is v's compact JSON text with members in document order.
func (v *value) marshal() string {
	var b strings.Builder
	v.write(&b)
	return b.String()
}

func (v *value) write(b *strings.Builder) {
	switch v.typ {
	case typeNull:
		b.WriteString("null")
	case typeBool:
		b.WriteString(strconv.FormatBool(v.b))
	case typeNumber, typeString:
		b.Write(marshalScalar(v.native()))
	case typeArray:
		b.WriteByte('[')
		for i, el := range v.arr {
			if i > 0 {
				b.WriteByte(',')
			}
			el.write(b)
		}
		b.WriteByte(']')
	case typeObject:
		b.WriteByte('{')
		for i, m := range v.obj {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(marshalScalar(m.key))
			b.WriteByte(':')
			m.val.write(b)
		}
		b.WriteByte('}')
	}
}

// marshalScalar is a string or number's JSON text, without escaping <, >
// and & for HTML (so that annotations read as written).
func marshalScalar(x any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(x)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// isIntegral reports whether f is a whole number an int64 holds.
func isIntegral(f float64) bool {
	return f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64
}

// childPath and indexPath extend a path that may be nil (the document).
func childPath(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath(key)
	}
	return p.Child(key)
}

func indexPath(p *field.Path, i int) *field.Path {
	if p == nil {
		return field.NewPath(fmt.Sprintf("[%d]", i))
	}
	return p.Index(i)
}
