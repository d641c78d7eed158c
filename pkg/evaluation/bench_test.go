package evaluation

import (
	"fmt"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func benchEvaluate(b *testing.B, flag *v1beta1.Flag, segments SegmentLookup, raw string) {
	c, err := ParseContext([]byte(raw))
	if err != nil {
		b.Fatal(err)
	}
	cache := NewCache()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := cache.Get(flag, segments).Evaluate(b.Context(), flag, nil, Request{Context: c, Now: now})
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
}
