package v1beta1

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

func TestVariantNameKeepsBooleansApart(t *testing.T) {
	var v Variant
	if err := json.Unmarshal([]byte(`{"name": true, "value": {"a": [1, 2]}}`), &v); err != nil {
		t.Fatal(err)
	}
	if b, ok := flagpole.VariantNameBoolean(string(v.Name)); !ok || !b {
		t.Fatalf("name %q was not kept as the boolean true", v.Name)
	}
	if got := string(v.Value.Raw); got != `{"a": [1, 2]}` {
		t.Errorf("value raw = %s", got)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"name":true,"value":{"a":[1,2]}}` {
		t.Errorf("re-encoded as %s: the boolean must be written back as it came", out)
	}

	var f FlagSpec
	if err := json.Unmarshal([]byte(`{"defaultVariant": "on", "rules": [{"name": "r", "variant": false}]}`), &f); err != nil {
		t.Fatal(err)
	}
	if f.DefaultVariant != "on" {
		t.Errorf("defaultVariant = %q", f.DefaultVariant)
	}
	if b, ok := flagpole.VariantNameBoolean(string(f.Rules[0].Variant)); !ok || b {
		t.Errorf("rule variant %q was not kept as the boolean false", f.Rules[0].Variant)
	}
	if err := json.Unmarshal([]byte(`{"defaultVariant": 3}`), &f); err == nil {
		t.Error("a number is neither a string nor a boolean and must fail to decode")
	}
}

// An explicit null is kept (validation refuses it where a value is needed:
// a variant's value, an evaluation context), and an absent context is not
// sent by typed clients at all.
func TestJSONNullIsKeptAbsentIsOmitted(t *testing.T) {
	var v Variant
	if err := json.Unmarshal([]byte(`{"name": "a", "value": null}`), &v); err != nil {
		t.Fatal(err)
	}
	if string(v.Value.Raw) != "null" {
		t.Errorf("null decoded to %q, want null kept", v.Value.Raw)
	}
	var absent Variant
	if err := json.Unmarshal([]byte(`{"name": "a"}`), &absent); err != nil || absent.Value.Raw != nil {
		t.Errorf("an absent value decoded to %q (%v), want nothing", absent.Value.Raw, err)
	}
	if out, _ := json.Marshal(absent); string(out) != `{"name":"a","value":null}` {
		t.Errorf("a variant without a value encoded as %s", out)
	}

	if out, _ := json.Marshal(EvaluationRequest{}); string(out) != `{}` {
		t.Errorf("a request without a context encoded as %s, want no context member", out)
	}
	if out, _ := json.Marshal(EvaluationSpec{}); string(out) != `{}` {
		t.Errorf("a bulk spec without a context encoded as %s, want no context member", out)
	}
	var req EvaluationRequest
	if err := json.Unmarshal([]byte(`{"context": null}`), &req); err != nil || string(req.Context.Raw) != "null" {
		t.Errorf(`{"context": null} decoded to %q (%v), want null kept for validation to refuse`, req.Context.Raw, err)
	}
}

func TestJSONCBORRoundTrip(t *testing.T) {
	in := JSON{Raw: []byte(`{"a":[1,"x",true]}`)}
	data, err := in.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	var out JSON
	if err := out.UnmarshalCBOR(data); err != nil {
		t.Fatal(err)
	}
	if string(out.Raw) != string(in.Raw) {
		t.Errorf("CBOR round trip: %s != %s", out.Raw, in.Raw)
	}
}

func TestJSONRefusesNumbersOutsideFloat64(t *testing.T) {
	for _, value := range []string{`1e400`, `-1e400`, `1e309`, `{"a":1e400}`, `[1e400]`, `[1, {"b": [2, -1e400]}]`} {
		var f FlagSpec
		err := json.Unmarshal([]byte(`{"variants":[{"name":"v","value":`+value+`}]}`), &f)
		var typeErr *json.UnmarshalTypeError
		if !errors.As(err, &typeErr) || typeErr.Field != "variants.value" {
			t.Errorf("%s: %v, want an UnmarshalTypeError at variants.value", value, err)
		}
	}
	var v JSON
	if err := json.Unmarshal([]byte(`[1e308, -1e-400, "1e400"]`), &v); err != nil {
		t.Errorf("numbers float64 holds: %v", err)
	}
}

func TestJSONToUnstructured(t *testing.T) {
	for raw, want := range map[string]any{
		`{"a":[1,1.5,"x",true,null]}`: map[string]any{"a": []any{int64(1), 1.5, "x", true, nil}},
		`7`:                           int64(7),
		`not json`:                    "not json",
	} {
		got := JSON{Raw: []byte(raw)}.ToUnstructured()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, want %#v", raw, got, want)
		}
	}
	if got := (JSON{}).ToUnstructured(); got != nil {
		t.Errorf("no value: %#v, want nil", got)
	}
	// The converter managed fields use takes this path and must not fail.
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&Variant{Name: "v", Value: JSON{Raw: []byte(`{"a":1}`)}})
	if err != nil || !reflect.DeepEqual(u["value"], map[string]any{"a": int64(1)}) {
		t.Errorf("unstructured variant: %v, %v", u, err)
	}
}

func TestJSONCBORRefusesNumbersOutsideFloat64(t *testing.T) {
	// A CBOR bignum (tag 2) of 2^1336 has 403 digits.
	big := append([]byte{0xc2, 0x58, 0xa8, 0x01}, make([]byte, 0xa7)...)
	var out JSON
	if err := out.UnmarshalCBOR(big); err == nil {
		t.Errorf("a CBOR bignum outside float64 decoded to %.40s", out.Raw)
	}
}

// The unstructured form of a variant name is what its JSON says, booleans
// kept apart included, so server-side apply sees the same value either way.
func TestVariantNameToUnstructuredMatchesJSON(t *testing.T) {
	for _, n := range []VariantName{"on", "", `q"uote`, VariantName(flagpole.BooleanVariantName(true)), VariantName(flagpole.BooleanVariantName(false))} {
		b, err := n.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var want interface{}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if got := n.ToUnstructured(); got != want {
			t.Errorf("%q: ToUnstructured %#v, JSON %s", n, got, b)
		}
	}
}
