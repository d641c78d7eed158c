package validation

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

func minutes(n int) *metav1.Duration {
	return &metav1.Duration{Duration: time.Duration(n) * time.Minute}
}

func planned(steps ...flagpole.RolloutStep) *flagpole.Flag {
	f := validFlag()
	f.Spec.Rules[1].Rollout.Plan = &flagpole.RolloutPlan{Variant: "on", Steps: steps}
	return f
}

func TestValidatePlan(t *testing.T) {
	q := resource.MustParse
	above, below := q("0.05"), q("0.5")
	const plan = "spec.rules[1].rollout.plan"
	for _, c := range []struct {
		name string
		flag *flagpole.Flag
		want map[string]string
	}{
		{"valid", planned(
			flagpole.RolloutStep{Weight: 1, Duration: minutes(10)},
			flagpole.RolloutStep{Weight: 10, Duration: minutes(30), Guard: &flagpole.RolloutGuard{Query: `sum(rate(errors[5m]))`, AbortAbove: &above}},
			flagpole.RolloutStep{Weight: 50, Approval: true},
			flagpole.RolloutStep{Weight: 100},
		), nil},
		{"no steps", planned(), map[string]string{"FieldValueRequired " + plan + ".steps": "at least one step"}},
		{"weights not rising", planned(
			flagpole.RolloutStep{Weight: 10, Duration: minutes(1)},
			flagpole.RolloutStep{Weight: 10, Duration: minutes(1)},
			flagpole.RolloutStep{Weight: 5},
		), map[string]string{
			"FieldValueInvalid " + plan + ".steps[1].weight": "weights must rise: the step before gives 10",
			"FieldValueInvalid " + plan + ".steps[2].weight": "weights must rise",
		}},
		{"over 100 and zero", planned(
			flagpole.RolloutStep{Weight: 0, Duration: minutes(1)},
			flagpole.RolloutStep{Weight: 101},
		), map[string]string{
			"FieldValueInvalid " + plan + ".steps[0].weight": "from 1 to 100",
			"FieldValueInvalid " + plan + ".steps[1].weight": "from 1 to 100",
		}},
		{"durations under the floor and over the ceiling", planned(
			flagpole.RolloutStep{Weight: 1, Duration: &metav1.Duration{Duration: time.Second}},
			flagpole.RolloutStep{Weight: 2, Duration: &metav1.Duration{Duration: 100 * 24 * time.Hour}},
			flagpole.RolloutStep{Weight: 3},
		), map[string]string{
			"FieldValueInvalid " + plan + ".steps[0].duration": "from 5s to 2160h0m0s",
			"FieldValueInvalid " + plan + ".steps[1].duration": "from 5s",
		}},
		{"a step nothing ends", planned(flagpole.RolloutStep{Weight: 1}, flagpole.RolloutStep{Weight: 2}), map[string]string{
			"FieldValueRequired " + plan + ".steps[0]": "a duration or approval: true",
		}},
		{"duration and approval", planned(flagpole.RolloutStep{Weight: 1, Duration: minutes(1), Approval: true}), map[string]string{
			"FieldValueForbidden " + plan + ".steps[0].approval": "not both",
		}},
		{"a variant the flag lacks", func() *flagpole.Flag {
			f := planned(flagpole.RolloutStep{Weight: 100})
			f.Spec.Rules[1].Rollout.Plan.Variant = "blue"
			return f
		}(), map[string]string{"FieldValueInvalid " + plan + ".variant": "must name one of spec.variants"}},
		{"guards that cannot work", planned(
			flagpole.RolloutStep{Weight: 1, Duration: minutes(1), Guard: &flagpole.RolloutGuard{AbortAbove: &above}},
			flagpole.RolloutStep{Weight: 2, Duration: minutes(1), Guard: &flagpole.RolloutGuard{Query: "up"}},
			flagpole.RolloutStep{Weight: 3, Guard: &flagpole.RolloutGuard{Query: "up", AbortAbove: &above, AbortBelow: &below}},
		), map[string]string{
			"FieldValueRequired " + plan + ".steps[0].guard.query":     "PromQL",
			"FieldValueRequired " + plan + ".steps[1].guard":           "abortAbove, abortBelow or both",
			"FieldValueInvalid " + plan + ".steps[2].guard.abortBelow": "must be below abortAbove (50m)",
		}},
	} {
		t.Run(c.name, func(t *testing.T) { expectErrors(t, ValidateFlag(c.flag, acceptAll), c.want) })
	}
}

func TestValidateRolloutStatus(t *testing.T) {
	old := validFlag()
	old.ResourceVersion = "1"
	f := old.DeepCopy()
	f.Status.Rollouts = []flagpole.RolloutStatus{{Rule: "gradual", Phase: flagpole.RolloutPhaseWaiting, Step: 2, Weight: 50}}
	expectErrors(t, ValidateFlagStatusUpdate(f, old), nil)
	f.Status.Rollouts = []flagpole.RolloutStatus{{Rule: "gradual", Phase: "Sideways", Step: -1, Weight: 101}, {Rule: "gradual"}}
	expectErrors(t, ValidateFlagStatusUpdate(f, old), map[string]string{
		"FieldValueNotSupported status.rollouts[0].phase": "",
		"FieldValueInvalid status.rollouts[0].step":       "",
		"FieldValueInvalid status.rollouts[0].weight":     "from 0 to 100",
		"FieldValueDuplicate status.rollouts[1].rule":     "",
	})
}

func TestValidateRolloutAction(t *testing.T) {
	expectErrors(t, ValidateRolloutAction(&flagpole.RolloutAction{Action: flagpole.RolloutActionApprove}), nil)
	expectErrors(t, ValidateRolloutAction(&flagpole.RolloutAction{Action: "Skip"}), map[string]string{
		"FieldValueNotSupported action": `"Abort", "Approve", "Pause", "Promote", "Resume"`,
	})
}
