package evaluation

import (
	"fmt"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func benchEvaluate(b *testing.B, flag *v1beta1.Flag, segments SegmentLookup, raw string) {
	benchEvaluateRequest(b, flag, segments, raw, Request{Now: now})
}

func benchEvaluateRequest(b *testing.B, flag *v1beta1.Flag, segments SegmentLookup, raw string, req Request) {
	c, err := ParseContext([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	cache := NewCache()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Context = c
		res := cache.Get(flag, segments).Evaluate(b.Context(), flag, nil, req)
		if res.Reason == ReasonError {
			b.Fatal(res.ErrorMessage)
		}
	}
}

func BenchmarkEvaluate(b *testing.B) {
	b.Run("static", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = nil
		benchEvaluate(b, f, lookup(), `{"targetingKey":"user-1"}`)
	})
	b.Run("one-cel-rule", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = []v1beta1.Rule{{Name: "plan", When: `context.plan == "enterprise"`, Variant: "on"}}
		benchEvaluate(b, f, lookup(), `{"targetingKey":"user-1","plan":"enterprise"}`)
	})
	// A rule of another shape than context.<key> == "<literal>", which
	// one-cel-rule is and CEL no longer runs (compare.go).
	b.Run("one-numeric-cel-rule", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = []v1beta1.Rule{{Name: "seats", When: `context.seats > 10`, Variant: "on"}}
		benchEvaluate(b, f, lookup(), `{"targetingKey":"user-1","seats":12}`)
	})
	b.Run("segment-and-rollout", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules[1].When = ""
		benchEvaluate(b, f, lookup(employees()), `{"targetingKey":"user-1","email":"x@other.org","plan":"free"}`)
	})
	b.Run("100-rules", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = nil
		for i := 0; i < 100; i++ {
			f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: fmt.Sprintf(`context.n == %d`, i), Variant: "on"})
		}
		benchEvaluate(b, f, lookup(), `{"targetingKey":"user-1","n":99}`)
	})
	b.Run("100-string-rules", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = nil
		for i := 0; i < 100; i++ {
			f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: fmt.Sprintf(`context.plan == "tier-%d"`, i), Variant: "on"})
		}
		benchEvaluate(b, f, lookup(), `{"targetingKey":"user-1","plan":"tier-99"}`)
	})
}

// BenchmarkEvaluateExplained is what an explanation costs on top of
// BenchmarkEvaluate's cases (docs/benchmarks.md).
func BenchmarkEvaluateExplained(b *testing.B) {
	explained := Request{Now: now, Explain: true}
	b.Run("one-cel-rule", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = []v1beta1.Rule{{Name: "plan", When: `context.plan == "enterprise"`, Variant: "on"}}
		benchEvaluateRequest(b, f, lookup(), `{"targetingKey":"user-1","plan":"enterprise"}`, explained)
	})
	b.Run("100-rules", func(b *testing.B) {
		f := testFlag()
		f.Spec.Rules = nil
		for i := 0; i < 100; i++ {
			f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: fmt.Sprintf(`context.n == %d`, i), Variant: "on"})
		}
		benchEvaluateRequest(b, f, lookup(), `{"targetingKey":"user-1","n":99}`, explained)
	})
}
