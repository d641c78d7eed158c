package validation

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// acceptAll stands in for the engine's compiler, which this package cannot
// import; the registry's strategy tests run the real one.
func acceptAll(*field.Path, string, ExpressionKind, bool) field.ErrorList { return nil }

func validFlag() *flagpole.Flag {
	return &flagpole.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "new-checkout", Namespace: "default"},
		Spec: flagpole.FlagSpec{
			Type:  flagpole.FlagTypeBoolean,
			State: flagpole.FlagStateEnabled,
			Variants: []flagpole.Variant{
				{Name: "on", Value: flagpole.JSON{Raw: []byte("true")}},
				{Name: "off", Value: flagpole.JSON{Raw: []byte("false")}},
			},
			DefaultVariant: "off",
			Rules: []flagpole.Rule{
				{Name: "staff", Segments: []string{"employees"}, When: `context.plan == "enterprise"`, Variant: "on"},
				{Name: "gradual", Rollout: &flagpole.Rollout{Distribution: []flagpole.WeightedVariant{{Variant: "on", Weight: 10}, {Variant: "off", Weight: 90}}}},
			},
		},
	}
}

// expectErrors asserts that errs holds exactly the wanted "type path" pairs
// and that each detail contains its wanted fragment.
func expectErrors(t *testing.T, errs field.ErrorList, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, e := range errs {
		got[fmt.Sprintf("%s %s", string(e.Type), e.Field)] = e.Detail
	}
	for k, fragment := range want {
		detail, ok := got[k]
		if !ok {
			t.Errorf("missing error %q; got %v", k, errs)
			continue
		}
		if !strings.Contains(detail, fragment) {
			t.Errorf("error %q: detail %q does not contain %q", k, detail, fragment)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected error %q: %s", k, got[k])
		}
	}
}

func TestValidateFlag(t *testing.T) {
	tooMany := func(n int) []flagpole.Variant {
		vs := make([]flagpole.Variant, n)
		for i := range vs {
			vs[i] = flagpole.Variant{Name: fmt.Sprintf("v%d", i), Value: flagpole.JSON{Raw: []byte("true")}}
		}
		return vs
	}
	tests := []struct {
		name   string
		mutate func(f *flagpole.Flag)
		want   map[string]string
	}{
		{name: "valid", mutate: func(*flagpole.Flag) {}},
		{name: "lifecycle kind", mutate: func(f *flagpole.Flag) {
			f.Spec.Lifecycle = &flagpole.FlagLifecycle{Kind: flagpole.FlagLifecycleKillSwitch}
		}},
		{name: "lifecycle without kind", mutate: func(f *flagpole.Flag) { f.Spec.Lifecycle = &flagpole.FlagLifecycle{} },
			want: map[string]string{"FieldValueRequired spec.lifecycle.kind": "Release, Experiment, Operational, KillSwitch, Permission"}},
		{name: "lifecycle kind unsupported", mutate: func(f *flagpole.Flag) { f.Spec.Lifecycle = &flagpole.FlagLifecycle{Kind: "Temporary"} },
			want: map[string]string{"FieldValueNotSupported spec.lifecycle.kind": "Release"}},
		{name: "name must be a DNS subdomain", mutate: func(f *flagpole.Flag) { f.Name = "New_Checkout" },
			want: map[string]string{"FieldValueInvalid metadata.name": "subdomain"}},
		{name: "namespace required", mutate: func(f *flagpole.Flag) { f.Namespace = "" },
			want: map[string]string{"FieldValueRequired metadata.namespace": ""}},
		{name: "type required", mutate: func(f *flagpole.Flag) { f.Spec.Type = "" },
			want: map[string]string{"FieldValueRequired spec.type": "Boolean"}},
		{name: "type unsupported", mutate: func(f *flagpole.Flag) { f.Spec.Type = "Integer" },
			want: map[string]string{"FieldValueNotSupported spec.type": "Boolean"}},
		{name: "state unsupported", mutate: func(f *flagpole.Flag) { f.Spec.State = "Off" },
			want: map[string]string{"FieldValueNotSupported spec.state": "Enabled"}},
		{name: "no variants", mutate: func(f *flagpole.Flag) { f.Spec.Variants = nil; f.Spec.DefaultVariant = ""; f.Spec.Rules = nil },
			want: map[string]string{"FieldValueRequired spec.variants": "at least one"}},
		{name: "too many variants", mutate: func(f *flagpole.Flag) {
			f.Spec.Variants = tooMany(MaxVariants + 1)
			f.Spec.DefaultVariant = "v0"
			f.Spec.Rules = nil
		}, want: map[string]string{"FieldValueTooMany spec.variants": ""}},
		{name: "duplicate variant", mutate: func(f *flagpole.Flag) { f.Spec.Variants[1].Name = "on" },
			want: map[string]string{
				"FieldValueDuplicate spec.variants[1].name":                       "",
				"FieldValueInvalid spec.defaultVariant":                           "must name one of spec.variants",
				"FieldValueInvalid spec.rules[1].rollout.distribution[1].variant": "must name one of spec.variants",
			}},
		{name: "bad variant name", mutate: func(f *flagpole.Flag) {
			f.Spec.Variants = append(f.Spec.Variants, flagpole.Variant{Name: "-x", Value: flagpole.JSON{Raw: []byte("true")}})
		},
			want: map[string]string{"FieldValueInvalid spec.variants[2].name": "letters, digits"}},
		{name: "variant name sent as YAML boolean", mutate: func(f *flagpole.Flag) { f.Spec.Variants[0].Name = flagpole.BooleanVariantName(true) },
			want: map[string]string{
				"FieldValueInvalid spec.variants[0].name":                         "quote the value",
				"FieldValueInvalid spec.rules[0].variant":                         "must name one of spec.variants",
				"FieldValueInvalid spec.rules[1].rollout.distribution[0].variant": "must name one of spec.variants",
			}},
		{name: "defaultVariant sent as YAML boolean", mutate: func(f *flagpole.Flag) { f.Spec.DefaultVariant = flagpole.BooleanVariantName(false) },
			want: map[string]string{"FieldValueInvalid spec.defaultVariant": "YAML 1.1 reads unquoted on/off/yes/no"}},
		{name: "defaultVariant names no variant", mutate: func(f *flagpole.Flag) { f.Spec.DefaultVariant = "maybe" },
			want: map[string]string{"FieldValueInvalid spec.defaultVariant": "(off, on)"}},
		{name: "value missing", mutate: func(f *flagpole.Flag) { f.Spec.Variants[0].Value = flagpole.JSON{} },
			want: map[string]string{"FieldValueRequired spec.variants[0].value": "Boolean"}},
		{name: "value of wrong type", mutate: func(f *flagpole.Flag) { f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`"true"`)} },
			want: map[string]string{"FieldValueInvalid spec.variants[0].value": "must be a boolean, not a string"}},
		{name: "string flag with boolean value gets the quoting hint", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeString
			f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`"blue"`)}
		}, want: map[string]string{"FieldValueInvalid spec.variants[1].value": "quote the value"}},
		{name: "number flag", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeNumber
			f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`1.5`)}
			f.Spec.Variants[1].Value = flagpole.JSON{Raw: []byte(`{}`)}
		}, want: map[string]string{"FieldValueInvalid spec.variants[1].value": "must be a number, not a object"}},
		{name: "object flag accepts objects and arrays", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeObject
			f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`{"a":1}`)}
			f.Spec.Variants[1].Value = flagpole.JSON{Raw: []byte(`[1,2]`)}
		}},
		{name: "object flag rejects scalars", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeObject
			f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`{"a":1}`)}
		}, want: map[string]string{"FieldValueInvalid spec.variants[1].value": "object or array"}},
		{name: "invalid JSON value", mutate: func(f *flagpole.Flag) { f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`{`)} },
			want: map[string]string{"FieldValueInvalid spec.variants[0].value": "JSON value"}},
		{name: "value too large", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeString
			f.Spec.Variants[0].Value = flagpole.JSON{Raw: []byte(`"` + strings.Repeat("x", MaxVariantValueBytes) + `"`)}
			f.Spec.Variants[1].Value = flagpole.JSON{Raw: []byte(`"y"`)}
		}, want: map[string]string{"FieldValueTooLong spec.variants[0].value": ""}},
		{name: "rule without variant or rollout", mutate: func(f *flagpole.Flag) { f.Spec.Rules[0].Variant = "" },
			want: map[string]string{"FieldValueRequired spec.rules[0]": "exactly one of variant and rollout"}},
		{name: "rule with both variant and rollout", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Variant = "on" },
			want: map[string]string{"FieldValueForbidden spec.rules[1].rollout": "exactly one"}},
		{name: "rule names unique", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Name = "staff" },
			want: map[string]string{"FieldValueDuplicate spec.rules[1].name": ""}},
		{name: "rule name required", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Name = "" },
			want: map[string]string{"FieldValueRequired spec.rules[1].name": ""}},
		{name: "rule variant unknown", mutate: func(f *flagpole.Flag) { f.Spec.Rules[0].Variant = "maybe" },
			want: map[string]string{"FieldValueInvalid spec.rules[0].variant": "must name one of spec.variants"}},
		{name: "segment names are DNS subdomains", mutate: func(f *flagpole.Flag) { f.Spec.Rules[0].Segments = []string{"Employees"} },
			want: map[string]string{"FieldValueInvalid spec.rules[0].segments[0]": "subdomain"}},
		{name: "too many segments", mutate: func(f *flagpole.Flag) {
			f.Spec.Rules[0].Segments = make([]string, MaxSegmentsPerRule+1)
			for i := range f.Spec.Rules[0].Segments {
				f.Spec.Rules[0].Segments[i] = fmt.Sprintf("s%d", i)
			}
		},
			want: map[string]string{"FieldValueTooMany spec.rules[0].segments": ""}},
		{name: "negative weight", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Distribution[0].Weight = -1 },
			want: map[string]string{"FieldValueInvalid spec.rules[1].rollout.distribution[0].weight": "non-negative"}},
		{name: "weights sum to zero", mutate: func(f *flagpole.Flag) {
			f.Spec.Rules[1].Rollout.Distribution[0].Weight = 0
			f.Spec.Rules[1].Rollout.Distribution[1].Weight = 0
		}, want: map[string]string{"FieldValueInvalid spec.rules[1].rollout.distribution": "more than zero"}},
		{name: "weights overflow int32", mutate: func(f *flagpole.Flag) {
			f.Spec.Rules[1].Rollout.Distribution[0].Weight = 1 << 30
			f.Spec.Rules[1].Rollout.Distribution[1].Weight = 1 << 30
		}, want: map[string]string{"FieldValueInvalid spec.rules[1].rollout.distribution": "at most 2147483647"}},
		{name: "rollout variant unknown", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Distribution[1].Variant = "maybe" },
			want: map[string]string{"FieldValueInvalid spec.rules[1].rollout.distribution[1].variant": "must name one of"}},
		{name: "rollout variant listed twice", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Distribution[1].Variant = "on" },
			want: map[string]string{"FieldValueDuplicate spec.rules[1].rollout.distribution[1].variant": ""}},
		{name: "rollout with flagd v1 bucketing", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Bucketing = flagpole.RolloutBucketingFlagdV1 }},
		{name: "rollout with flagd v2 bucketing", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Bucketing = flagpole.RolloutBucketingFlagdV2 }},
		{name: "rollout with unknown bucketing", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Bucketing = "flagdv2" },
			want: map[string]string{"FieldValueNotSupported spec.rules[1].rollout.bucketing": `"FlagdV2", "FlagdV1"`}},
		{name: "empty distribution", mutate: func(f *flagpole.Flag) { f.Spec.Rules[1].Rollout.Distribution = nil },
			want: map[string]string{"FieldValueRequired spec.rules[1].rollout.distribution": ""}},
		{name: "too many rules", mutate: func(f *flagpole.Flag) {
			f.Spec.Rules = nil
			for i := 0; i <= MaxRules; i++ {
				f.Spec.Rules = append(f.Spec.Rules, flagpole.Rule{Name: fmt.Sprintf("r%d", i), When: "true", Variant: "on"})
			}
		}, want: map[string]string{"FieldValueTooMany spec.rules": ""}},
		{name: "expression too long", mutate: func(f *flagpole.Flag) { f.Spec.Rules[0].When = strings.Repeat("x", MaxExpressionLength+1) },
			want: map[string]string{"FieldValueTooLong spec.rules[0].when": ""}},
		{name: "description too long", mutate: func(f *flagpole.Flag) { f.Spec.Description = strings.Repeat("x", MaxDescriptionLength+1) },
			want: map[string]string{"FieldValueTooLong spec.description": ""}},
		{name: "resourceVersion on create", mutate: func(f *flagpole.Flag) { f.ResourceVersion = "5" },
			want: map[string]string{"FieldValueForbidden metadata.resourceVersion": "must not be set on create"}},
		{name: "value nested too deep", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeObject
			deep := strings.Repeat("[", flagpole.MaxJSONDepth+1) + strings.Repeat("]", flagpole.MaxJSONDepth+1)
			f.Spec.Variants = []flagpole.Variant{{Name: "on", Value: flagpole.JSON{Raw: []byte(deep)}}, {Name: "off", Value: flagpole.JSON{Raw: []byte("{}")}}}
		}, want: map[string]string{"FieldValueInvalid spec.variants[0].value": fmt.Sprintf("at most %d levels", flagpole.MaxJSONDepth)}},
		{name: "value at the depth limit", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeObject
			deep := strings.Repeat("[", flagpole.MaxJSONDepth) + strings.Repeat("]", flagpole.MaxJSONDepth)
			f.Spec.Variants = []flagpole.Variant{{Name: "on", Value: flagpole.JSON{Raw: []byte(deep)}}, {Name: "off", Value: flagpole.JSON{Raw: []byte("{}")}}}
		}},
		{name: "number outside float64", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeNumber
			f.Spec.Variants = []flagpole.Variant{{Name: "on", Value: flagpole.JSON{Raw: []byte("1e400")}}, {Name: "off", Value: flagpole.JSON{Raw: []byte("0")}}}
		}, want: map[string]string{"FieldValueInvalid spec.variants[0].value": "outside the range"}},
		{name: "values too large together", mutate: func(f *flagpole.Flag) {
			f.Spec.Type = flagpole.FlagTypeString
			f.Spec.Variants = nil
			value := []byte(`"` + strings.Repeat("x", MaxVariantValueBytes-2) + `"`)
			for i := 0; i <= MaxVariantValuesBytes/MaxVariantValueBytes; i++ {
				f.Spec.Variants = append(f.Spec.Variants, flagpole.Variant{Name: fmt.Sprint("v", i), Value: flagpole.JSON{Raw: value}})
			}
			f.Spec.DefaultVariant = "v0"
			f.Spec.Rules = nil
		}, want: map[string]string{"FieldValueInvalid spec.variants": fmt.Sprintf("at most %d bytes", MaxVariantValuesBytes)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := validFlag()
			tc.mutate(f)
			expectErrors(t, ValidateFlag(f, acceptAll), tc.want)
		})
	}
}

func TestValidateFlagUpdate(t *testing.T) {
	old := validFlag()
	old.ResourceVersion = "1"
	f := old.DeepCopy()
	f.Spec.State = flagpole.FlagStateDisabled
	expectErrors(t, ValidateFlagUpdate(f, old, acceptAll), nil)

	f = old.DeepCopy()
	f.Name = "other"
	f.Spec.DefaultVariant = "nope"
	expectErrors(t, ValidateFlagUpdate(f, old, acceptAll), map[string]string{
		"FieldValueInvalid metadata.name":       "immutable",
		"FieldValueInvalid spec.defaultVariant": "must name one of",
	})
}

// The expression hook sees every expression with its path, and learns which
// ones are unchanged from the stored object.
func TestExpressionHook(t *testing.T) {
	type call struct {
		path   string
		kind   ExpressionKind
		stored bool
	}
	var calls []call
	compile := func(p *field.Path, expr string, kind ExpressionKind, stored bool) field.ErrorList {
		calls = append(calls, call{p.String(), kind, stored})
		if expr == "bad" {
			return field.ErrorList{field.Invalid(p, expr, "does not compile")}
		}
		return nil
	}

	old := validFlag()
	old.ResourceVersion = "1"
	old.Spec.Rules[1].Rollout.BucketBy = "context.org"
	f := old.DeepCopy()
	f.Spec.Rules[0].When = "bad"
	errs := ValidateFlagUpdate(f, old, compile)
	expectErrors(t, errs, map[string]string{"FieldValueInvalid spec.rules[0].when": "does not compile"})
	want := []call{
		{"spec.rules[0].when", ExpressionRuleWhen, false},
		{"spec.rules[1].rollout.bucketBy", ExpressionBucketBy, true},
	}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}

	calls = nil
	seg := &flagpole.Segment{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "default", ResourceVersion: "1"}, Spec: flagpole.SegmentSpec{When: "true"}}
	expectErrors(t, ValidateSegmentUpdate(seg, seg.DeepCopy(), compile), nil)
	if want := []call{{"spec.when", ExpressionSegmentWhen, true}}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("calls = %v, want %v", calls, want)
	}
}

func TestValidateFlagStatusUpdate(t *testing.T) {
	old := validFlag()
	old.ResourceVersion = "1"
	f := old.DeepCopy()
	f.Status.ObservedGeneration = 1
	f.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Resolved", LastTransitionTime: metav1.Now()}}
	expectErrors(t, ValidateFlagStatusUpdate(f, old), nil)

	f.Status.ObservedGeneration = -1
	f.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: "Maybe", Reason: "not a reason!", LastTransitionTime: metav1.Now()}}
	expectErrors(t, ValidateFlagStatusUpdate(f, old), map[string]string{
		"FieldValueInvalid status.observedGeneration":        "",
		"FieldValueNotSupported status.conditions[0].status": "",
		"FieldValueInvalid status.conditions[0].reason":      "",
	})
}

func TestValidateSegment(t *testing.T) {
	valid := func() *flagpole.Segment {
		return &flagpole.Segment{
			ObjectMeta: metav1.ObjectMeta{Name: "employees", Namespace: "default"},
			Spec:       flagpole.SegmentSpec{When: `context.email.endsWith("@example.com")`, Include: []string{"a", "b"}, Exclude: []string{"c"}},
		}
	}
	tests := []struct {
		name   string
		mutate func(s *flagpole.Segment)
		want   map[string]string
	}{
		{name: "valid", mutate: func(*flagpole.Segment) {}},
		{name: "bad name", mutate: func(s *flagpole.Segment) { s.Name = "Employees" },
			want: map[string]string{"FieldValueInvalid metadata.name": "subdomain"}},
		{name: "duplicate include", mutate: func(s *flagpole.Segment) { s.Spec.Include = []string{"a", "a"} },
			want: map[string]string{"FieldValueDuplicate spec.include[1]": ""}},
		{name: "empty exclude key", mutate: func(s *flagpole.Segment) { s.Spec.Exclude = []string{""} },
			want: map[string]string{"FieldValueRequired spec.exclude[0]": ""}},
		{name: "key too long", mutate: func(s *flagpole.Segment) { s.Spec.Include = []string{strings.Repeat("k", MaxTargetingKeyLength+1)} },
			want: map[string]string{"FieldValueTooLong spec.include[0]": ""}},
		{name: "too many keys", mutate: func(s *flagpole.Segment) {
			s.Spec.Include = make([]string, MaxSegmentKeys)
			for i := range s.Spec.Include {
				s.Spec.Include[i] = fmt.Sprint(i)
			}
		}, want: map[string]string{"FieldValueInvalid spec.include": "at most 10000"}},
		{name: "keys too large together", mutate: func(s *flagpole.Segment) {
			s.Spec.Include = make([]string, MaxSegmentKeysBytes/MaxTargetingKeyLength+1)
			for i := range s.Spec.Include {
				s.Spec.Include[i] = fmt.Sprintf("%05d", i) + strings.Repeat("k", MaxTargetingKeyLength-5)
			}
		}, want: map[string]string{"FieldValueInvalid spec.include": fmt.Sprintf("at most %d bytes", MaxSegmentKeysBytes)}},
		{name: "resourceVersion on create", mutate: func(s *flagpole.Segment) { s.ResourceVersion = "abc" },
			want: map[string]string{"FieldValueForbidden metadata.resourceVersion": ""}},
		{name: "when too long", mutate: func(s *flagpole.Segment) { s.Spec.When = strings.Repeat("x", MaxExpressionLength+1) },
			want: map[string]string{"FieldValueTooLong spec.when": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := valid()
			tc.mutate(s)
			expectErrors(t, ValidateSegment(s, acceptAll), tc.want)
		})
	}
}

// A report's counts, reasons and names are checked before any flag is
// looked up: what could not have been evaluated is refused whole.
func TestValidateUsageReport(t *testing.T) {
	valid := func() *flagpole.UsageReport {
		return &flagpole.UsageReport{Spec: flagpole.UsageReportSpec{Flags: []flagpole.FlagUsageReport{{
			Name:     "new-checkout",
			Reasons:  []flagpole.ReasonCount{{Reason: flagpole.ReasonSplit, Count: 7}, {Reason: flagpole.ReasonError, Count: 1}},
			Variants: []flagpole.VariantCount{{Name: "on", Count: 3}, {Name: "off", Count: 4}},
		}}}}
	}
	manyFlags := valid()
	for i := 0; i < MaxUsageReportFlags; i++ {
		manyFlags.Spec.Flags = append(manyFlags.Spec.Flags, flagpole.FlagUsageReport{Name: fmt.Sprintf("f%d", i), Reasons: []flagpole.ReasonCount{{Reason: flagpole.ReasonStatic, Count: 1}}})
	}
	for _, tc := range []struct {
		name   string
		report *flagpole.UsageReport
		mutate func(*flagpole.FlagUsageReport)
		want   map[string]string
	}{
		{name: "valid", mutate: func(*flagpole.FlagUsageReport) {}},
		{name: "negative count", mutate: func(f *flagpole.FlagUsageReport) { f.Reasons[0].Count = -5 },
			want: map[string]string{"FieldValueInvalid spec.flags[0].reasons[0].count": "at least 1"}},
		{name: "a billion evaluations", mutate: func(f *flagpole.FlagUsageReport) { f.Reasons[0].Count = 1_000_000_000 },
			want: map[string]string{"FieldValueInvalid spec.flags[0].reasons[0].count": "at most 100000000"}},
		{name: "more variants served than evaluations", mutate: func(f *flagpole.FlagUsageReport) { f.Variants[1].Count = 40 },
			want: map[string]string{"FieldValueInvalid spec.flags[0].variants": "more than the 8 evaluations"}},
		{name: "unknown reason", mutate: func(f *flagpole.FlagUsageReport) { f.Reasons[0].Reason = "CACHED" },
			want: map[string]string{"FieldValueNotSupported spec.flags[0].reasons[0].reason": "STATIC"}},
		{name: "no counts", mutate: func(f *flagpole.FlagUsageReport) { f.Reasons = nil; f.Variants = nil },
			want: map[string]string{"FieldValueRequired spec.flags[0].reasons": "at least one"}},
		{name: "another namespace's flag by path", mutate: func(f *flagpole.FlagUsageReport) { f.Name = "other/new-checkout" },
			want: map[string]string{"FieldValueInvalid spec.flags[0].name": "subdomain"}},
		{name: "duplicate variant", mutate: func(f *flagpole.FlagUsageReport) { f.Variants[1].Name = "on" },
			want: map[string]string{"FieldValueDuplicate spec.flags[0].variants[1].name": ""}},
		{name: "too many flags", report: manyFlags, mutate: func(*flagpole.FlagUsageReport) {},
			want: map[string]string{"FieldValueTooMany spec.flags": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.report
			if r == nil {
				r = valid()
			}
			tc.mutate(&r.Spec.Flags[0])
			expectErrors(t, ValidateUsageReport(r), tc.want)
		})
	}
}
