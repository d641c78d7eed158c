package v1beta1

import (
	"encoding/json"
	"errors"
	"reflect"

	cbor "k8s.io/apimachinery/pkg/runtime/serializer/cbor/direct"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

var jsonNull = []byte("null")

// MarshalJSON writes the raw value, or null when there is none.
func (s JSON) MarshalJSON() ([]byte, error) {
	if len(s.Raw) == 0 {
		return jsonNull, nil
	}
	return s.Raw, nil
}

// IsZero reports a JSON that holds nothing, not even null: such a field is
// omitted when encoded (`omitzero`), so a typed client that sets no
// evaluation context sends none, rather than a null the server refuses.
func (s JSON) IsZero() bool { return len(s.Raw) == 0 }

// UnmarshalJSON keeps any JSON value as it was sent, null included, so that
// validation can tell an explicit null (a variant without a value, a context
// that is not an object) from a field left out. A number no float64 holds (1e400) is refused here, before anything else sees
// the value: structured-merge-diff converts it during managed-fields work,
// which runs before validation and panics on such a number. The error is a
// *json.UnmarshalTypeError so that the decoder adds the field path and the
// client gets a 400 naming the field.
func (s *JSON) UnmarshalJSON(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if err := checkNumbers(data); err != nil {
		return err
	}
	s.Raw = append(s.Raw[0:0], data...)
	return nil
}

// checkNumbers refuses a value holding a number outside float64's range.
func checkNumbers(raw []byte) error {
	_, err := flagpole.ScanJSONValue(raw)
	if errors.Is(err, flagpole.ErrNumberOutOfRange) {
		return &json.UnmarshalTypeError{Value: "number (" + err.Error() + ")", Type: reflect.TypeFor[float64]()}
	}
	return err
}

// ToUnstructured gives the value in the form apimachinery's unstructured
// converter and structured-merge-diff use (int64, float64, string, bool, maps
// and slices), so that they never round-trip it through encoding/json
// themselves. It cannot fail: a value that does not decode (only possible for
// bytes set directly, never for decoded ones) is kept as its text.
func (s JSON) ToUnstructured() interface{} {
	if len(s.Raw) == 0 {
		return nil
	}
	var v interface{}
	if err := utiljson.Unmarshal(s.Raw, &v); err != nil {
		return string(s.Raw)
	}
	return v
}

// MarshalCBOR transcodes the JSON value, for servers with CBOR serving enabled.
func (s JSON) MarshalCBOR() ([]byte, error) {
	if len(s.Raw) == 0 {
		return cbor.Marshal(nil)
	}
	var v any
	if err := json.Unmarshal(s.Raw, &v); err != nil {
		return nil, err
	}
	return cbor.Marshal(v)
}

// UnmarshalCBOR transcodes a CBOR value into JSON.
func (s *JSON) UnmarshalCBOR(data []byte) error {
	var v any
	if err := cbor.Unmarshal(data, &v); err != nil {
		return err
	}
	if v == nil {
		s.Raw = nil
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// A CBOR big integer becomes a JSON literal no float64 holds: refused as in UnmarshalJSON.
	if err := checkNumbers(raw); err != nil {
		return err
	}
	s.Raw = raw
	return nil
}

// OpenAPISchemaType leaves the schema untyped: a variant value may be any JSON
// value, and validation checks it against spec.type.
func (JSON) OpenAPISchemaType() []string { return nil }

// OpenAPISchemaFormat is empty for an untyped value.
func (JSON) OpenAPISchemaFormat() string { return "" }

// UnmarshalJSON accepts a string, and keeps a boolean apart so that
// validation can answer with a hint to quote it (see flagpole.BooleanVariantName).
func (n *VariantName) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true":
		*n = VariantName(flagpole.BooleanVariantName(true))
		return nil
	case "false":
		*n = VariantName(flagpole.BooleanVariantName(false))
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	*n = VariantName(s)
	return nil
}

// MarshalJSON writes a kept boolean back as the boolean it was.
func (n VariantName) MarshalJSON() ([]byte, error) {
	if b, ok := flagpole.VariantNameBoolean(string(n)); ok {
		return json.Marshal(b)
	}
	return json.Marshal(string(n))
}

// ToUnstructured gives structured-merge-diff and the unstructured converter
// the name as MarshalJSON writes it, without a round trip through
// encoding/json: the field manager converts every variant name of every
// write, and that round trip was a sixth of a create's allocations.
func (n VariantName) ToUnstructured() interface{} {
	if b, ok := flagpole.VariantNameBoolean(string(n)); ok {
		return b
	}
	return string(n)
}
