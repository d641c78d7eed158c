package flagstatus

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

func TestCompute(t *testing.T) {
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "f", Generation: 4},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}},
			Rules: []v1beta1.Rule{{Name: "r", Segments: []string{"beta"}, Variant: "on"}}},
	}
	none := func(string) *v1beta1.Segment { return nil }
	p := DefaultPolicy()
	st := p.Compute(f, evaluation.CompileFlag(f, none), Usage{}, now)
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
	again := p.Compute(f, evaluation.CompileFlag(f, none), Usage{}, now.Add(time.Hour))
	if !meta.FindStatusCondition(again.Conditions, flagpole.FlagConditionReady).LastTransitionTime.Equal(&ready.LastTransitionTime) {
		t.Error("lastTransitionTime moved without a transition")
	}

	past := metav1.NewTime(now.Add(-time.Minute))
	f.Spec.ExpiresAt = &past
	f.Spec.Rules[0].Segments = nil
	f.Spec.Rules[0].When = "context.x ==" // stored leniently, still does not compile
	st = p.Compute(f, evaluation.CompileFlag(f, none), Usage{}, now)
	if c := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionReady); c.Status != metav1.ConditionFalse || c.Reason != ReasonExpressionInvalid {
		t.Errorf("Ready = %+v", c)
	}
	if c := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionStale); c.Status != metav1.ConditionTrue || c.Reason != ReasonExpired {
		t.Errorf("Stale = %+v", c)
	}

	f.Spec.Rules[0].When = "true"
	beta := &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "beta", UID: "s"}}
	f.Spec.Rules[0].Segments = []string{"beta"}
	st = p.Compute(f, evaluation.CompileFlag(f, func(n string) *v1beta1.Segment {
		if n == "beta" {
			return beta
		}
		return nil
	}), Usage{}, now)
	if c := meta.FindStatusCondition(st.Conditions, flagpole.FlagConditionReady); c.Status != metav1.ConditionTrue || c.Reason != ReasonResolved {
		t.Errorf("Ready = %+v", c)
	}
	if st.Usage != nil {
		t.Error("usage is never part of the stored status")
	}
}

// record is a usage record of a flag evaluated from first to last, serving
// each variant last at the time given.
func record(first, last time.Time, served map[string]time.Time) *usage.FlagRecord {
	r := &usage.FlagRecord{First: first.Unix(), Last: last.Unix(), Served: map[string]int64{}}
	for v, t := range served {
		r.Served[v] = t.Unix()
	}
	return r
}

// Each way a flag turns stale, the reason a person reads, and what keeps a
// flag fresh; the message stays the same while the condition does.
func TestStale(t *testing.T) {
	p := DefaultPolicy()
	countingSince := now.Add(-60 * day)
	flag := func(mutate ...func(*v1beta1.Flag)) *v1beta1.Flag {
		f := &v1beta1.Flag{
			ObjectMeta: metav1.ObjectMeta{Name: "f", Generation: 1, CreationTimestamp: metav1.NewTime(now.Add(-30 * day))},
			Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateEnabled,
				Variants: []v1beta1.Variant{{Name: "on"}, {Name: "off"}}},
		}
		for _, m := range mutate {
			m(f)
		}
		return f
	}
	kind := func(k v1beta1.FlagLifecycleKind) func(*v1beta1.Flag) {
		return func(f *v1beta1.Flag) { f.Spec.Lifecycle = &v1beta1.FlagLifecycle{Kind: k} }
	}
	busy := record(now.Add(-20*day), now.Add(-time.Minute), map[string]time.Time{"on": now.Add(-time.Minute), "off": now.Add(-2 * time.Minute)})
	onlyOn := record(now.Add(-20*day), now.Add(-time.Minute), map[string]time.Time{"on": now.Add(-time.Minute), "off": now.Add(-9 * day)})
	for _, tc := range []struct {
		name    string
		flag    *v1beta1.Flag
		record  *usage.FlagRecord
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"in use, two variants", flag(), busy, metav1.ConditionFalse, ReasonNoExpiry, "the flag has no spec.expiresAt"},
		{"in use, expiring", flag(func(f *v1beta1.Flag) { t := metav1.NewTime(now.Add(day)); f.Spec.ExpiresAt = &t }), busy,
			metav1.ConditionFalse, ReasonNotExpired, "expires at 2026-11-27T12:00:00Z"},
		{"never evaluated, young", flag(func(f *v1beta1.Flag) { f.CreationTimestamp = metav1.NewTime(now.Add(-2 * day)) }), nil,
			metav1.ConditionFalse, ReasonNoExpiry, ""},
		{"never evaluated, for longer than the period", flag(), nil, metav1.ConditionTrue, ReasonUnused, "never evaluated since 2026-10-27T12:00:00Z"},
		{"no longer evaluated", flag(), record(now.Add(-20*day), now.Add(-8*day), map[string]time.Time{"on": now.Add(-8 * day)}),
			metav1.ConditionTrue, ReasonUnused, "not evaluated since 2026-11-18T12:00:00Z"},
		{"one variant for a week", flag(), onlyOn, metav1.ConditionTrue, ReasonSingleVariant, `got variant "on"`},
		{"one variant, but changed within the week", flag(func(f *v1beta1.Flag) {
			f.Status.LastChange = &v1beta1.FlagChange{Time: metav1.NewTime(now.Add(-3 * day)), Generation: 1}
		}), onlyOn, metav1.ConditionFalse, ReasonNoExpiry, ""},
		{"one variant, but evaluated only since three days", flag(), record(now.Add(-3*day), now, map[string]time.Time{"on": now}),
			metav1.ConditionFalse, ReasonNoExpiry, ""},
		{"one variant, disabled", flag(func(f *v1beta1.Flag) { f.Spec.State = v1beta1.FlagStateDisabled }), onlyOn, metav1.ConditionFalse, ReasonNoExpiry, ""},
		{"one variant, a kill switch", flag(kind(v1beta1.FlagLifecycleKillSwitch)), onlyOn, metav1.ConditionFalse, ReasonNoExpiry, "a KillSwitch flag: permanent"},
		{"a release past 40 days", flag(kind(v1beta1.FlagLifecycleRelease), func(f *v1beta1.Flag) { f.CreationTimestamp = metav1.NewTime(now.Add(-41 * day)) }), busy,
			metav1.ConditionTrue, ReasonLifetimeExceeded, "past its kind's expected lifetime of 40d"},
		{"a release within 40 days", flag(kind(v1beta1.FlagLifecycleRelease)), busy, metav1.ConditionFalse, ReasonNoExpiry, "a Release flag, expected to live 40d (until 2026-12-06T12:00:00Z)"},
		{"a permission never stale by age", flag(kind(v1beta1.FlagLifecyclePermission), func(f *v1beta1.Flag) { f.CreationTimestamp = metav1.NewTime(now.Add(-400 * day)) }), busy,
			metav1.ConditionFalse, ReasonNoExpiry, "a Permission flag: permanent"},
		{"an operational flag past 7 days", flag(kind(v1beta1.FlagLifecycleOperational)), busy, metav1.ConditionTrue, ReasonLifetimeExceeded, "Operational"},
		{"expired wins", flag(func(f *v1beta1.Flag) { t := metav1.NewTime(now.Add(-time.Hour)); f.Spec.ExpiresAt = &t }), nil, metav1.ConditionTrue, ReasonExpired, "past spec.expiresAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := Usage{Record: tc.record, CountingSince: countingSince}
			c := p.stale(tc.flag, u, now)
			if c.Status != tc.status || c.Reason != tc.reason || !strings.Contains(c.Message, tc.message) {
				t.Errorf("%s %s: %q; want %s %s containing %q", c.Status, c.Reason, c.Message, tc.status, tc.reason, tc.message)
			}
			// An hour later, with the same facts, the same condition: a
			// recheck writes nothing.
			if later := p.stale(tc.flag, u, now.Add(time.Hour)); later.Reason == c.Reason && later.Message != c.Message {
				t.Errorf("the message moved with time: %q, then %q", c.Message, later.Message)
			}
		})
	}
}
