package evaluation

import (
	"testing"
	"time"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// FuzzEvaluate: no context, however odd, panics the engine; every answer
// is a well-formed OpenFeature result.
func FuzzEvaluate(f *testing.F) {
	for _, seed := range []string{`{}`, `{"targetingKey":"u","plan":"enterprise","email":"a@example.com"}`, `{"country":"NZ"}`,
		`{"xs":[1,2,3],"age":1e3}`, `[]`, `{"targetingKey":null}`, `{"a":{"b":[{"c":true}]}}`, `not json`,
		`null`, `{"age":1e400}`, `{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, `{"account":{"tier":"gold"}}`} {
		f.Add([]byte(seed))
	}
	flag := testFlag()
	flag.Spec.Rules = append(flag.Spec.Rules,
		v1beta1.Rule{Name: "age", When: `has(context.age) && context.age > 21`, Variant: "on"},
		v1beta1.Rule{Name: "tags", When: `has(context.xs) && context.xs.exists(x, x == 2)`, Variant: "off"},
		// No has() guards: a missing key means no match.
		v1beta1.Rule{Name: "tier", When: `context.account.tier == "gold"`, Variant: "on"},
		v1beta1.Rule{Name: "by-org", Rollout: &v1beta1.Rollout{BucketBy: `string(context.org)`, Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 1}}}},
	)
	compiled := CompileFlag(flag, lookup(employees()))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := ParseContext(raw)
		if err != nil {
			if r := InvalidContext("f", err); r.ErrorCode != ErrorInvalidContext {
				t.Fatalf("%+v", r)
			}
			return
		}
		res := compiled.Evaluate(t.Context(), flag, nil, Request{Context: c, Now: time.Unix(0, 0)})
		switch res.Reason {
		case ReasonError:
			if res.ErrorCode == "" || res.Value != nil {
				t.Fatalf("error result %+v", res)
			}
		case ReasonTargetingMatch, ReasonSplit, ReasonDefault:
			if res.Variant == "" || res.Value == nil {
				t.Fatalf("resolved result without a value: %+v", res)
			}
		default:
			t.Fatalf("unexpected reason %q", res.Reason)
		}
	})
}
