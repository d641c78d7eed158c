package flagstatus

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

func TestCompute(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "f", Generation: 4},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}},
			Rules: []v1beta1.Rule{{Name: "r", Segments: []string{"beta"}, Variant: "on"}}},
	}
	none := func(string) *v1beta1.Segment { return nil }
	st := Compute(f, evaluation.CompileFlag(f, none), now)
	if st.ObservedGeneration != 4 {
		t.Errorf("observedGeneration = %d", st.ObservedGeneration)
	}
	ready := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionReady)
	if ready.Status != metav1.ConditionFalse || ready.Reason != ReasonSegmentNotFound {
		t.Errorf("Ready = %+v", ready)
	}
	stale := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionStale)
	if stale.Status != metav1.ConditionFalse || stale.Reason != ReasonNoExpiry {
		t.Errorf("Stale = %+v", stale)
	}

	// Unchanged conditions keep their transition time, so a resync writes nothing.
	f.Status = st
	again := Compute(f, evaluation.CompileFlag(f, none), now.Add(time.Hour))
	if !meta.FindStatusCondition(again.Conditions, flagpole.FlagConditionReady).LastTransitionTime.Equal(&ready.LastTransitionTime) {
		t.Error("lastTransitionTime moved without a transition")
	}

	past := metav1.NewTime(now.Add(-time.Minute))
	f.Spec.ExpiresAt = &past
	f.Spec.Rules[0].Segments = nil
	f.Spec.Rules[0].When = "context.x ==" // stored leniently, still does not compile
	st = Compute(f, evaluation.CompileFlag(f, none), now)
	if c := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ReasonExpressionInvalid {
		t.Errorf("Ready = %+v", c)
	}
	if c := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionStale); c.Status != metav1.ConditionTrue || c.Reason != ReasonExpired {
		t.Errorf("Stale = %+v", c)
	}

	f.Spec.Rules[0].When = "true"
	beta := &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "beta", UID: "s"}}
	f.Spec.Rules[0].Segments = []string{"beta"}
	st = Compute(f, evaluation.CompileFlag(f, func(n string) *v1beta1.Segment {
		if n == "beta" {
			return beta
		}
		return nil
	}), now)
	if c := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionReady); c.Status != metav1.ConditionTrue || c.Reason != ReasonResolved {
		t.Errorf("Ready = %+v", c)
	}
}
