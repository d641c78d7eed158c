package openfeature

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
)

const ns = "apps"

func value(v any) v1beta1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return v1beta1.JSON{Raw: b}
}

func flag(name string, t v1beta1.FlagType, def string, variants map[string]any, rules ...v1beta1.Rule) *v1beta1.Flag {
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: "uid-" + types.UID(name), Generation: 1, ResourceVersion: "1"},
		Spec:       v1beta1.FlagSpec{Type: t, State: v1beta1.FlagStateEnabled, DefaultVariant: v1beta1.VariantName(def), Rules: rules},
	}
	for n, v := range variants {
		f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: v1beta1.VariantName(n), Value: value(v)})
	}
	return f
}

func fixtures() []*v1beta1.Flag {
	disabled := flag("disabled-flag", v1beta1.FlagTypeString, "off", map[string]any{"off": "off-value", "on": "on-value"})
	disabled.Spec.State = v1beta1.FlagStateDisabled
	return []*v1beta1.Flag{
		flag("bool-flag", v1beta1.FlagTypeBoolean, "off", map[string]any{"on": true, "off": false},
			v1beta1.Rule{Name: "vip", When: `context.plan == "vip"`, Variant: "on"}),
		flag("string-flag", v1beta1.FlagTypeString, "greeting", map[string]any{"greeting": "hello"}),
		flag("number-flag", v1beta1.FlagTypeNumber, "big", map[string]any{"big": 42, "half": 1.5}),
		flag("object-flag", v1beta1.FlagTypeObject, "v", map[string]any{"v": map[string]any{"color": "red"}}),
		flag("rollout-flag", v1beta1.FlagTypeBoolean, "", map[string]any{"on": true, "off": false},
			v1beta1.Rule{Name: "half", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 50}, {Variant: "off", Weight: 50}}}}),
		disabled,
		hundredRules(),
	}
}

// hundredRules is a flag whose hundredth CEL rule is the first to match
// BenchmarkProviderHundredRules's context: every rule is evaluated.
func hundredRules() *v1beta1.Flag {
	var rules []v1beta1.Rule
	for i := range 99 {
		rules = append(rules, v1beta1.Rule{Name: fmt.Sprintf("tier-%d", i), When: fmt.Sprintf(`context.plan == "tier-%d"`, i), Variant: "on"})
	}
	rules = append(rules, v1beta1.Rule{Name: "teams", When: `context.seats > 10`, Variant: "on"})
	return flag("hundred-rules", v1beta1.FlagTypeBoolean, "off", map[string]any{"on": true, "off": false}, rules...)
}

func startProvider(t testing.TB) (*Provider, *fake.Clientset) {
	t.Helper()
	client := fake.NewSimpleClientset()
	for _, f := range fixtures() {
		if _, err := client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), f, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p, err := newProvider(client, ns, WithSyncTimeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p, client
}

func TestProviderEvaluates(t *testing.T) {
	p, _ := startProvider(t)
	ctx := context.Background()
	vip := of.FlattenedContext{"targetingKey": "user-1", "plan": "vip"}

	if d := p.BooleanEvaluation(ctx, "bool-flag", false, vip); !d.Value || d.Reason != of.TargetingMatchReason || d.Variant != "on" || d.FlagMetadata["rule"] != "vip" {
		t.Errorf("bool-flag for a vip: %+v", d)
	}
	if d := p.BooleanEvaluation(ctx, "bool-flag", true, of.FlattenedContext{"targetingKey": "user-1"}); d.Value || d.Reason != of.DefaultReason {
		t.Errorf("bool-flag without plan: %+v, want false/DEFAULT", d)
	}
	if d := p.StringEvaluation(ctx, "string-flag", "x", nil); d.Value != "hello" || d.Reason != of.StaticReason {
		t.Errorf("string-flag: %+v", d)
	}
	if d := p.FloatEvaluation(ctx, "number-flag", 0, nil); d.Value != 42 {
		t.Errorf("number-flag as float: %+v", d)
	}
	if d := p.IntEvaluation(ctx, "number-flag", 0, nil); d.Value != 42 || d.ResolutionError != (of.ResolutionError{}) {
		t.Errorf("number-flag as int: %+v", d)
	}
	if d := p.ObjectEvaluation(ctx, "object-flag", nil, nil); fmt.Sprint(d.Value) != "map[color:red]" {
		t.Errorf("object-flag: %+v", d)
	}
	if d := p.StringEvaluation(ctx, "disabled-flag", "x", nil); d.Value != "off-value" || d.Reason != of.DisabledReason {
		t.Errorf("disabled-flag: %+v", d)
	}
	for name, d := range map[string]of.ProviderResolutionDetail{
		"missing":       p.BooleanEvaluation(ctx, "no-such-flag", true, nil).ProviderResolutionDetail,
		"wrong type":    p.StringEvaluation(ctx, "bool-flag", "x", vip).ProviderResolutionDetail,
		"no key":        p.BooleanEvaluation(ctx, "rollout-flag", false, nil).ProviderResolutionDetail,
		"context types": p.BooleanEvaluation(ctx, "bool-flag", false, of.FlattenedContext{"targetingKey": 7}).ProviderResolutionDetail,
	} {
		want := map[string]string{"missing": "FLAG_NOT_FOUND", "wrong type": "TYPE_MISMATCH", "no key": "TARGETING_KEY_MISSING", "context types": "INVALID_CONTEXT"}[name]
		if got := d.ResolutionError.Error(); len(got) < len(want) || got[:len(want)] != want {
			t.Errorf("%s: %q, want %s", name, got, want)
		}
	}
	if d := p.BooleanEvaluation(ctx, "no-such-flag", true, nil); !d.Value {
		t.Error("a missing flag must give the caller's default")
	}
}

func TestProviderMatchesEngine(t *testing.T) {
	p, _ := startProvider(t)
	var rollout *v1beta1.Flag
	for _, f := range fixtures() {
		if f.Name == "rollout-flag" {
			rollout = f
		}
	}
	compiled := evaluation.CompileFlag(rollout, func(string) *v1beta1.Segment { return nil })
	seen := map[string]int{}
	for i := range 1000 {
		key := fmt.Sprintf("user-%d", i)
		c, err := evaluation.ParseContext([]byte(`{"targetingKey":"` + key + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		want := compiled.Evaluate(context.Background(), rollout, nil, evaluation.Request{Context: c})
		got := p.BooleanEvaluation(context.Background(), "rollout-flag", false, of.FlattenedContext{"targetingKey": key})
		if got.Variant != want.Variant || string(got.Reason) != want.Reason {
			t.Fatalf("%s: provider %s/%s, engine %s/%s", key, got.Variant, got.Reason, want.Variant, want.Reason)
		}
		seen[got.Variant]++
	}
	if seen["on"] < 400 || seen["off"] < 400 {
		t.Errorf("a 50/50 rollout split 1000 keys %v", seen)
	}
}

func TestProviderReportsChanges(t *testing.T) {
	p, client := startProvider(t)
	f, err := client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "string-flag", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: "farewell", Value: value("bye")})
	f.Spec.DefaultVariant = "farewell"
	f.Generation, f.ResourceVersion = 2, "2"
	if _, err := client.FlagpoleV1beta1().Flags(ns).Update(context.Background(), f, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-p.EventChannel():
		if ev.EventType != of.ProviderConfigChange || len(ev.FlagChanges) != 1 || ev.FlagChanges[0] != "string-flag" {
			t.Errorf("event %+v, want a configuration change of string-flag", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no configuration change event")
	}
	if d := p.StringEvaluation(context.Background(), "string-flag", "x", nil); d.Value != "bye" {
		t.Errorf("after the change: %+v", d)
	}
}

// The provider's cost per evaluation, as an application pays it: the SDK's
// flattened context converted, the flag evaluated, the answer decoded.
// docs/benchmarks.md has the figures and their goals (issue 21).

// BenchmarkProviderStatic: a flag without rules.
func BenchmarkProviderStatic(b *testing.B) {
	p, _ := startProvider(b)
	ctx := context.Background()
	user := of.FlattenedContext{"targetingKey": "user-1", "plan": "vip", "seats": 12}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.StringEvaluation(ctx, "string-flag", "", user); d.Value != "hello" {
			b.Fatal(d)
		}
	}
}

// BenchmarkProviderOneRule: a flag whose one CEL rule matches.
func BenchmarkProviderOneRule(b *testing.B) {
	p, _ := startProvider(b)
	ctx := context.Background()
	vip := of.FlattenedContext{"targetingKey": "user-1", "plan": "vip", "seats": 12}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.BooleanEvaluation(ctx, "bool-flag", false, vip); !d.Value {
			b.Fatal(d)
		}
	}
}

// BenchmarkProviderHundredRules: a flag of 100 CEL rules, the last one
// matching.
func BenchmarkProviderHundredRules(b *testing.B) {
	p, _ := startProvider(b)
	ctx := context.Background()
	team := of.FlattenedContext{"targetingKey": "user-1", "plan": "vip", "seats": 12}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.BooleanEvaluation(ctx, "hundred-rules", false, team); !d.Value || d.FlagMetadata["rule"] != "teams" {
			b.Fatal(d)
		}
	}
}

// A live override decides for its own flag only (the provider looks
// overrides up by flag).
func TestProviderOverrides(t *testing.T) {
	p, client := startProvider(t)
	expires := metav1.NewTime(time.Now().Add(time.Hour))
	for _, o := range []*v1beta1.FlagOverride{
		{ObjectMeta: metav1.ObjectMeta{Name: "force-on", Namespace: ns},
			Spec:   v1beta1.FlagOverrideSpec{Flag: "bool-flag", Variant: "on", TargetingKeys: []string{"user-7"}},
			Status: v1beta1.FlagOverrideStatus{ExpiresAt: &expires}},
		{ObjectMeta: metav1.ObjectMeta{Name: "other-flag", Namespace: ns},
			Spec:   v1beta1.FlagOverrideSpec{Flag: "string-flag", Variant: "greeting"},
			Status: v1beta1.FlagOverrideStatus{ExpiresAt: &expires}},
	} {
		if _, err := client.FlagpoleV1beta1().FlagOverrides(ns).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		d := p.BooleanEvaluation(context.Background(), "bool-flag", false, of.FlattenedContext{"targetingKey": "user-7"})
		return d.Value && d.FlagMetadata["override"] == "force-on", nil
	})
	if err != nil {
		t.Fatalf("the override never decided for user-7: %v", err)
	}
	if d := p.BooleanEvaluation(context.Background(), "bool-flag", true, of.FlattenedContext{"targetingKey": "user-8"}); d.Value || d.FlagMetadata["override"] != nil {
		t.Errorf("user-8 is not targeted: %+v", d)
	}
}

// decodeScalar answers what encoding/json would, or leaves the value to it.
func TestDecodeScalarIsJSONs(t *testing.T) {
	check := func(raw string) {
		t.Helper()
		for _, c := range []func() (any, any, bool){
			func() (any, any, bool) {
				var want bool
				err := json.Unmarshal([]byte(raw), &want)
				got, ok := decodeScalar[bool](json.RawMessage(raw))
				return got, want, ok && err == nil
			},
			func() (any, any, bool) {
				var want string
				err := json.Unmarshal([]byte(raw), &want)
				got, ok := decodeScalar[string](json.RawMessage(raw))
				if ok && err != nil {
					t.Errorf("%q: decoded %q where encoding/json fails: %v", raw, got, err)
				}
				return got, want, ok && err == nil
			},
			func() (any, any, bool) {
				var want float64
				err := json.Unmarshal([]byte(raw), &want)
				got, ok := decodeScalar[float64](json.RawMessage(raw))
				return got, want, ok && err == nil
			},
		} {
			if got, want, both := c(); both && got != want {
				t.Errorf("%q: %v, encoding/json %v", raw, got, want)
			}
		}
	}
	for _, raw := range []string{`true`, `false`, `"hello"`, `""`, `"a\"b"`, `"\u00e9"`, `"é"`, `"tab\t"`, "\"\xff\"", `1`, `-1.5`, `1e308`, `0.1`, `-0`, `12345678901234567890`, `null`, `{}`, `[1]`} {
		check(raw)
	}
	if _, ok := decodeScalar[string](json.RawMessage(`"a\"b"`)); ok {
		t.Error("an escaped string is left to encoding/json")
	}
	if v, ok := decodeScalar[bool](json.RawMessage(`true`)); !ok || !v {
		t.Error("true")
	}
}
