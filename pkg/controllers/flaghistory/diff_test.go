package flaghistory

import (
	"strings"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func TestDiff(t *testing.T) {
	old := &v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateEnabled, DefaultVariant: "off",
		Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
		Rules:    []v1beta1.Rule{{Name: "gradual", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 10}, {Variant: "off", Weight: 90}}}}}}
	new := old.DeepCopy()
	new.State = v1beta1.FlagStateDisabled
	new.Variants = []v1beta1.Variant{new.Variants[1], new.Variants[0]} // reordered: not a change
	new.Rules[0].Rollout.Distribution[0].Weight = 50
	new.Rules[0].Rollout.Distribution[1].Weight = 50
	new.Owner = "team-checkout"
	got := strings.Join(Diff(old, new), "\n")
	want := strings.Join([]string{
		`+ spec.owner: "team-checkout"`,
		`spec.rules[0].rollout.distribution[0].weight: 10 → 50`,
		`spec.rules[0].rollout.distribution[1].weight: 90 → 50`,
		`spec.state: "Enabled" → "Disabled"`,
	}, "\n")
	if got != want {
		t.Errorf("diff:\n%s\nwant:\n%s", got, want)
	}
	if d := Diff(old, old); len(d) != 0 {
		t.Errorf("no change: %v", d)
	}
	many := old.DeepCopy()
	for i := 0; i < 80; i++ {
		many.Rules = append(many.Rules, v1beta1.Rule{Name: "r", Variant: "on"})
	}
	if d := Diff(old, many); len(d) != maxDiffLines || !strings.HasPrefix(d[len(d)-1], "... and 31 more changes") {
		t.Errorf("a long diff: %d lines, last %q", len(d), d[len(d)-1])
	}
}
