package flaghistory

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
)

func drain(r *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-r.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// What a change, a staleness transition and an override tell the flag's
// owner, and what they do not (a change with nothing of note).
func TestEvents(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	rec := events.NewFakeRecorder(20)
	c := &Controller{recorder: rec, clock: clocktesting.NewFakePassiveClock(now)}
	old := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "f", Generation: 4},
		Spec: v1beta1.FlagSpec{State: v1beta1.FlagStateEnabled, DefaultVariant: "off",
			Rules: []v1beta1.Rule{{Name: "gradual", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 1}, {Variant: "off", Weight: 3}}}}}},
	}
	f := old.DeepCopy()
	f.Generation = 5
	f.Status.LastChange = &v1beta1.FlagChange{User: "dave", Generation: 5}
	f.Spec.State = v1beta1.FlagStateDisabled
	f.Spec.DefaultVariant = "on"
	f.Spec.Rules[0].Rollout.Distribution[0].Weight = 3
	c.specEvents(old, f)
	got := strings.Join(drain(rec), "\n")
	for _, want := range []string{
		"Normal FlagDisabled spec.state Enabled → Disabled (by dave, generation 5): the kill switch is on",
		`Normal DefaultVariantChanged spec.defaultVariant "off" → "on" (by dave, generation 5)`,
		`Normal RolloutChanged rule "gradual" rollout on 25%, off 75% → on 50%, off 50% (by dave, generation 5)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
	owner := f.DeepCopy()
	owner.Spec.Owner = "team-x"
	c.specEvents(f, owner)
	if got := drain(rec); len(got) != 0 {
		t.Errorf("an owner change recorded %v", got)
	}

	stale := f.DeepCopy()
	stale.Status.Conditions = []metav1.Condition{{Type: flagpole.FlagConditionStale, Status: metav1.ConditionTrue, Reason: "Unused", Message: "not evaluated since …"}}
	c.staleEvents(f, stale)
	c.staleEvents(stale, stale) // still stale: nothing new
	fresh := stale.DeepCopy()
	fresh.Status.Conditions[0].Status, fresh.Status.Conditions[0].Reason = metav1.ConditionFalse, "NoExpiry"
	c.staleEvents(stale, fresh)
	if got := drain(rec); len(got) != 2 || !strings.HasPrefix(got[0], "Warning Stale Unused: not evaluated since") || !strings.HasPrefix(got[1], "Normal NoLongerStale NoExpiry") {
		t.Errorf("stale transitions: %v", got)
	}

	expires := metav1.NewTime(now.Add(-time.Second))
	o := &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "testers"},
		Spec: v1beta1.FlagOverrideSpec{Flag: "f", Variant: "on", TargetingKeys: []string{"a", "b"}}, Status: v1beta1.FlagOverrideStatus{ExpiresAt: &expires}}
	// The flag is not in the lister: the override is what they regard.
	c.flags = listers.NewFlagLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}))
	c.overrideGone(o)
	later := metav1.NewTime(now.Add(time.Hour))
	o.Status.ExpiresAt = &later
	c.overrideCreated(o)
	c.overrideGone(o)
	got = strings.Join(drain(rec), "\n")
	for _, want := range []string{
		`Normal OverrideExpired override "testers" (variant "on" for 2 targeting key(s)) expired at 2026-12-07T02:59:59Z`,
		`Normal OverrideCreated override "testers" forces variant "on" for 2 targeting key(s) until 2026-12-07T04:00:00Z`,
		`Normal OverrideDeleted override "testers" (variant "on" for 2 targeting key(s)) was deleted before it expired`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("override events lack %q:\n%s", want, got)
		}
	}
}
