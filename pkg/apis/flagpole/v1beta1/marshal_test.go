package v1beta1

import (
	"encoding/json"
	"testing"

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

func TestJSONNullIsNoValue(t *testing.T) {
	var v Variant
	if err := json.Unmarshal([]byte(`{"name": "a", "value": null}`), &v); err != nil {
		t.Fatal(err)
	}
	if v.Value.Raw != nil {
		t.Errorf("null decoded to %q, want no value", v.Value.Raw)
	}
	out, _ := json.Marshal(v)
	if string(out) != `{"name":"a","value":null}` {
		t.Errorf("encoded as %s", out)
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
