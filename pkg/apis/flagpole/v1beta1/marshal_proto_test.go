package v1beta1

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// rawMessage is a JSON message holding raw in field 1, built by hand, as a
// client sending protobuf could.
func rawMessage(raw []byte) []byte {
	msg := []byte{rawTag}
	n := uint64(len(raw))
	for n >= 0x80 {
		msg = append(msg, byte(n)|0x80)
		n >>= 7
	}
	msg = append(msg, byte(n))
	return append(msg, raw...)
}

func TestJSONProtobufRoundTrip(t *testing.T) {
	for _, raw := range []string{`true`, `null`, `"s"`, `{"a":[1,2.5,{"b":null}]}`, strings.Repeat("[", 40) + strings.Repeat("]", 40), `"` + strings.Repeat("x", 300) + `"`} {
		in := JSON{Raw: []byte(raw)}
		data, err := in.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, rawMessage(in.Raw)) || len(data) != in.Size() {
			t.Errorf("%s: encoded as %x (size %d), want %x", raw, data, in.Size(), rawMessage(in.Raw))
		}
		var out JSON
		if err := out.Unmarshal(data); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if string(out.Raw) != raw {
			t.Errorf("round trip of %s gave %s", raw, out.Raw)
		}
		data[len(data)-1] = 'X'
		if string(out.Raw) != raw {
			t.Errorf("the decoded value shares the input buffer")
		}
	}

	// Nothing set encodes to nothing and decodes to nothing, as a field
	// left out of a JSON body.
	var empty JSON
	if data, _ := empty.Marshal(); len(data) != 0 || empty.Size() != 0 {
		t.Errorf("an empty JSON encodes as %x", data)
	}
	out := JSON{Raw: []byte("stale")}
	if err := out.Unmarshal(nil); err != nil || out.Raw != nil {
		t.Errorf("empty message: %v, raw %q", err, out.Raw)
	}

	// A message holding the value inside a larger buffer (the generated code
	// of FlagSpec etc.) ends where its Size says.
	v := Variant{Name: "on", Value: JSON{Raw: []byte(`{"a":1}`)}}
	data, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var back Variant
	if err := back.Unmarshal(data); err != nil || back.Name != v.Name || string(back.Value.Raw) != `{"a":1}` {
		t.Errorf("a variant round trip gave %+v, %v", back, err)
	}
}

// A protobuf body must not carry what a JSON body cannot: decoding refuses it.
func TestJSONProtobufRefusesWhatJSONRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		raw  string
		want error
	}{
		"not JSON":          {`{"a":`, errJSONNotJSON},
		"two values":        {`1 2`, errJSONNotJSON},
		"bare word":         {`yes`, errJSONNotJSON},
		"invalid UTF-8":     {"\"\xff\"", nil},
		"number too large":  {`{"a":[1e400]}`, flagpole.ErrNumberOutOfRange},
		"negative overflow": {`-1e309`, flagpole.ErrNumberOutOfRange},
		"nested too deep":   {strings.Repeat("[", maxDecodeDepth+1) + strings.Repeat("]", maxDecodeDepth+1), nil},
	} {
		var j JSON
		err := j.Unmarshal(rawMessage([]byte(tc.raw)))
		if name == "invalid UTF-8" {
			// encoding/json accepts it (and writes it back as U+FFFD), as the JSON decoder does.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: %q decoded", name, tc.raw)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		if j.Raw != nil {
			t.Errorf("%s: a refused value was kept: %q", name, j.Raw)
		}
	}

	// Deep but within the decoders' limit: decoding leaves MaxJSONDepth to
	// validation, which names the field, as for JSON.
	deep := strings.Repeat("[", flagpole.MaxJSONDepth+1) + strings.Repeat("]", flagpole.MaxJSONDepth+1)
	var j JSON
	if err := j.Unmarshal(rawMessage([]byte(deep))); err != nil {
		t.Errorf("%d levels: %v", flagpole.MaxJSONDepth+1, err)
	}
}

func TestJSONProtobufMalformedMessages(t *testing.T) {
	for name, data := range map[string][]byte{
		"truncated length": {rawTag},
		"length too long":  {rawTag, 5, '1'},
		"wrong wire type":  {1 << 3, 1},
		"field zero":       {0, 1},
		"end group":        {1<<3 | 4},
		"varint overflow":  bytes.Repeat([]byte{0xff}, 11),
	} {
		var j JSON
		if err := j.Unmarshal(data); err == nil {
			t.Errorf("%s: %x decoded as %q", name, data, j.Raw)
		}
	}
	// Unknown fields are skipped, as generated code skips them.
	var j JSON
	data := append([]byte{2<<3 | 0, 7}, rawMessage([]byte(`1`))...)
	if err := j.Unmarshal(data); err != nil || string(j.Raw) != "1" {
		t.Errorf("with an unknown field: %q, %v", j.Raw, err)
	}
}
