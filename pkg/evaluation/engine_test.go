package evaluation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	celtypes "github.com/google/cel-go/common/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func js(v any) v1beta1.JSON {
	b, _ := json.Marshal(v)
	return v1beta1.JSON{Raw: b}
}

func testFlag() *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "new-checkout", Namespace: "default", UID: "u1", Generation: 3, ResourceVersion: "42"},
		Spec: v1beta1.FlagSpec{
			Type:  v1beta1.FlagTypeBoolean,
			State: v1beta1.FlagStateEnabled,
			Variants: []v1beta1.Variant{
				{Name: "on", Value: js(true)},
				{Name: "off", Value: js(false)},
			},
			DefaultVariant: "off",
			Rules: []v1beta1.Rule{
				{Name: "staff", Segments: []string{"employees"}, When: `context.plan == "enterprise"`, Variant: "on"},
				{Name: "gradual", When: `has(context.country) && context.country == "NZ"`,
					Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 50}, {Variant: "off", Weight: 50}}}},
			},
		},
	}
}

func employees() *v1beta1.Segment {
	return &v1beta1.Segment{
		ObjectMeta: metav1.ObjectMeta{Name: "employees", UID: "s1", Generation: 1},
		Spec:       v1beta1.SegmentSpec{When: `context.email.endsWith("@example.com")`, Include: []string{"contractor-7"}, Exclude: []string{"intern-1"}},
	}
}

func lookup(segs ...*v1beta1.Segment) SegmentLookup {
	return func(name string) *v1beta1.Segment {
		for _, s := range segs {
			if s.Name == name {
				return s
			}
		}
		return nil
	}
}

func ctx(t *testing.T, raw string) *Context {
	t.Helper()
	c, err := ParseContext([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func override(name, variant string, keys []string, created, expires time.Time) *v1beta1.FlagOverride {
	exp := metav1.NewTime(expires)
	return &v1beta1.FlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)},
		Spec:       v1beta1.FlagOverrideSpec{Flag: "new-checkout", Variant: v1beta1.VariantName(variant), TargetingKeys: keys},
		Status:     v1beta1.FlagOverrideStatus{ExpiresAt: &exp},
	}
}

func TestEvaluate(t *testing.T) {
	type want struct {
		reason, code, variant, value, rule, override string
	}
	tests := []struct {
		name      string
		flag      func(*v1beta1.Flag)
		segments  []*v1beta1.Segment
		overrides []*v1beta1.FlagOverride
		context   string
		expected  v1beta1.FlagType
		want      want
		message   string
	}{
		{name: "rule with segment and when matches",
			segments: []*v1beta1.Segment{employees()}, context: `{"email":"ann@example.com","plan":"enterprise"}`,
			want: want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "staff"}},
		{name: "segment include list beats its when",
			segments: []*v1beta1.Segment{employees()}, context: `{"targetingKey":"contractor-7","email":"c@elsewhere.org","plan":"enterprise"}`,
			want: want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "staff"}},
		{name: "segment exclude list",
			segments: []*v1beta1.Segment{employees()}, context: `{"targetingKey":"intern-1","email":"i@example.com","plan":"enterprise"}`,
			want: want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "rule's when false falls through to default",
			segments: []*v1beta1.Segment{employees()}, context: `{"email":"ann@example.com","plan":"free"}`,
			want: want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "missing segment matches no one",
			context: `{"email":"ann@example.com","plan":"enterprise"}`,
			want:    want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "rollout splits by targeting key",
			context: `{"targetingKey":"user-1","country":"NZ"}`,
			want:    want{reason: ReasonSplit, variant: "on", value: "true", rule: "gradual"}},
		{name: "rollout without targeting key",
			context: `{"country":"NZ"}`,
			want:    want{reason: ReasonError, code: ErrorTargetingKeyMissing, rule: "gradual"}},
		{name: "bucketBy needs no targeting key",
			flag:    func(f *v1beta1.Flag) { f.Spec.Rules[1].Rollout.BucketBy = "context.org" },
			context: `{"country":"NZ","org":"acme"}`,
			want:    want{reason: ReasonSplit, variant: "off", value: "false", rule: "gradual"}},
		{name: "no rules: static",
			flag:    func(f *v1beta1.Flag) { f.Spec.Rules = nil },
			context: `{}`,
			want:    want{reason: ReasonStatic, variant: "off", value: "false"}},
		{name: "no default variant: DEFAULT with no value",
			flag:    func(f *v1beta1.Flag) { f.Spec.DefaultVariant = "" },
			context: `{"plan":"free"}`,
			want:    want{reason: ReasonDefault}},
		{name: "disabled serves the default",
			flag:      func(f *v1beta1.Flag) { f.Spec.State = v1beta1.FlagStateDisabled },
			segments:  []*v1beta1.Segment{employees()},
			overrides: []*v1beta1.FlagOverride{override("force-on", "on", nil, now.Add(-time.Minute), now.Add(time.Hour))},
			context:   `{"email":"ann@example.com","plan":"enterprise"}`,
			want:      want{reason: ReasonDisabled, variant: "off", value: "false"}},
		{name: "live override beats rules",
			segments:  []*v1beta1.Segment{employees()},
			overrides: []*v1beta1.FlagOverride{override("force-off", "off", nil, now.Add(-time.Minute), now.Add(time.Hour))},
			context:   `{"email":"ann@example.com","plan":"enterprise"}`,
			want:      want{reason: ReasonTargetingMatch, variant: "off", value: "false", override: "force-off"}},
		{name: "targeted override beats a newer global one",
			overrides: []*v1beta1.FlagOverride{
				override("for-bob", "on", []string{"bob"}, now.Add(-time.Hour), now.Add(time.Hour)),
				override("for-all", "off", nil, now.Add(-time.Minute), now.Add(time.Hour)),
			},
			context: `{"targetingKey":"bob"}`,
			want:    want{reason: ReasonTargetingMatch, variant: "on", value: "true", override: "for-bob"}},
		{name: "override for other keys does not apply",
			overrides: []*v1beta1.FlagOverride{override("for-bob", "on", []string{"bob"}, now.Add(-time.Hour), now.Add(time.Hour))},
			context:   `{"targetingKey":"carol"}`,
			want:      want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "expired override is ignored at once",
			overrides: []*v1beta1.FlagOverride{override("stale", "on", nil, now.Add(-2*time.Hour), now)},
			context:   `{}`,
			want:      want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "type mismatch",
			context: `{}`, expected: v1beta1.FlagTypeString,
			want: want{reason: ReasonError, code: ErrorTypeMismatch}},
		{name: "matching expected type",
			context: `{}`, expected: v1beta1.FlagTypeBoolean,
			want: want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "runtime error in a rule is ERROR/GENERAL",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "bad", When: `context.count > 3`, Variant: "on"}
			},
			context: `{"count":"many"}`,
			want:    want{reason: ReasonError, code: ErrorGeneral, rule: "bad"}},
		// A key the context lacks: the rule does not match, evaluation goes on.
		{name: "a rule reading a key the context lacks does not match; the next rule decides",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "plan", When: `context.plan == "vip"`, Variant: "on"}
				f.Spec.Rules[1].When = `context.country == "NZ"`
			},
			context: `{"targetingKey":"user-1","country":"NZ"}`,
			want:    want{reason: ReasonSplit, variant: "on", value: "true", rule: "gradual"}},
		{name: "a nested key under a missing one does not match",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "nested", When: `context.account.tier == "gold"`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "a missing nested key does not match",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "nested", When: `context.account.tier == "gold"`, Variant: "on"}
			},
			context: `{"account":{"id":7}}`,
			want:    want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "an index into a missing key does not match",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "index", When: `context["plan"] == "vip"`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "a negated test of a missing key does not match either",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "not-vip", When: `context.plan != "vip"`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonDefault, variant: "off", value: "false"}},
		{name: "has() guards still work",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "anonymous", When: `!has(context.plan)`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "anonymous"}},
		{name: "an absent key in one branch of || does not hide a true one",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "either", When: `context.plan == "vip" || targetingKey == "bob"`, Variant: "on"}
			},
			context: `{"targetingKey":"bob"}`,
			want:    want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "either"}},
		{name: "a segment whose when reads a key the context lacks has no such member",
			segments: []*v1beta1.Segment{employees()},
			flag:     func(f *v1beta1.Flag) { f.Spec.Rules[0].When = "" },
			context:  `{"targetingKey":"user-1","country":"NZ"}`,
			want:     want{reason: ReasonSplit, variant: "on", value: "true", rule: "gradual"}},
		{name: "selecting a field of a list is still a runtime error",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "typo", When: `context.tags.beta == true`, Variant: "on"}
			},
			context: `{"tags":["beta"]}`,
			want:    want{reason: ReasonError, code: ErrorGeneral, rule: "typo"}},
		{name: "an index out of a list's bounds is still a runtime error",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "first", When: `context.tags[0] == "beta"`, Variant: "on"}
			},
			context: `{"tags":[]}`,
			want:    want{reason: ReasonError, code: ErrorGeneral, rule: "first"}},
		// bucketBy reading a key the context lacks: flagKey + targetingKey, as flagd does.
		{name: "bucketBy reading a missing key buckets by the targeting key",
			flag:    func(f *v1beta1.Flag) { f.Spec.Rules[1].Rollout.BucketBy = `context.org` },
			context: `{"targetingKey":"user-1","country":"NZ"}`,
			want:    want{reason: ReasonSplit, variant: "on", value: "true", rule: "gradual"}},
		{name: "bucketBy reading a missing key without a targeting key",
			flag:    func(f *v1beta1.Flag) { f.Spec.Rules[1].Rollout.BucketBy = `context.org` },
			context: `{"country":"NZ"}`,
			want:    want{reason: ReasonError, code: ErrorTargetingKeyMissing, rule: "gradual"},
			message: "bucketBy reads a key the context lacks"},
		{name: "expression that does not compile is PARSE_ERROR",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "broken", When: `context.plan ==`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonError, code: ErrorParse, rule: "broken"}},
		{name: "runtime cost limit is ERROR/GENERAL",
			flag: func(f *v1beta1.Flag) {
				// Stored before the estimate refused it: builds 4.4 MB.
				f.Spec.Rules[0] = v1beta1.Rule{Name: "costly", Variant: "on", When: `context.s.replace("a", context.s) != ""`}
			},
			context: `{"s":"` + strings.Repeat("a", 2100) + `"}`,
			want:    want{reason: ReasonError, code: ErrorGeneral, rule: "costly"},
			message: "actual cost limit exceeded"},
		{name: "numbers compare across int and double",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "adult", When: `context.age >= 18 && context.score > 0.5`, Variant: "on"}
			},
			context: `{"age":21,"score":0.75}`,
			want:    want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "adult"}},
		{name: "now, flagKey and targetingKey variables",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "vars", Variant: "on",
					When: `flagKey == "new-checkout" && targetingKey.startsWith("u-") && now > timestamp("2026-01-01T00:00:00Z")`}
			},
			context: `{"targetingKey":"u-9"}`,
			want:    want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "vars"}},
		{name: "kubernetes libraries: semver",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "version", Variant: "on", When: `isSemver(context.app) && semver(context.app).isGreaterThan(semver("2.0.0"))`}
			},
			context: `{"app":"2.1.0"}`,
			want:    want{reason: ReasonTargetingMatch, variant: "on", value: "true", rule: "version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := testFlag()
			if tc.flag != nil {
				tc.flag(f)
			}
			c := CompileFlag(f, lookup(tc.segments...))
			res := c.Evaluate(t.Context(), f, tc.overrides, Request{Context: ctx(t, tc.context), ExpectedType: tc.expected, Now: now})
			got := want{res.Reason, res.ErrorCode, res.Variant, valueJSON(res.Value), res.Metadata.Rule, res.Metadata.Override}
			if got != tc.want {
				t.Errorf("got %+v (%s), want %+v", got, res.ErrorMessage, tc.want)
			}
			if res.Key != "new-checkout" || res.Metadata.ResourceVersion != "42" || res.Metadata.Generation != 3 {
				t.Errorf("result not traced to the flag revision: %+v", res)
			}
			if (res.ErrorCode == "") != (res.ErrorMessage == "") {
				t.Errorf("error code %q with message %q", res.ErrorCode, res.ErrorMessage)
			}
			if tc.message != "" && !strings.Contains(res.ErrorMessage, tc.message) {
				t.Errorf("message %q lacks %q", res.ErrorMessage, tc.message)
			}
		})
	}
}

func TestNotFoundAndInvalidContext(t *testing.T) {
	if r := NotFound("x"); r.Reason != ReasonError || r.ErrorCode != ErrorFlagNotFound {
		t.Errorf("%+v", r)
	}
	nested := func(depth int) string {
		return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
	}
	for _, raw := range []string{
		// Not an object: null included (an absent context is no bytes at all).
		`null`, ` null `, `[1]`, `"s"`, `7`,
		// Not a string targeting key, or too long.
		`{"targetingKey": 7}`, `{"targetingKey": null}`, `{"targetingKey": 1e400}`,
		`{"targetingKey":"` + strings.Repeat("k", flagpole.MaxTargetingKeyLength+1) + `"}`,
		// Not JSON, or more than one value.
		`{"a":1} {}`, `{`,
		// Over the caps: size, depth, numbers.
		`{"pad":"` + strings.Repeat("x", MaxContextBytes) + `"}`,
		nested(flagpole.MaxJSONDepth + 1),
		`{"big":1e400}`, `{"small":-1e400}`, `{"xs":[1,2,1e309]}`,
	} {
		_, err := ParseContext([]byte(raw))
		if !errors.Is(err, ErrInvalidContext) {
			t.Errorf("%.40s: %v, want an invalid context", raw, err)
			continue
		}
		if r := InvalidContext("f", err); r.ErrorCode != ErrorInvalidContext {
			t.Errorf("%+v", r)
		}
	}
	for _, raw := range []string{``, `  `} {
		c, err := ParseContext([]byte(raw))
		if err != nil || len(c.Attributes) != 0 || c.HasTargetingKey {
			t.Errorf("absent context %q: %+v, %v", raw, c, err)
		}
	}
	if _, err := ParseContext([]byte(nested(flagpole.MaxJSONDepth))); err != nil {
		t.Errorf("a context nested exactly %d deep: %v", flagpole.MaxJSONDepth, err)
	}
	c, err := ParseContext([]byte(`{"targetingKey":"u","n":3,"f":1.5,"big":1e300,"huge":123456789012345678901234567890}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Attributes["n"] != int64(3) || c.Attributes["f"] != 1.5 || c.Attributes["big"] != 1e300 ||
		c.Attributes["huge"] != 1.2345678901234568e29 || !c.HasTargetingKey || c.TargetingKey != "u" {
		t.Errorf("parsed %+v", c)
	}
}

// CEL reports a missing map key with an unexported error; the engine tells
// it apart by its message. This pins the message to the CEL in go.mod, for
// every way an expression reads a key.
func TestAbsentKeyDetection(t *testing.T) {
	c := ctx(t, `{"a":{"b":1},"l":[{"x":1}],"s":"str"}`)
	for _, tc := range []struct {
		expr   string
		absent bool
	}{
		{`context.missing == 1`, true},
		{`context["missing"] == 1`, true},
		{`context.a.missing == 1`, true},
		{`context.a["missing"] == 1`, true},
		{`context.missing.b == 1`, true},
		{`context.l[0].missing == 1`, true},
		{`{"k": 1}[context.s] == 1`, true},
		{`context.s.x == 1`, true}, // CEL cannot select on a string: it has no such key
		{`context.l[5] == 1`, false},
		{`context.l.x == 1`, false},
		{`context.s > 1`, false},
		{`int(context.s) == 1`, false},
	} {
		p, err := CompileExpression(tc.expr, Predicate, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		act := &activation{context: celtypes.DefaultTypeAdapter.NativeToValue(c.Attributes)}
		_, err = p.eval(t.Context(), act, NewBudget())
		if err == nil {
			t.Errorf("%s: no error", tc.expr)
			continue
		}
		if errors.Is(err, errAbsentKey) != tc.absent {
			t.Errorf("%s: %v, absent key %v", tc.expr, err, tc.absent)
		}
	}
}

// One budget serves a whole request: a flag's rules, and every flag of a
// bulk evaluation.
func TestBudgetSpansARequest(t *testing.T) {
	// About 700,000 units per evaluation: builds a 2.7 MB string.
	costly := `context.s.replace("a", "` + strings.Repeat("b", 160) + `") != ""`
	if _, err := CompileExpression(costly, Predicate, false); err != nil {
		t.Fatal(err)
	}
	c := ctx(t, maxString("s", 'a'))
	flag := func(name string, rules int) (*v1beta1.Flag, *Compiled) {
		f := testFlag()
		f.Name, f.UID = name, types.UID(name)
		f.Spec.Rules = nil
		for i := 0; i < rules; i++ {
			f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: "!(" + costly + ")", Variant: "on"})
		}
		return f, CompileFlag(f, lookup())
	}

	// A flag whose rules together cost more than the budget: every rule up
	// to the budget runs, then the answer is ERROR/GENERAL.
	many, manyCompiled := flag("many", 20)
	res := manyCompiled.Evaluate(t.Context(), many, nil, Request{Context: c, Now: now})
	if res.Reason != ReasonError || res.ErrorCode != ErrorGeneral || !strings.Contains(res.ErrorMessage, "cost budget") {
		t.Fatalf("%+v", res)
	}
	if res.Metadata.Rule == "r0" || res.Metadata.Rule == "r19" {
		t.Errorf("the budget ran out at rule %s", res.Metadata.Rule)
	}

	// Flags that each fit the budget share one across a bulk request.
	few, fewCompiled := flag("few", 4)
	if res := fewCompiled.Evaluate(t.Context(), few, nil, Request{Context: c, Now: now}); res.Reason != ReasonDefault {
		t.Fatalf("a flag within the budget: %+v", res)
	}
	shared := NewBudget()
	var reasons []string
	for range 5 {
		res := fewCompiled.Evaluate(t.Context(), few, nil, Request{Context: c, Now: now, Budget: shared})
		reasons = append(reasons, res.Reason+res.ErrorCode)
	}
	if got := strings.Join(reasons, ","); got != "DEFAULT,DEFAULT,DEFAULT,ERRORGENERAL,ERRORGENERAL" {
		t.Errorf("five flags of 4 rules on one budget: %s", got)
	}
	// A flag without rules needs no budget.
	static := testFlag()
	static.Spec.Rules = nil
	if res := CompileFlag(static, lookup()).Evaluate(t.Context(), static, nil, Request{Context: c, Now: now, Budget: shared}); res.Reason != ReasonStatic {
		t.Errorf("static flag after the budget: %+v", res)
	}
}

// A request that ends stops its evaluation: before the next expression, and
// inside a loop.
func TestEvaluationStopsWithTheRequest(t *testing.T) {
	f := testFlag()
	f.Spec.Rules = []v1beta1.Rule{{Name: "loop", When: `context.xs.all(x, x == 1)`, Variant: "on"}}
	compiled := CompileFlag(f, lookup())
	c := ctx(t, maxList("xs", "1"))

	done, cancel := context.WithCancel(t.Context())
	cancel()
	res := compiled.Evaluate(done, f, nil, Request{Context: c, Now: now})
	if res.Reason != ReasonError || res.ErrorCode != ErrorGeneral || !strings.Contains(res.ErrorMessage, "context canceled") {
		t.Errorf("cancelled before: %+v", res)
	}

	// The loop takes ~150 ms; the request ends 10 ms in.
	running, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	res = compiled.Evaluate(running, f, nil, Request{Context: c, Now: now})
	if took := time.Since(start); took > 100*time.Millisecond && !raceEnabled {
		t.Errorf("stopped after %s", took)
	}
	if res.Reason != ReasonError || res.ErrorCode != ErrorGeneral || !strings.Contains(res.ErrorMessage, "deadline exceeded") {
		t.Errorf("cancelled while running: %+v", res)
	}
}

// Loops stop at the request's time limit, which cost alone would not
// enforce: CEL's runtime cost tracking makes a loop over n elements take
// time in n² while it is charged n.
func TestLoopsStopAtTheTimeLimit(t *testing.T) {
	f := testFlag()
	// Estimated well within the limit; takes seconds.
	expr := `lists.range(30000).all(x, x >= 0)`
	if _, err := CompileExpression(expr, Predicate, false); err != nil {
		t.Fatal(err)
	}
	f.Spec.Rules = []v1beta1.Rule{{Name: "slow", When: expr, Variant: "on"}}
	compiled := CompileFlag(f, lookup())
	budget := &Budget{remaining: RequestCostBudget, timeLimit: 50 * time.Millisecond}
	start := time.Now()
	res := compiled.Evaluate(t.Context(), f, nil, Request{Now: now, Budget: budget})
	if took := time.Since(start); took > time.Second {
		t.Errorf("stopped after %s", took)
	}
	if res.Reason != ReasonError || res.ErrorCode != ErrorGeneral || !strings.Contains(res.ErrorMessage, "time limit") {
		t.Errorf("%+v", res)
	}
	// And the request's later expressions do not start.
	res = compiled.Evaluate(t.Context(), f, nil, Request{Now: now, Budget: budget})
	if !strings.Contains(res.ErrorMessage, "time limit") {
		t.Errorf("after the time limit: %+v", res)
	}
}

// The engine lands every flagd vector in flagd's variant, bucketBy ones
// through a real CEL expression.
func TestEvaluateMatchesFlagd(t *testing.T) {
	for i, v := range loadFlagdVectors(t) {
		f := &v1beta1.Flag{
			ObjectMeta: metav1.ObjectMeta{Name: v.FlagKey, UID: "u"},
			Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeString, State: v1beta1.FlagStateEnabled,
				Rules: []v1beta1.Rule{{Name: "split", Rollout: &v1beta1.Rollout{BucketBy: v.BucketBy, Distribution: v.Distribution}}}},
		}
		for _, d := range v.Distribution {
			f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: d.Variant, Value: js(string(d.Variant))})
		}
		attrs := v.Context
		if attrs == nil {
			attrs = map[string]any{"targetingKey": v.TargetingKey}
		}
		raw, _ := json.Marshal(attrs)
		res := CompileFlag(f, lookup()).Evaluate(t.Context(), f, nil, Request{Context: ctx(t, string(raw)), Now: now})
		if res.Reason != ReasonSplit || res.Variant != v.Variant {
			t.Errorf("vector %d: %+v (%s), flagd says %s", i, res, res.ErrorMessage, v.Variant)
		}
	}
}

func TestCompileExpression(t *testing.T) {
	for _, tc := range []struct {
		expr   string
		kind   ExpressionKind
		stored bool
		err    string
	}{
		{expr: `context.plan == "enterprise"`, kind: Predicate},
		{expr: `context.email`, kind: BucketKey},
		{expr: `targetingKey + "/" + flagKey`, kind: BucketKey},
		{expr: `context.plan ==`, kind: Predicate, err: "compilation failed"},
		{expr: `unknownVar == 1`, kind: Predicate, err: "undeclared reference"},
		{expr: `"a string"`, kind: Predicate, err: "must evaluate to bool"},
		{expr: `true`, kind: BucketKey, err: "must evaluate to string"},
		// Unbounded nested loops over the context are estimated against its cap.
		{expr: `context.xs.all(a, context.xs.all(b, context.xs.all(c, a == b && b == c)))`, kind: Predicate, err: "exceeds the limit"},
		// ... and accepted leniently once stored.
		{expr: `context.xs.all(a, context.xs.all(b, context.xs.all(c, a == b && b == c)))`, kind: Predicate, stored: true},
		{expr: `context.tags.exists(t, t == "beta")`, kind: Predicate},
	} {
		_, err := CompileExpression(tc.expr, tc.kind, tc.stored)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.expr, err, tc.err)
		}
	}
}

func TestCacheRecompilesOnChange(t *testing.T) {
	cache := NewCache()
	f := testFlag()
	seg := employees()
	segs := lookup(seg)
	first := cache.Get(f, segs)
	if cache.Get(f, segs) != first {
		t.Fatal("unchanged flag was recompiled")
	}
	seg.Generation = 2
	second := cache.Get(f, segs)
	if second == first {
		t.Fatal("segment generation change did not recompile")
	}
	f.Generation = 4
	if cache.Get(f, segs) == second {
		t.Fatal("flag generation change did not recompile")
	}
	third := cache.Get(f, lookup())
	if cache.Get(f, lookup()) != third {
		t.Fatal("a still-missing segment recompiled every time")
	}
	if cache.Get(f, segs) == third {
		t.Fatal("a segment appearing did not recompile")
	}
	cache.Forget(f.UID)
	if cache.Len() != 0 {
		t.Fatal("Forget kept the entry")
	}
}

func valueJSON(v *v1beta1.JSON) string {
	if v == nil {
		return ""
	}
	return string(v.Raw)
}
