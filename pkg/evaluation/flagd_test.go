package evaluation

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// whenFlag is a flag with one rule: when → "yes", otherwise "no".
func whenFlag(t *testing.T, when string) *v1beta1.Flag {
	t.Helper()
	if _, err := CompileExpression(when, Predicate, false); err != nil {
		t.Fatalf("%s: %v", when, err)
	}
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "my-flag", UID: "u"},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeString, State: v1beta1.FlagStateEnabled,
			Variants:       []v1beta1.Variant{{Name: "yes", Value: js("yes")}, {Name: "no", Value: js("no")}},
			DefaultVariant: "no",
			Rules:          []v1beta1.Rule{{Name: "r", When: when, Variant: "yes"}}},
	}
}

// evalWhen evaluates when for the context: "true", "false", or the error code.
func evalWhen(t *testing.T, when, context string) string {
	t.Helper()
	f := whenFlag(t, when)
	res := CompileFlag(f, lookup()).Evaluate(t.Context(), f, nil, Request{Context: ctx(t, context), Now: now})
	switch {
	case res.Reason == ReasonError:
		return res.ErrorCode
	case res.Variant == "yes":
		return "true"
	case res.Reason == ReasonDefault:
		return "false"
	}
	t.Fatalf("%s: unexpected %+v", when, res)
	return ""
}

type whenCase struct {
	when, context, want string
}

func runWhenCases(t *testing.T, cases []whenCase) {
	t.Helper()
	for _, c := range cases {
		if c.context == "" {
			c.context = "{}"
		}
		if got := evalWhen(t, c.when, c.context); got != c.want {
			t.Errorf("%s with %s: %s, want %s", c.when, c.context, got, c.want)
		}
	}
}

// JsonLogic's loose and strict comparisons, from the JsonLogic test suite
// (diegoholiveira/jsonlogic v3.9.1 internal/json_logic_pr_48_tests.json,
// "Single operator tests"), here over context values as CEL holds them
// (integral numbers as int).
func TestFlagdComparisons(t *testing.T) {
	runWhenCases(t, []whenCase{
		{`flagd.equals(false, false)`, ``, "true"},
		{`flagd.equals(0.0, false)`, ``, "true"},
		{`flagd.equals(false, "0")`, ``, "true"},
		{`flagd.equals("1", true)`, ``, "true"},
		{`flagd.equals("1.000", true)`, ``, "true"},
		{`flagd.equals("0.0000", "0")`, ``, "false"},
		{`flagd.equals(" ", 0.0)`, ``, "true"},
		{`flagd.equals("42.0", flagd.var(context, "n"))`, `{"n": 42}`, "true"},
		{`flagd.equals(true, "true")`, ``, "false"},
		{`flagd.equals("a ", "a")`, ``, "false"},
		{`flagd.equals(null, 0.0)`, ``, "false"},
		{`flagd.equals(flagd.var(context, "missing"), null)`, ``, "true"},
		{`flagd.strictEquals(1.0, flagd.var(context, "n"))`, `{"n": 1}`, "true"},
		{`flagd.strictEquals(1.0, "1")`, ``, "false"},
		{`flagd.strictEquals(flagd.var(context, "a"), flagd.var(context, "a"))`, `{"a": [1]}`, "false"},
		{`flagd.less(1.0, 2.0) && flagd.less(2.0, 3.0)`, ``, "true"},
		{`flagd.less("11", "2")`, ``, "true"},
		{`flagd.less(flagd.var(context, "n"), "2")`, `{"n": 11}`, "false"},
		{`flagd.less(flagd.var(context, "missing"), 1.0)`, ``, "true"},
		{`flagd.lessOrEquals(flagd.var(context, "missing"), 0.0)`, ``, "false"},
		{`flagd.less("a", 1.0)`, ``, "false"},
		{`flagd.truthy(flagd.var(context, "l"))`, `{"l": []}`, "false"},
		{`flagd.truthy(flagd.var(context, "s"))`, `{"s": "0"}`, "true"},
		{`flagd.truthy(flagd.var(context, "o"))`, `{"o": {}}`, "false"},
		{`flagd.not(flagd.var(context, "l"))`, `{"l": ["", "x"]}`, "true"},
		{`flagd.not(flagd.var(context, "l"))`, `{"l": []}`, "true"},
	})
}

// var's paths as jsonlogic v3.9.1 walks them.
func TestFlagdVar(t *testing.T) {
	runWhenCases(t, []whenCase{
		{`flagd.var(context, "user.name") == "jack"`, `{"user": {"name": "jack"}}`, "true"},
		{`flagd.var(context, "a..b") == 1`, `{"a": {"b": 1}}`, "true"},
		{`flagd.var(context, "tags.1") == "y"`, `{"tags": ["x", "y"]}`, "true"},
		// A part that is not a number indexes a list at 0, as jsonlogic's
		// number conversion makes it 0.
		{`flagd.var(context, "tags.first") == "x"`, `{"tags": ["x", "y"]}`, "true"},
		{`flagd.var(context, "tags.9") == null`, `{"tags": ["x"]}`, "true"},
		{`flagd.var(context, "name.length") == null`, `{"name": "jack"}`, "true"},
		{`flagd.var(context, "a", "fallback") == "fallback"`, `{"a": null}`, "true"},
		{`flagd.var(context, "a", "fallback") == false`, `{"a": false}`, "true"},
		{`flagd.var(context, "targetingKey") == "u1"`, `{"targetingKey": "u1"}`, "true"},
	})
}

// in, cat and the panics flagd answers with PARSE_ERROR.
func TestFlagdInAndCat(t *testing.T) {
	runWhenCases(t, []whenCase{
		{`flagd.isIn("Spring", "Springfield")`, ``, "true"},
		{`flagd.isIn("i", "team")`, ``, "false"},
		{`flagd.isIn("Bart", ["Bart", "Homer"])`, ``, "true"},
		{`flagd.isIn(flagd.var(context, "n"), ["1", "2"])`, `{"n": 2}`, "true"},
		{`flagd.isIn(flagd.var(context, "n"), ["x"])`, `{"n": 0}`, "true"}, // ParseFloat("x") fails: 0
		{`flagd.isIn(flagd.var(context, "n"), [[1.0, 5.0]])`, `{"n": 3}`, "true"},
		{`flagd.isIn(flagd.var(context, "n"), [[1.0, 5.0]])`, `{"n": 7}`, "false"},
		{`flagd.isIn(flagd.var(context, "missing"), [dyn(null), dyn("x")])`, ``, "true"},
		{`flagd.isIn(flagd.var(context, "n"), "123")`, `{"n": 2}`, ErrorParse},
		{`flagd.isIn(1.0, [dyn(true)])`, ``, ErrorParse},
		{`flagd.isIn(flagd.var(context, "o"), [flagd.var(context, "o")])`, `{"o": {"a": 1}}`, ErrorParse},
		{`flagd.isIn(1.0, [[1.0]])`, ``, ErrorParse},
		{`flagd.isIn("a", 5.0)`, ``, "false"},
		{`flagd.cat(["I love", " pie "]) == "I love pie"`, ``, "true"},
		{`flagd.cat([" a "]) == " a "`, ``, "true"},
		{`flagd.cat([dyn("v"), dyn(1.5), dyn(null), dyn(2.0)]) == "v1.52"`, ``, "true"},
		{`flagd.cat([dyn(flagKey), flagd.var(context, "email")]) == "my-flaga@b"`, `{"email": "a@b"}`, "true"},
		{`flagd.cat([true]) == ""`, ``, ErrorParse},
		{`flagd.cat(flagd.var(context, "n")) == ""`, `{"n": 1}`, ErrorParse},
	})
}

// sem_ver, starts_with and ends_with as flagd core v0.17.0 implements them,
// with the cases of flagd's semver_test.go and the flagd testbed
// (evaluator/gherkin/semver.feature, gherkin/targeting.feature @semver).
func TestFlagdSemverAndAffixes(t *testing.T) {
	runWhenCases(t, []whenCase{
		{`flagd.semver("1.0.0", ">", "0.1.0") == true`, ``, "true"},
		{`flagd.semver("1.2.3", "^", "1.5.6") == true`, ``, "true"},
		{`flagd.semver("2.2.3", "^", "1.2.3") == false`, ``, "true"},
		{`flagd.semver("1.2.3", "~", "1.2.6") == true`, ``, "true"},
		{`flagd.semver("1.3.3", "~", "1.2.6") == false`, ``, "true"},
		{`flagd.semver(flagd.var(context, "v"), "<", "2.0.0") == true`, `{"v": "2.0.0-alpha"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "2.0.0") == null`, `{"v": "2.0.0.0"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "v1.0.0") == true`, `{"v": "V1.0.0"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "v1.0.0") == true`, `{"v": "v1.0.0"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "^", "1") == true`, `{"v": "1.0"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "^", "1") == true`, `{"v": 1}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), ">", "1.1") == true`, `{"v": 1.5}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "1.0.0+build") == true`, `{"v": "1.0.0+other"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "1.0.0") == null`, `{"v": "not-a-version"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "===", "1.0.0") == null`, `{"v": "1.0.0"}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "1.0.0") == null`, `{"v": true}`, "true"},
		{`flagd.semver(flagd.var(context, "v"), "=", "1.0.0") == null`, `{}`, "true"},
		{`flagd.semver(["1.0.0", "="]) == null`, ``, "true"},
		{`flagd.semver(dyn(["1.0.0", "=", "1.0.0"])) == true`, ``, "true"},
		{`flagd.startsWith(flagd.var(context, "id"), "abc") == true`, `{"id": "abcdef"}`, "true"},
		{`flagd.endsWith(flagd.var(context, "id"), "xyz") == true`, `{"id": "uvwxyz"}`, "true"},
		{`flagd.startsWith(flagd.var(context, "num"), "abc") == null`, `{"num": 123}`, "true"},
		{`flagd.endsWith(["xyz"]) == null`, ``, "true"},
	})
}

// flagd.fractional lands keys where flagd's fractional-v2 did (the vectors
// flagd produced, testdata/flagd-fractional-vectors.json), and
// flagd.fractionalV1 where v1 did (testdata/flagd-fractional-v1-vectors.json).
func TestFlagdFractionalFunctions(t *testing.T) {
	entries := func(dist []v1beta1.WeightedVariant) string {
		var parts []string
		for _, d := range dist {
			parts = append(parts, fmt.Sprintf("dyn([dyn(%q), dyn(%d.0)])", d.Variant, d.Weight))
		}
		return strings.Join(parts, ", ")
	}
	for i, v := range loadFlagdVectors(t) {
		key := v.FlagKey + v.TargetingKey
		if v.BucketBy != "" {
			key = v.BucketValue
		}
		when := fmt.Sprintf(`flagd.fractional(context, flagKey, [context.key, %s]) == %q`, entries(v.Distribution), v.Variant)
		raw, _ := json.Marshal(map[string]any{"key": key})
		if got := evalWhen(t, when, string(raw)); got != "true" {
			t.Errorf("v2 vector %d: %s", i, got)
		}
	}
	for _, v := range loadFlagdV1Vectors(t) {
		when := fmt.Sprintf(`flagd.fractionalV1(context, flagKey, [context.key, %s]) == %q`, entries(v.Distribution), v.Variant)
		raw, _ := json.Marshal(map[string]any{"key": v.Key})
		if got := evalWhen(t, when, string(raw)); got != "true" {
			t.Errorf("v1 %s: %s", v.Case, got)
		}
	}
	// Bucketing by targeting key, and where flagd answers null: the cases
	// of flagd core v0.17.0's fractional_test.go and the testbed.
	runWhenCases(t, []whenCase{
		{`flagd.fractional(context, "headerColor", [dyn([dyn("blue"), dyn(50.0)]), dyn([dyn("green"), dyn(50.0)])]) == "green"`, `{"targetingKey": "foo@foo.com"}`, "true"},
		{`flagd.fractional(context, "headerColor", [dyn(null), dyn([dyn("red"), dyn(50.0)]), dyn([dyn("blue"), dyn(50.0)])]) == "blue"`, `{"targetingKey": "foo@foo.com"}`, "true"},
		{`flagd.fractional(context, "headerColor", [dyn([dyn("red"), dyn(25.0)]), dyn([dyn("blue"), dyn(25.0)])]) == null`, `{}`, "true"},
		{`flagd.fractional(context, "headerColor", [dyn([dyn("red"), dyn(25.0)]), dyn([dyn("blue"), dyn(25.0)])]) == null`, `{"targetingKey": ""}`, "true"},
		{`flagd.fractional(context, "f", [[dyn("single"), dyn(1.0)]]) == "single"`, `{"targetingKey": "any-user"}`, "true"},
		{`flagd.fractional(context, "f", [dyn([dyn("one"), dyn(0.0)]), dyn([dyn("two"), dyn(0.0)])]) == null`, `{"targetingKey": "any-user"}`, "true"},
		{`flagd.fractional(context, "f", [dyn([dyn("one"), dyn(-50.0)]), dyn([dyn("two"), dyn(100.0)])]) == "two"`, `{"targetingKey": "any-user"}`, "true"},
		{`flagd.fractional(context, "f", [[dyn(false), dyn(0.0)], [dyn(true), dyn(100.0)]]) == true`, `{"targetingKey": "k"}`, "true"},
		{`flagd.fractional(context, "f", [[dyn("a"), dyn(1.5)]]) == null`, `{"targetingKey": "k"}`, "true"},
		{`flagd.fractional(context, "f", [["a", "50"]]) == null`, `{"targetingKey": "k"}`, "true"},
		{`flagd.fractional(context, "f", [[dyn("a"), dyn(2147483648.0)]]) == null`, `{"targetingKey": "k"}`, "true"},
		{`flagd.fractionalV1(context, "f", [dyn([dyn("a"), dyn(1.0)]), dyn([dyn("b"), dyn(1.0)])]) != null`, `{"targetingKey": ""}`, "true"},
		{`flagd.fractionalV1(context, "f", [[dyn("a"), dyn(1.0)]]) == null`, `{"targetingKey": "k"}`, "true"},
		{`flagd.bucketKey(context, flagKey, null) == "my-flagu1"`, `{"targetingKey": "u1"}`, "true"},
		{`flagd.bucketKey(context, flagKey, null) == null`, `{"targetingKey": ""}`, "true"},
		{`flagd.bucketKeyV1(context, flagKey, null) == "my-flag"`, `{"targetingKey": ""}`, "true"},
		{`flagd.bucketKey(context, flagKey, 1.0) == null`, `{"targetingKey": "u1"}`, "true"},
		{`flagd.bucketKey(context, flagKey, flagd.var(context, "l")) == null`, `{"l": [1]}`, ErrorGeneral},
	})
}

// flagd.variant reads a targeting result as flagd does: its JSON text
// without double quotes names the variant.
func TestFlagdVariant(t *testing.T) {
	names := `["on", "off", "true", "false", "1", "1.5", "1e-7"]`
	runWhenCases(t, []whenCase{
		{`flagd.variant("on", ` + names + `) == "on"`, ``, "true"},
		{`flagd.variant(flagd.var(context, "b"), ` + names + `) == "true"`, `{"b": true}`, "true"},
		{`flagd.variant(flagd.var(context, "n"), ` + names + `) == "1"`, `{"n": 1}`, "true"},
		{`flagd.variant(flagd.var(context, "n"), ` + names + `) == "1.5"`, `{"n": 1.5}`, "true"},
		{`flagd.variant(flagd.var(context, "n"), ` + names + `) == "1e-7"`, `{"n": 0.0000001}`, "true"},
		{`flagd.variant(flagd.var(context, "missing"), ` + names + `) == null`, ``, "true"},
		{`flagd.variant("three", ` + names + `) == null`, ``, ErrorGeneral},
		{`flagd.variant(flagd.var(context, "l"), ` + names + `) == null`, `{"l": ["on"]}`, ErrorGeneral},
		{`flagd.clause(flagd.var(context, "o")) == null`, `{"o": {"var": "x"}}`, ErrorParse},
		{`flagd.clause(flagd.var(context, "o")) != null`, `{"o": {"a": 1, "b": 2}}`, "true"},
	})
}

// Every function is cost-estimated: expressions over the context pass the
// strict write-time check, and an argument the estimator cannot bound is
// rejected like any unbounded expression.
func TestFlagdCostEstimates(t *testing.T) {
	for _, expr := range []string{
		`flagd.equals(flagd.var(context, "a"), flagd.var(context, "b"))`,
		`flagd.isIn(flagd.var(context, "a"), flagd.var(context, "b"))`,
		`flagd.cat([flagd.var(context, "a"), flagd.var(context, "b"), dyn(flagKey)]) == ""`,
		`flagd.cat(flagd.var(context, "a")) == ""`,
		`flagd.variant(flagd.clause(flagd.var(context, "a")), ["x"]) == "x"`,
		`flagd.fractional(context, flagKey, [dyn(flagd.cat([dyn(flagKey), flagd.var(context, "e")])), dyn([dyn("a"), dyn(1.0)])]) == "a"`,
		`flagd.bucketKey(context, flagKey, flagd.var(context, "e")) != null`,
	} {
		if _, err := CompileExpression(expr, Predicate, false); err != nil {
			t.Errorf("%s: %v", expr, err)
		}
	}
	_, err := CompileExpression(`flagd.cat([context.s.replace("a", context.s)]) == ""`, Predicate, false)
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("an unbounded argument: %v", err)
	}
}
