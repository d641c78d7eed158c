package evaluation

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/cel-go/common/types"
)

type namedString string

// The predicates answered without CEL give CEL's answer, error text and
// charge included, for every kind of value a context can hold.
func TestStringCompareIsCEL(t *testing.T) {
	exprs := []string{
		`context.plan == "vip"`,
		`"vip" == context.plan`,
		`context.plan != "vip"`,
		`"vip" != context.plan`,
		`context.plan == ""`,
		`context.name == "Zoë ✓"`,
	}
	values := []any{
		"vip", "VIP", "", "vip ", "Zoë ✓", "Zoe",
		1.0, 0.0, int64(3), 2, uint64(7), true, false, nil,
		[]any{"vip"}, map[string]any{"plan": "vip"},
		namedString("vip"), // not a type the fast path knows: CEL answers
	}
	var contexts []map[string]any
	contexts = append(contexts, map[string]any{}) // every key absent
	for _, v := range values {
		contexts = append(contexts, map[string]any{"plan": v, "name": v})
	}
	for _, expr := range exprs {
		p, err := CompileExpression(expr, Predicate, false)
		if err != nil {
			t.Fatal(err)
		}
		if p.compare == nil {
			t.Fatalf("%s: not recognised", expr)
		}
		for _, attrs := range contexts {
			viaCEL, viaCELErr, celCost := evalWith(t, p, attrs, false)
			fast, fastErr, fastCost := evalWith(t, p, attrs, true)
			if fmt.Sprint(viaCEL) != fmt.Sprint(fast) || fmt.Sprint(viaCELErr) != fmt.Sprint(fastErr) || celCost != fastCost {
				t.Errorf("%s with %#v: CEL %v, %v (cost %d); without CEL %v, %v (cost %d)", expr, attrs, viaCEL, viaCELErr, celCost, fast, fastErr, fastCost)
			}
		}
	}
}

func evalWith(t *testing.T, p *Program, attrs map[string]any, fast bool) (any, error, uint64) {
	t.Helper()
	a := &activation{context: types.DefaultTypeAdapter.NativeToValue(attrs)}
	if fast {
		a.attrs = attrs
	}
	b := fullBudget()
	before := b.remaining
	v, err := p.eval(context.Background(), a, &b)
	return v, err, before - b.remaining
}

// Only `context.<key>` compared with a string literal is answered without
// CEL; every other shape runs in CEL.
func TestStringCompareShapes(t *testing.T) {
	for expr, want := range map[string]bool{
		`context.plan == "vip"`:                 true,
		`"vip" != context.plan`:                 true,
		`context.a.b == "x"`:                    false,
		`context["plan"] == "vip"`:              false,
		`targetingKey == "user-1"`:              false,
		`context.seats == 10`:                   false,
		`context.plan == context.tier`:          false,
		`has(context.plan)`:                     false,
		`context.plan == "vip" || context.x`:    false,
		`context.plan.startsWith("v")`:          false,
		`context.plan in ["vip", "enterprise"]`: false,
	} {
		p, err := CompileExpression(expr, Predicate, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.compare != nil; got != want {
			t.Errorf("%s: answered without CEL %v, want %v", expr, got, want)
		}
	}
}
