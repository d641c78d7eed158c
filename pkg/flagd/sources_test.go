package flagd

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

const featureFlags = `apiVersion: core.openfeature.dev/v1beta1
kind: FeatureFlag
metadata:
  name: sample-flags
  namespace: shop
spec:
  flagSpec:
    flags:
      new-welcome-banner:
        state: ENABLED
        variants:
          "true": true
          "false": false
        defaultVariant: "false"
        targeting:
          in: ["@example.com", {var: email}]
      header-color:
        state: ENABLED
        variants: {red: "#f00", blue: "#00f"}
        defaultVariant: red
        targeting:
          if: [{$ref: is_staff}, blue, null]
    $evaluators:
      is_staff:
        ends_with: [{var: email}, "@example.com"]
---
apiVersion: v1
kind: List
items:
- apiVersion: core.openfeature.dev/v1beta2
  kind: FeatureFlag
  metadata: {name: more, namespace: shop}
  spec:
    flagSpec:
      flags:
        header-color:
          state: ENABLED
          variants: {red: "#f00", blue: "#00f"}
          defaultVariant: blue
`

// FeatureFlag objects from YAML (one document, and a List), merged in
// order: the later one's header-color replaces the earlier one's.
func TestFeatureFlags(t *testing.T) {
	sources, err := ReadFeatureFlags(strings.NewReader(featureFlags), "flags.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 2 || sources[0].Name != "FeatureFlag shop/sample-flags" {
		t.Fatalf("sources: %+v", sources)
	}
	res := mustImport(t, Options{Namespace: "shop"}, sources...)
	// A FeatureFlag's flags are a map: they come in key order.
	if len(res.Flags) != 2 || res.Flags[0].Name != "header-color" || res.Flags[0].Spec.DefaultVariant != "blue" || len(res.Flags[0].Spec.Rules) != 0 {
		t.Errorf("flags: %+v", res.Flags)
	}
	found := false
	for _, n := range res.Notes {
		found = found || (n.Source == "FeatureFlag shop/more" && strings.Contains(n.Detail, "replaces flag"))
	}
	if !found {
		t.Errorf("no note of the replaced flag: %+v", res.Notes)
	}
	got, _ := evaluate(t, res, "new-welcome-banner", map[string]any{"email": "a@example.com"}, "")
	if got.Variant != "true" {
		t.Errorf("new-welcome-banner: %+v", got)
	}

	// Objects of another kind are refused; a FeatureFlag's problems are
	// at their path within the object.
	_, err = FeatureFlagSources([]*unstructured.Unstructured{{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}}}})
	if err == nil || !strings.Contains(err.Error(), "not a FeatureFlag.core.openfeature.dev") {
		t.Errorf("a ConfigMap: %v", err)
	}
	bad := `{"apiVersion": "core.openfeature.dev/v1beta1", "kind": "FeatureFlag", "metadata": {"name": "b"}, "spec": {"flagSpec": {"flags": {"f": {"state": "ON", "variants": {"a": 1}}}}}}`
	sources, err = ReadFeatureFlags(strings.NewReader(bad), "b.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Import(sources, Options{}); err == nil || !strings.Contains(err.Error(), "FeatureFlag b: spec.flagSpec.flags.f.state: must be ENABLED or DISABLED") {
		t.Errorf("a FeatureFlag's problem: %v", err)
	}
}

// The result renders as kubectl prints objects, and kubectl's decoder
// reads it back as the same objects.
func TestRender(t *testing.T) {
	res := mustImport(t, Options{Namespace: "ns"}, Source{Name: "o", Data: readFile(t, "operators.flagd.json")})
	for _, format := range []string{"yaml", "json"} {
		var buf bytes.Buffer
		if err := Render(&buf, res.Objects(), format); err != nil {
			t.Fatal(err)
		}
		var list struct {
			metav1.TypeMeta
			Items []json.RawMessage `json:"items"`
		}
		if err := utilyaml.NewYAMLOrJSONDecoder(&buf, 4096).Decode(&list); err != nil {
			t.Fatal(err)
		}
		if list.Kind != "List" || len(list.Items) != len(res.Flags)+len(res.Segments) {
			t.Fatalf("%s: %s with %d items", format, list.Kind, len(list.Items))
		}
		var seg v1beta1.Segment
		var flag v1beta1.Flag
		if err := json.Unmarshal(list.Items[0], &seg); err != nil || seg.Kind != "Segment" || seg.Spec.When != res.Segments[0].Spec.When {
			t.Errorf("%s: first item %s (%v)", format, list.Items[0], err)
		}
		if err := json.Unmarshal(list.Items[len(res.Segments)], &flag); err != nil || flag.Kind != "Flag" || flag.Name != res.Flags[0].Name || flag.Namespace != "ns" {
			t.Errorf("%s: first flag %s (%v)", format, list.Items[len(res.Segments)], err)
		}
	}
	var one bytes.Buffer
	if err := Render(&one, res.Objects()[:1], "yaml"); err != nil || !strings.HasPrefix(one.String(), "apiVersion: flagpole.dev/v1beta1\nkind: Segment") {
		t.Errorf("one object: %q %v", one.String(), err)
	}
	if err := Render(&one, nil, "xml"); err == nil {
		t.Error("xml accepted")
	}
}

// Evaluators tested as conditions become one Segment for every flag of
// the document; the notes say what was assumed.
func TestSegmentsAndNotes(t *testing.T) {
	res := mustImport(t, Options{}, Source{Name: "o", Data: readFile(t, "operators.flagd.json")})
	var names []string
	for _, s := range res.Segments {
		names = append(names, s.Name+"="+s.Annotations[AnnotationEvaluator])
	}
	if strings.Join(names, ",") != "is-beta=is_beta,is-staff=is-staff" {
		t.Errorf("segments: %v", names)
	}
	for _, f := range res.Flags {
		if f.Name == "beta-staff" && (len(f.Spec.Rules) == 0 || strings.Join(f.Spec.Rules[0].Segments, ",") != "is-beta,is-staff" || f.Spec.Rules[0].When != "") {
			t.Errorf("beta-staff's first rule: %+v", f.Spec.Rules)
		}
	}
	var fractional, disabled bool
	for _, n := range res.Notes {
		fractional = fractional || strings.Contains(n.Detail, "assumed flagd's fractional-v2 bucketing")
		disabled = disabled || (n.Path == "flags.old-banner.state" && strings.Contains(n.Detail, "DISABLED"))
	}
	if !fractional || !disabled || res.Fractional != FractionalV2 {
		t.Errorf("notes: %+v", res.Notes)
	}
	if _, err := Import(nil, Options{Fractional: "v3"}); err == nil {
		t.Error("fractional v3 accepted")
	}
}
