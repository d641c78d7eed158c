package openfeaturejs

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

func value(v any) v1beta1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return v1beta1.JSON{Raw: b}
}

// Flags are the flags the OpenFeature tests (Go and JavaScript) expect in
// their namespace: one of each type, a targeting rule, a rollout and a
// disabled flag.
func Flags() []*v1beta1.Flag {
	mk := func(name string, t v1beta1.FlagType, def string, variants []v1beta1.Variant, rules ...v1beta1.Rule) *v1beta1.Flag {
		return &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1beta1.FlagSpec{Type: t, Variants: variants, DefaultVariant: v1beta1.VariantName(def), Rules: rules}}
	}
	disabled := mk("disabled-flag", v1beta1.FlagTypeString, "off", []v1beta1.Variant{{Name: "off", Value: value("off-value")}, {Name: "on", Value: value("on-value")}})
	disabled.Spec.State = v1beta1.FlagStateDisabled
	return []*v1beta1.Flag{
		mk("bool-flag", v1beta1.FlagTypeBoolean, "off", []v1beta1.Variant{{Name: "on", Value: value(true)}, {Name: "off", Value: value(false)}},
			v1beta1.Rule{Name: "vip", When: `context.plan == "vip"`, Variant: "on"}),
		mk("string-flag", v1beta1.FlagTypeString, "greeting", []v1beta1.Variant{{Name: "greeting", Value: value("hello")}, {Name: "farewell", Value: value("bye")}}),
		mk("number-flag", v1beta1.FlagTypeNumber, "big", []v1beta1.Variant{{Name: "big", Value: value(42.5)}, {Name: "small", Value: value(1)}}),
		mk("object-flag", v1beta1.FlagTypeObject, "v", []v1beta1.Variant{{Name: "v", Value: value(map[string]any{"color": "red", "sizes": []int{1, 2}})}}),
		mk("rollout-flag", v1beta1.FlagTypeBoolean, "", []v1beta1.Variant{{Name: "on", Value: value(true)}, {Name: "off", Value: value(false)}},
			v1beta1.Rule{Name: "half", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 50}, {Variant: "off", Weight: 50}}}}),
		disabled,
	}
}

// ExpectedSplits evaluates the stored rollout flag with the Go engine for
// user-0 … user-(n-1) and returns {"<targetingKey>": "<variant>"} as JSON.
func ExpectedSplits(rollout *v1beta1.Flag, n int) (string, error) {
	compiled := evaluation.CompileFlag(rollout, func(string) *v1beta1.Segment { return nil })
	out := map[string]string{}
	for i := range n {
		key := fmt.Sprintf("user-%d", i)
		c, err := evaluation.ParseContext([]byte(`{"targetingKey":"` + key + `"}`))
		if err != nil {
			return "", err
		}
		out[key] = compiled.Evaluate(context.Background(), rollout, nil, evaluation.Request{Context: c}).Variant
	}
	b, err := json.Marshal(out)
	return string(b), err
}
