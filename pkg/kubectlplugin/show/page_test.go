package show

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func TestRolloutBars(t *testing.T) {
	bars := RolloutBars([]v1beta1.WeightedVariant{{Variant: "a", Weight: 1}, {Variant: "b", Weight: 2}, {Variant: "c", Weight: 0}})
	want := []Bar{
		{"a", strings.Repeat("█", 7) + strings.Repeat("░", 13), "33.33% (weight 1)"},
		{"b", strings.Repeat("█", 13) + strings.Repeat("░", 7), "66.67% (weight 2)"},
		{"c", strings.Repeat("░", 20), "0% (weight 0)"},
	}
	for i := range want {
		if bars[i] != want[i] {
			t.Errorf("bar %d: %+v, want %+v", i, bars[i], want[i])
		}
	}
	if RolloutBars([]v1beta1.WeightedVariant{{Variant: "a"}})[0].Percent != "0% (weight 0)" {
		t.Error("all weights zero")
	}
}

func TestPage(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	expires := metav1.NewTime(now.Add(29*time.Minute + 30*time.Second))
	gone := metav1.NewTime(now.Add(-time.Minute))
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: "shop", Generation: 4, ResourceVersion: "77"},
		Spec: v1beta1.FlagSpec{
			Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateDisabled, DefaultVariant: "off",
			Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
			Rules: []v1beta1.Rule{
				{Name: "staff", Segments: []string{"employees", "ghosts"}, When: "context.plan == \"x\"", Variant: "on"},
				{Name: "gradual", Rollout: &v1beta1.Rollout{BucketBy: "context.org", Bucketing: v1beta1.RolloutBucketingFlagdV1,
					Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 1}, {Variant: "off", Weight: 3}}}},
			},
		},
		Status: v1beta1.FlagStatus{
			Conditions: []metav1.Condition{
				{Type: "Ready", Status: "False", Reason: "SegmentNotFound", Message: "ghosts", ObservedGeneration: 3},
				{Type: "Stale", Status: "True", Reason: "SingleVariant", Message: "served only off for 7d"},
			},
			LastChange: &v1beta1.FlagChange{User: "dave", Time: metav1.NewTime(now.Add(-3 * time.Hour)), Generation: 4},
			Usage: &v1beta1.FlagUsage{
				LastEvaluated: ptr.To(metav1.NewTime(now.Add(-2 * time.Minute))),
				CountingSince: ptr.To(metav1.NewTime(now.Add(-30 * 24 * time.Hour))),
				Variants:      []v1beta1.VariantUsage{{Name: "off", LastServed: metav1.NewTime(now.Add(-2 * time.Minute))}},
				Windows: []v1beta1.UsageWindow{{Window: "24h", Evaluations: 1200, Errors: 3,
					Variants: []v1beta1.VariantCount{{Name: "off", Count: 1197}}}},
			},
		},
	}
	f.Spec.Lifecycle = &v1beta1.FlagLifecycle{Kind: "Release"}
	p := &Page{Flag: f,
		Segments: map[string]*v1beta1.Segment{"employees": {}, "ghosts": nil},
		Overrides: []v1beta1.FlagOverride{
			{ObjectMeta: metav1.ObjectMeta{Name: "beta"}, Spec: v1beta1.FlagOverrideSpec{Variant: "on", TargetingKeys: []string{"ann", "bob"}}, Status: v1beta1.FlagOverrideStatus{ExpiresAt: &expires}},
			{ObjectMeta: metav1.ObjectMeta{Name: "old"}, Spec: v1beta1.FlagOverrideSpec{Variant: "off"}, Status: v1beta1.FlagOverrideStatus{ExpiresAt: &gone}},
		},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf, now); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		`Flag:\s+shop/checkout`,
		`State:\s+Disabled \(kill switch on: every evaluation answers DISABLED\)`,
		`Default:\s+off = false`,
		`Revision:\s+generation 4, resourceVersion 77`,
		`Lifecycle:\s+Release`,
		`Changed:\s+3h0m0s ago by dave \(generation 4\)|Changed:\s+3h ago by dave \(generation 4\)`,
		`Evaluated:\s+2m0?s? ago \(counted since 2026-11-01T12:00:00Z\)`,
		`last 24h\s+1200 evaluations, 3 errors \(off 1197\)`,
		`off\s+last served 2m0?s? ago`,
		`Stale\s+True\s+SingleVariant\s+served only off for 7d`,
		`segment:\s+employees\n`,
		`segment:\s+ghosts \(does not exist: this rule matches no one\)`,
		`bucket by:\s+context.org`,
		`bucketing:\s+FlagdV1`,
		`on\s+█████░{15} 25% \(weight 1\)`,
		`beta\s+on for ann, bob, expires in 29m`,
		`old\s+off for everyone, expired 60s ago: ignored`,
		`Ready\s+False\s+SegmentNotFound\s+ghosts \(for generation 3\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("page lacks %s:\n%s", want, out)
		}
	}

	forbidden := apierrors.NewForbidden(v1beta1.Resource("flagoverrides"), "", errors.New("no"))
	p = &Page{Flag: f, OverridesErr: forbidden, SegmentsErr: forbidden, Segments: map[string]*v1beta1.Segment{}}
	buf.Reset()
	if err := p.Write(&buf, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Evaluated:") {
		t.Errorf("usage shown with its flag:\n%s", buf.String())
	}
	f.Status.Usage = nil
	buf.Reset()
	if err := p.Write(&buf, now); err != nil || strings.Contains(buf.String(), "Evaluated:") {
		t.Errorf("a server that counts nothing: no usage lines:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "Overrides:   not shown: flagoverrides.flagpole.dev is forbidden") || strings.Contains(buf.String(), "does not exist") {
		t.Errorf("a reader without access to overrides and segments:\n%s", buf.String())
	}
}

// A plan at 50% over red 60 / blue 40 / new 0: new half, the others the
// rest in their proportions.
func TestPlanBars(t *testing.T) {
	plan := &v1beta1.RolloutPlan{Variant: "new"}
	dist := []v1beta1.WeightedVariant{{Variant: "red", Weight: 60}, {Variant: "new", Weight: 0}, {Variant: "blue", Weight: 40}}
	got := PlanBars(plan, dist, 50)
	want := map[string]string{"new": "50%", "red": "30%", "blue": "20%"}
	if len(got) != 3 {
		t.Fatalf("%+v", got)
	}
	for _, b := range got {
		if want[b.Variant] != b.Percent {
			t.Errorf("%s: %s, want %s", b.Variant, b.Percent, want[b.Variant])
		}
	}
	// The distribution already gives new more than the plan: it keeps that.
	dist[1].Weight = 100
	if got := PlanBars(plan, dist, 10); got[0].Percent != "50%" {
		t.Errorf("below what the distribution gives: %+v", got[0])
	}
}
