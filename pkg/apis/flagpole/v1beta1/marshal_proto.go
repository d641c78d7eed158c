package v1beta1

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// JSON's protobuf encoding is `message JSON { optional bytes raw = 1; }`
// (generated.proto), the value's JSON text. go-to-protobuf generates no
// methods for it (+protobuf.options.marshal=false): these are written by
// hand, like metav1.FieldsV1's, so that a protobuf body is no way around the
// checks a JSON body gets. Unmarshal refuses what UnmarshalJSON and the JSON
// decoder before it refuse: text that is not JSON, a number no float64 holds,
// nesting beyond the JSON decoder's limit. Everything else (MaxJSONDepth,
// the value's type) is validation's, as for JSON.

// maxDecodeDepth is the nesting the JSON decoders of apimachinery accept
// (sigs.k8s.io/json, k8s.io/apimachinery/pkg/util/json); validation refuses
// anything beyond flagpole.MaxJSONDepth with a field error.
const maxDecodeDepth = 10000

// errJSONNotJSON is returned by Unmarshal for raw bytes that are no JSON text.
var errJSONNotJSON = errors.New("proto: JSON: raw is not a valid JSON value")

// rawTag is field 1, wire type 2 (length-delimited).
const rawTag = 1<<3 | 2

// Marshal encodes the value as a JSON message.
func (s *JSON) Marshal() ([]byte, error) {
	size := s.Size()
	data := make([]byte, size)
	n, err := s.MarshalToSizedBuffer(data[:size])
	if err != nil {
		return nil, err
	}
	return data[:n], nil
}

// MarshalTo encodes the value at the start of data, which holds at least Size() bytes.
func (s *JSON) MarshalTo(data []byte) (int, error) {
	size := s.Size()
	return s.MarshalToSizedBuffer(data[:size])
}

// MarshalToSizedBuffer encodes the value at the end of data, as the generated
// code of the messages holding a JSON expects.
func (s *JSON) MarshalToSizedBuffer(data []byte) (int, error) {
	i := len(data)
	if len(s.Raw) > 0 {
		i -= len(s.Raw)
		copy(data[i:], s.Raw)
		i = encodeVarintGenerated(data, i, uint64(len(s.Raw)))
		i--
		data[i] = rawTag
	}
	return len(data) - i, nil
}

// Size is the length of the encoded message.
func (s *JSON) Size() int {
	if s == nil || len(s.Raw) == 0 {
		return 0
	}
	l := len(s.Raw)
	return 1 + sovGenerated(uint64(l)) + l
}

// String is the JSON text.
func (s JSON) String() string { return string(s.Raw) }

// Unmarshal decodes a JSON message and checks its text as UnmarshalJSON and
// the JSON decoder do. Unknown fields are skipped, as generated code does.
func (s *JSON) Unmarshal(data []byte) error {
	var raw []byte
	seen := false
	for i := 0; i < len(data); {
		tag, n, err := uvarint(data[i:])
		if err != nil {
			return err
		}
		fieldNum, wireType := int32(tag>>3), int(tag&0x7)
		if wireType == 4 {
			return fmt.Errorf("proto: JSON: wiretype end group for non-group")
		}
		if fieldNum <= 0 {
			return fmt.Errorf("proto: JSON: illegal tag %d (wire type %d)", fieldNum, tag)
		}
		if fieldNum != 1 {
			skip, err := skipGenerated(data[i:])
			if err != nil {
				return err
			}
			if skip < 0 || i+skip > len(data) {
				return io.ErrUnexpectedEOF
			}
			i += skip
			continue
		}
		if wireType != 2 {
			return fmt.Errorf("proto: wrong wireType = %d for field Raw", wireType)
		}
		i += n
		length, n, err := uvarint(data[i:])
		if err != nil {
			return err
		}
		i += n
		if length > uint64(len(data)-i) {
			return io.ErrUnexpectedEOF
		}
		// The last occurrence wins, as in generated code.
		raw, seen = data[i:i+int(length)], true
		i += int(length)
	}
	if !seen || len(raw) == 0 {
		s.Raw = nil
		return nil
	}
	if err := checkJSONText(raw); err != nil {
		return err
	}
	// data belongs to the caller: keep a copy.
	s.Raw = append([]byte(nil), raw...)
	return nil
}

// checkJSONText refuses what the JSON decoders refuse before UnmarshalJSON
// sees a value, and what UnmarshalJSON itself refuses.
func checkJSONText(raw []byte) error {
	if !json.Valid(raw) {
		return errJSONNotJSON
	}
	info, err := flagpole.ScanJSONValue(raw)
	if err != nil {
		return fmt.Errorf("proto: JSON: %w", err)
	}
	if info.Depth > maxDecodeDepth {
		return fmt.Errorf("proto: JSON: the value nests %d levels deep, more than %d", info.Depth, maxDecodeDepth)
	}
	return nil
}

// uvarint reads a protobuf varint, returning it and its length.
func uvarint(data []byte) (uint64, int, error) {
	var v uint64
	for i, shift := 0, uint(0); ; i, shift = i+1, shift+7 {
		if shift >= 64 {
			return 0, 0, ErrIntOverflowGenerated
		}
		if i >= len(data) {
			return 0, 0, io.ErrUnexpectedEOF
		}
		b := data[i]
		v |= uint64(b&0x7F) << shift
		if b < 0x80 {
			return v, i + 1, nil
		}
	}
}
