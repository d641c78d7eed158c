package flagoverride

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
)

func TestExpiryAndLease(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	clock := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 26, 12, 0, 0, 500_000_000, time.UTC))
	s := NewStrategy(scheme, clock)
	ctx := context.Background()

	o := &flagpole.FlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "default"},
		Spec:       flagpole.FlagOverrideSpec{Flag: "f", Variant: "on", TTL: &metav1.Duration{Duration: 30 * time.Second}},
		Status:     flagpole.FlagOverrideStatus{ExpiresAt: &metav1.Time{Time: time.Unix(0, 0)}},
	}
	s.PrepareForCreate(ctx, o)
	want := time.Date(2026, 11, 26, 12, 0, 31, 0, time.UTC) // rounded up to the second
	if !o.Status.ExpiresAt.Time.Equal(want) {
		t.Fatalf("expiresAt = %s, want %s (client status ignored, rounded up)", o.Status.ExpiresAt, want)
	}
	if errs := s.Validate(ctx, o); len(errs) != 0 {
		t.Fatal(errs)
	}
	if ttl, _ := s.TTL(o, 0, false); ttl != 31 {
		t.Errorf("lease ttl at create = %d, want 31", ttl)
	}

	// Ten seconds later an update neither moves expiresAt nor extends the lease.
	clock.SetTime(clock.Now().Add(10 * time.Second))
	updated := o.DeepCopy()
	updated.Spec.Variant = "off"
	updated.Status.ExpiresAt = &metav1.Time{Time: want.Add(time.Hour)}
	s.PrepareForUpdate(ctx, updated, o)
	if !updated.Status.ExpiresAt.Time.Equal(want) {
		t.Errorf("update moved expiresAt to %s", updated.Status.ExpiresAt)
	}
	if ttl, _ := s.TTL(updated, 31, true); ttl != 21 {
		t.Errorf("lease ttl on update = %d, want the remaining 21", ttl)
	}
	if w := s.WarningsOnUpdate(ctx, updated, o); len(w) != 0 {
		t.Errorf("warnings = %v", w)
	}

	clock.SetTime(want.Add(time.Minute))
	if ttl, _ := s.TTL(updated, 21, true); ttl != 1 {
		t.Errorf("lease ttl past expiry = %d, want the minimum 1", ttl)
	}
	if w := s.WarningsOnUpdate(ctx, updated, o); len(w) != 1 {
		t.Errorf("an expired override must warn on update, got %v", w)
	}
}

func TestValidation(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	s := NewStrategy(scheme, clocktesting.NewFakePassiveClock(time.Now()))
	o := &flagpole.FlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "default"},
		Spec: flagpole.FlagOverrideSpec{Flag: "Bad_Flag", Variant: flagpole.BooleanVariantName(true),
			TargetingKeys: []string{"a", "a"}, TTL: &metav1.Duration{Duration: 8 * 24 * time.Hour}},
	}
	got := map[string]bool{}
	for _, e := range s.Validate(context.Background(), o) {
		got[e.Field] = true
	}
	for _, f := range []string{"spec.flag", "spec.variant", "spec.targetingKeys[1]", "spec.ttl"} {
		if !got[f] {
			t.Errorf("no error at %s; got %v", f, got)
		}
	}

	old := &flagpole.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "default", ResourceVersion: "1"},
		Spec: flagpole.FlagOverrideSpec{Flag: "f", Variant: "on", TTL: &metav1.Duration{Duration: time.Minute}}}
	upd := old.DeepCopy()
	upd.Spec.Flag = "g"
	upd.Spec.TTL = &metav1.Duration{Duration: time.Hour}
	got = map[string]bool{}
	for _, e := range s.ValidateUpdate(context.Background(), upd, old) {
		got[e.Field] = true
	}
	if !got["spec.flag"] || !got["spec.ttl"] {
		t.Errorf("flag and ttl must be immutable: %v", got)
	}
}
