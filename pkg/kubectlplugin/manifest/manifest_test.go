package manifest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func flag(name string, typ v1beta1.FlagType, def v1beta1.VariantName, values ...string) v1beta1.Flag {
	f := v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.FlagSpec{Type: typ, DefaultVariant: def, Description: "about " + name}}
	for i, v := range values {
		f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: v1beta1.VariantName(string(rune('a' + i))), Value: v1beta1.JSON{Raw: []byte(v)}})
	}
	return f
}

func TestBuild(t *testing.T) {
	m, notes := Build([]v1beta1.Flag{
		flag("bool", v1beta1.FlagTypeBoolean, "b", "true", "false"),
		flag("str", v1beta1.FlagTypeString, "a", `"x"`),
		flag("whole", v1beta1.FlagTypeNumber, "b", "1", "20", "-3"),
		flag("fraction", v1beta1.FlagTypeNumber, "a", "1", "2.5"),
		flag("written-as-float", v1beta1.FlagTypeNumber, "a", "1.0"),
		flag("huge", v1beta1.FlagTypeNumber, "a", "1e300"),
		flag("obj", v1beta1.FlagTypeObject, "a", `{"k":[1,2]}`),
		flag("no-default", v1beta1.FlagTypeNumber, "", "7"),
	})
	want := map[string]struct{ typ, def string }{
		"bool": {TypeBoolean, "false"}, "str": {TypeString, `"x"`}, "whole": {TypeInteger, "20"}, "fraction": {TypeFloat, "1"},
		"written-as-float": {TypeFloat, "1.0"}, "huge": {TypeFloat, "1e300"}, "obj": {TypeObject, `{"k":[1,2]}`}, "no-default": {TypeInteger, "0"},
	}
	for key, w := range want {
		f := m.Flags[key]
		if f.FlagType != w.typ || string(f.DefaultValue) != w.def || f.Description != "about "+key {
			t.Errorf("%s: %+v (%s), want %s %s", key, f, f.DefaultValue, w.typ, w.def)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "no-default has no default variant") {
		t.Errorf("notes: %q", notes)
	}
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || back["$schema"] != SchemaURL {
		t.Errorf("written manifest: %v %v", err, back["$schema"])
	}
	if !strings.Contains(buf.String(), `"flagType": "boolean"`) || strings.Contains(buf.String(), `\u003c`) {
		t.Errorf("written manifest:\n%s", buf.String())
	}
}
