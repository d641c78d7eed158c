package evaluation

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
		{name: "missing context key is a runtime error",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "plan", When: `context.plan == "x"`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonError, code: ErrorGeneral, rule: "plan"}},
		{name: "expression that does not compile is PARSE_ERROR",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "broken", When: `context.plan ==`, Variant: "on"}
			},
			context: `{}`,
			want:    want{reason: ReasonError, code: ErrorParse, rule: "broken"}},
		{name: "runtime cost limit is ERROR/GENERAL",
			flag: func(f *v1beta1.Flag) {
				f.Spec.Rules[0] = v1beta1.Rule{Name: "costly", Variant: "on",
					When: `context.xs.all(a, context.xs.all(b, context.xs.all(c, a + b + c >= 0)))`}
			},
			context: `{"xs":[` + strings.Repeat("1,", 399) + `1]}`,
			want:    want{reason: ReasonError, code: ErrorGeneral, rule: "costly"},
			message: "cost limit"},
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
			res := c.Evaluate(f, tc.overrides, Request{Context: ctx(t, tc.context), ExpectedType: tc.expected, Now: now})
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
	for _, raw := range []string{`[1]`, `"s"`, `{"targetingKey": 7}`, `{"a":1} {}`, `{`, `{"targetingKey":"` + strings.Repeat("k", MaxTargetingKeyLength+1) + `"}`,
		`{"pad":"` + strings.Repeat("x", MaxContextBytes) + `"}`} {
		_, err := ParseContext([]byte(raw))
		if err == nil {
			t.Errorf("%.40s: accepted", raw)
			continue
		}
		if r := InvalidContext("f", err); r.ErrorCode != ErrorInvalidContext {
			t.Errorf("%+v", r)
		}
	}
	c, err := ParseContext([]byte(`{"targetingKey":"u","n":3,"f":1.5,"big":1e400}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Attributes["n"] != int64(3) || c.Attributes["f"] != 1.5 || !c.HasTargetingKey || c.TargetingKey != "u" {
		t.Errorf("parsed %+v", c)
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
		res := CompileFlag(f, lookup()).Evaluate(f, nil, Request{Context: ctx(t, string(raw)), Now: now})
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
