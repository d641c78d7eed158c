package rolloutplan

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

func d(s string) *metav1.Duration {
	v, _ := time.ParseDuration(s)
	return &metav1.Duration{Duration: v}
}

// testPlan: 10% for 1m, 50% until approved, 100% (complete).
func testPlan() *v1beta1.RolloutPlan {
	return &v1beta1.RolloutPlan{Variant: "on", Steps: []v1beta1.RolloutStep{
		{Weight: 10, Duration: d("1m")},
		{Weight: 50, Approval: true},
		{Weight: 100},
	}}
}

func TestPlanRunsThroughItsSteps(t *testing.T) {
	p := testPlan()
	s, tr := Advance("gradual", p, nil, Guard{}, t0)
	if s.Phase != v1beta1.RolloutPhaseProgressing || s.Step != 0 || s.Weight != 10 || !s.NextStepAt.Time.Equal(t0.Add(time.Minute)) || len(tr) != 1 || tr[0].Reason != ReasonStarted {
		t.Fatalf("start: %+v %+v", s, tr)
	}
	// Before the step's end nothing moves.
	if s2, tr := Advance("gradual", p, &s, Guard{}, t0.Add(59*time.Second)); len(tr) != 0 || s2.Step != 0 {
		t.Fatalf("early: %+v %+v", s2, tr)
	}
	// Long after it (a server down for an hour): one step, not one per
	// missed tick, and the new step starts now.
	late := t0.Add(time.Hour)
	s, tr = Advance("gradual", p, &s, Guard{}, late)
	if s.Step != 1 || s.Weight != 50 || s.Phase != v1beta1.RolloutPhaseWaiting || !s.StepStartedAt.Time.Equal(late) || len(tr) != 1 {
		t.Fatalf("after the end: %+v %+v", s, tr)
	}
	// Waiting for approval: time does not move it.
	if s2, tr := Advance("gradual", p, &s, Guard{}, late.Add(24*time.Hour)); len(tr) != 0 || s2.Step != 1 {
		t.Fatalf("waiting: %+v", s2)
	}
	s, a, err := Act(p, &s, v1beta1.RolloutActionApprove, "alice", "metrics look fine", late.Add(time.Minute))
	if err != nil || s.Phase != v1beta1.RolloutPhaseCompleted || s.Weight != 100 || a.Reason != ReasonApproved || !strings.Contains(s.Message, "step 2 approved by alice: metrics look fine") {
		t.Fatalf("approve: %+v %+v %v", s, a, err)
	}
	if got := len(s.Steps); got != 3 {
		t.Errorf("steps recorded: %d", got)
	}
	if _, _, err := Act(p, &s, v1beta1.RolloutActionApprove, "alice", "", late); err == nil {
		t.Error("a completed plan approved")
	}
}

func TestPauseKeepsWhatIsLeftOfTheStep(t *testing.T) {
	p := testPlan()
	s, _ := Advance("gradual", p, nil, Guard{}, t0)
	s, _, err := Act(p, &s, v1beta1.RolloutActionPause, "bob", "", t0.Add(20*time.Second))
	if err != nil || s.Phase != v1beta1.RolloutPhasePaused || s.Remaining.Duration != 40*time.Second || s.NextStepAt != nil {
		t.Fatalf("pause: %+v %v", s, err)
	}
	if s2, tr := Advance("gradual", p, &s, Guard{}, t0.Add(time.Hour)); len(tr) != 0 || s2.Phase != v1beta1.RolloutPhasePaused {
		t.Fatalf("a paused plan moved: %+v", s2)
	}
	if _, _, err := Act(p, &s, v1beta1.RolloutActionPause, "bob", "", t0); err == nil {
		t.Error("paused twice")
	}
	resumed := t0.Add(time.Hour)
	s, _, err = Act(p, &s, v1beta1.RolloutActionResume, "bob", "", resumed)
	if err != nil || s.Phase != v1beta1.RolloutPhaseProgressing || !s.NextStepAt.Time.Equal(resumed.Add(40*time.Second)) {
		t.Fatalf("resume: %+v %v", s, err)
	}
}

func TestPromoteAndAbort(t *testing.T) {
	p := testPlan()
	s, _ := Advance("gradual", p, nil, Guard{}, t0)
	s, tr, err := Act(p, &s, v1beta1.RolloutActionPromote, "carol", "", t0.Add(time.Second))
	if err != nil || s.Step != 1 || s.Weight != 50 || tr.Reason != ReasonPromoted {
		t.Fatalf("promote: %+v %v", s, err)
	}
	if _, _, err := Act(p, &s, v1beta1.RolloutActionResume, "carol", "", t0); err == nil || !strings.Contains(err.Error(), "cannot Resume: the plan is Waiting (step 2 of 3)") {
		t.Errorf("resume of a waiting plan: %v", err)
	}
	s, tr, err = Act(p, &s, v1beta1.RolloutActionAbort, "carol", "errors up", t0.Add(2*time.Second))
	if err != nil || s.Phase != v1beta1.RolloutPhaseAborted || s.Weight != 0 || !tr.Warning {
		t.Fatalf("abort: %+v %v", s, err)
	}
	if s2, tr := Advance("gradual", p, &s, Guard{}, t0.Add(time.Hour)); len(tr) != 0 || s2.Weight != 0 {
		t.Fatalf("an aborted plan moved: %+v", s2)
	}
	// The plan changed after the abort: it starts again from the first step.
	p.Steps[0].Weight = 5
	s, tr2 := Advance("gradual", p, &s, Guard{}, t0.Add(2*time.Hour))
	if s.Step != 0 || s.Weight != 5 || tr2[0].Reason != ReasonPlanChanged {
		t.Fatalf("changed after the abort: %+v", s)
	}
}

// A changed plan goes on from the first step not below the weight in
// effect: no one loses the variant because steps were added.
func TestAChangedPlanNeverTakesTheVariantAway(t *testing.T) {
	p := testPlan()
	s, _ := Advance("gradual", p, nil, Guard{}, t0)
	s, _ = Advance("gradual", p, &s, Guard{}, t0.Add(time.Minute)) // 50%, waiting
	changed := &v1beta1.RolloutPlan{Variant: "on", Steps: []v1beta1.RolloutStep{
		{Weight: 1, Duration: d("1m")}, {Weight: 25, Duration: d("1m")}, {Weight: 60, Duration: d("1m")}, {Weight: 100},
	}}
	s, _ = Advance("gradual", changed, &s, Guard{}, t0.Add(2*time.Minute))
	if s.Step != 2 || s.Weight != 60 {
		t.Fatalf("changed plan: %+v", s)
	}
	// Another variant starts again.
	other := changed.DeepCopy()
	other.Variant = "off"
	if s, _ = Advance("gradual", other, &s, Guard{}, t0.Add(3*time.Minute)); s.Step != 0 || s.Weight != 1 {
		t.Fatalf("another variant: %+v", s)
	}
}

func TestGuard(t *testing.T) {
	p := testPlan()
	p.Steps[0].Guard = &v1beta1.RolloutGuard{Query: "errors"}
	s, _ := Advance("gradual", p, nil, Guard{}, t0)
	// Unreachable at the step's end: paused, never advanced.
	s, tr := Advance("gradual", p, &s, Guard{Unavailable: true, Message: "Prometheus: connection refused"}, t0.Add(2*time.Minute))
	if s.Phase != v1beta1.RolloutPhasePaused || s.Step != 0 || s.Reason != ReasonGuardUnavailable || !tr[0].Warning {
		t.Fatalf("unavailable: %+v", s)
	}
	if s2, tr := Advance("gradual", p, &s, Guard{Unavailable: true}, t0.Add(3*time.Minute)); len(tr) != 0 || s2.Phase != v1beta1.RolloutPhasePaused {
		t.Fatalf("still unavailable: %+v %+v", s2, tr)
	}
	// Readable again: resumed, with what was left (nothing: it was past its end).
	s, tr = Advance("gradual", p, &s, Guard{}, t0.Add(4*time.Minute))
	if s.Phase != v1beta1.RolloutPhaseProgressing || tr[0].Reason != ReasonResumed {
		t.Fatalf("resumed: %+v", s)
	}
	// Tripped: aborted, and says why.
	s, tr = Advance("gradual", p, &s, Guard{Tripped: true, Message: "errors was 0.07, above 0.05"}, t0.Add(4*time.Minute+time.Second))
	if s.Phase != v1beta1.RolloutPhaseAborted || s.Weight != 0 || s.Reason != ReasonGuardTripped || !strings.Contains(s.Message, "above 0.05") {
		t.Fatalf("tripped: %+v", s)
	}
	if w, ok := Wake(p, &s, 10*time.Second, t0); ok {
		t.Errorf("an aborted plan wakes in %s", w)
	}
}

func TestWake(t *testing.T) {
	p := testPlan()
	s, _ := Advance("gradual", p, nil, Guard{}, t0)
	if w, ok := Wake(p, &s, 10*time.Second, t0.Add(15*time.Second)); !ok || w != 45*time.Second {
		t.Errorf("step end: %s %v", w, ok)
	}
	guarded := testPlan()
	guarded.Steps[0].Guard = &v1beta1.RolloutGuard{Query: "x"}
	if w, ok := Wake(guarded, &s, 10*time.Second, t0); !ok || w != 10*time.Second {
		t.Errorf("guard: %s %v", w, ok)
	}
	s, _ = Advance("gradual", p, &s, Guard{}, t0.Add(time.Minute)) // waiting, no guard
	if _, ok := Wake(p, &s, 10*time.Second, t0); ok {
		t.Error("a waiting step without a guard wakes")
	}
}
