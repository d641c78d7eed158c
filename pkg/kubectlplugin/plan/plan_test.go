package plan

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func TestPrint(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	started := metav1.NewTime(now.Add(-20 * time.Second))
	next := metav1.NewTime(now.Add(40 * time.Second))
	f := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "search", Namespace: "shop"},
		Spec: v1beta1.FlagSpec{Rules: []v1beta1.Rule{
			{Name: "staff", Variant: "on"},
			{Name: "everyone", Rollout: &v1beta1.Rollout{Plan: &v1beta1.RolloutPlan{Variant: "on", Steps: []v1beta1.RolloutStep{
				{Weight: 10, Duration: &metav1.Duration{Duration: time.Minute}},
				{Weight: 50, Approval: true},
				{Weight: 100},
			}}}},
			{Name: "later", Rollout: &v1beta1.Rollout{Plan: &v1beta1.RolloutPlan{Variant: "on", Steps: []v1beta1.RolloutStep{{Weight: 100}}}}},
		}},
		Status: v1beta1.FlagStatus{Rollouts: []v1beta1.RolloutStatus{{Rule: "everyone", Phase: v1beta1.RolloutPhaseProgressing, Step: 0, Weight: 10,
			StepStartedAt: &started, NextStepAt: &next, Message: "step 1 of 3: 10% on on until ...", Steps: []v1beta1.RolloutStepStatus{{Step: 0, StartedAt: started}}}}},
	}
	plans := Plans(f, "")
	if len(plans) != 2 || plans[0].Status == nil || plans[1].Status != nil {
		t.Fatalf("plans: %+v", plans)
	}
	var b strings.Builder
	if err := Print(&b, f, plans, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Rule everyone: rolls on out — Progressing, step 1 of 3, 10% on on\n",
		"▶ 1      10%      after 1m0s (in 40s)",
		"2026-12-07T09:59:40Z (20s ago)",
		"  2      50%      on approval",
		"  3      100%     completes the plan",
		"Rule later: rolls on out, not started yet",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if got := Plans(f, "later"); len(got) != 1 || got[0].Rule.Name != "later" {
		t.Errorf("--rule later: %+v", got)
	}
}
