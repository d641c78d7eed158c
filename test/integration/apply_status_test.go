package integration

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1apply "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	applyv1beta1 "github.com/flagpole-dev/flagpole/pkg/generated/applyconfiguration/flagpole/v1beta1"
)

func TestServerSideApply(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("ssa")

	platform := applyv1beta1.Flag("checkout", "ssa").WithSpec(applyv1beta1.FlagSpec().
		WithType(v1beta1.FlagTypeBoolean).
		WithDescription("owned by platform").
		WithVariants(
			applyv1beta1.Variant().WithName("on").WithValue(raw(true)),
			applyv1beta1.Variant().WithName("off").WithValue(raw(false)),
		).
		WithDefaultVariant("off"))
	if _, err := flags.Apply(ctx, platform, metav1.ApplyOptions{FieldManager: "platform"}); err != nil {
		t.Fatal(err)
	}

	// A second manager adds a field nobody owns: no conflict, both fields kept.
	oncall := applyv1beta1.Flag("checkout", "ssa").WithSpec(applyv1beta1.FlagSpec().
		WithType(v1beta1.FlagTypeBoolean).
		WithState(v1beta1.FlagStateDisabled))
	got, err := flags.Apply(ctx, oncall, metav1.ApplyOptions{FieldManager: "oncall"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.State != v1beta1.FlagStateDisabled || got.Spec.Description != "owned by platform" || len(got.Spec.Variants) != 2 {
		t.Errorf("merged spec = %+v", got.Spec)
	}

	// Changing a field the other manager owns conflicts (409) and changes nothing.
	takeover := applyv1beta1.Flag("checkout", "ssa").WithSpec(applyv1beta1.FlagSpec().
		WithType(v1beta1.FlagTypeBoolean).
		WithDescription("taken over by oncall"))
	_, err = flags.Apply(ctx, takeover, metav1.ApplyOptions{FieldManager: "oncall"})
	if !apierrors.IsConflict(err) {
		t.Fatalf("apply of a field owned by another manager: %v, want 409 Conflict", err)
	}
	if cur, _ := flags.Get(ctx, "checkout", metav1.GetOptions{}); cur.Spec.Description != "owned by platform" {
		t.Errorf("conflicting apply changed the object: %q", cur.Spec.Description)
	}

	// Forcing takes ownership; Extract shows what each manager now owns.
	got, err = flags.Apply(ctx, takeover, metav1.ApplyOptions{FieldManager: "oncall", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Description != "taken over by oncall" {
		t.Errorf("forced apply: %q", got.Spec.Description)
	}
	extracted, err := applyv1beta1.ExtractFlag(got, "oncall")
	if err != nil {
		t.Fatal(err)
	}
	if extracted.Spec == nil || extracted.Spec.Description == nil || *extracted.Spec.Description != "taken over by oncall" || extracted.Spec.Variants != nil {
		t.Errorf("oncall's extracted configuration = %+v", extracted.Spec)
	}
	platformOwns, err := applyv1beta1.ExtractFlag(got, "platform")
	if err != nil {
		t.Fatal(err)
	}
	if platformOwns.Spec == nil || platformOwns.Spec.Description != nil || len(platformOwns.Spec.Variants) != 2 {
		t.Errorf("platform's extracted configuration = %+v", platformOwns.Spec)
	}
	// Writes to the main resource never record status ownership.
	for _, mf := range got.ManagedFields {
		if mf.Subresource == "" && mf.FieldsV1 != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:status"`) {
			t.Errorf("manager %s owns status through the main resource: %s", mf.Manager, mf.FieldsV1.Raw)
		}
	}
}

func TestStatusSubresource(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("status")

	in := boolFlag("f")
	in.Status.ObservedGeneration = 42
	created, err := flags.Create(ctx, in, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Status.ObservedGeneration != 1 || len(created.Status.Conditions) != 2 {
		t.Errorf("create kept client-written status, or derived none: %+v", created.Status)
	}
	waitForStatus(t, s.Client, "status", "f")

	// flags/status writes status and ignores spec.
	var afterStatus *v1beta1.Flag
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := flags.Get(ctx, "f", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Status.Conditions = append(cur.Status.Conditions, metav1.Condition{Type: "Audited", Status: metav1.ConditionTrue, Reason: "Checked", LastTransitionTime: metav1.Now()})
		cur.Spec.State = v1beta1.FlagStateDisabled
		afterStatus, err = flags.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(afterStatus.Status.Conditions) != 3 {
		t.Errorf("status not written: %+v", afterStatus.Status)
	}
	if afterStatus.Spec.State != v1beta1.FlagStateEnabled || afterStatus.Generation != 1 {
		t.Errorf("flags/status changed spec: state=%s generation=%d", afterStatus.Spec.State, afterStatus.Generation)
	}

	// The main resource writes spec and ignores status.
	var afterSpec *v1beta1.Flag
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := flags.Get(ctx, "f", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.State = v1beta1.FlagStateDisabled
		cur.Status.ObservedGeneration = 7
		afterSpec, err = flags.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if afterSpec.Spec.State != v1beta1.FlagStateDisabled || afterSpec.Generation != 2 {
		t.Errorf("spec not written: state=%s generation=%d", afterSpec.Spec.State, afterSpec.Generation)
	}
	if afterSpec.Status.ObservedGeneration == 7 {
		t.Errorf("main resource changed status: %+v", afterSpec.Status)
	}

	// Invalid status is a 422 with the field path.
	bad := afterSpec.DeepCopy()
	bad.ResourceVersion = "" // unconditional: the status controller may have written since
	bad.Status.Conditions[0].Status = "Maybe"
	_, err = flags.UpdateStatus(ctx, bad, metav1.UpdateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "status.conditions[0].status") {
		t.Errorf("invalid status: %v, want 422 at status.conditions[0].status", err)
	}

	// Server-side apply of status through the subresource, with a condition
	// of a type the status controller never writes: only the apply can put
	// it there, and the manager owns it.
	applied, err := flags.ApplyStatus(ctx, applyv1beta1.Flag("f", "status").WithStatus(applyv1beta1.FlagStatus().WithConditions(
		metav1apply.Condition().WithType("ExternallyReviewed").WithStatus(metav1.ConditionTrue).WithReason("Applied").
			WithMessage("applied by status-tester").WithLastTransitionTime(metav1.Now()))),
		metav1.ApplyOptions{FieldManager: "status-tester", Force: true})
	if err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(applied.Status.Conditions, "ExternallyReviewed")
	if c == nil || c.Reason != "Applied" || c.Message != "applied by status-tester" {
		t.Errorf("applied condition missing: %+v", applied.Status.Conditions)
	}
	if meta.FindStatusCondition(applied.Status.Conditions, flagpole.FlagConditionReady) == nil || applied.Spec.State != v1beta1.FlagStateDisabled {
		t.Errorf("apply of one condition changed what it does not own: %+v / %s", applied.Status.Conditions, applied.Spec.State)
	}
	var owns string
	for _, mf := range applied.ManagedFields {
		if mf.Manager == "status-tester" && mf.Subresource == "status" && mf.Operation == metav1.ManagedFieldsOperationApply && mf.FieldsV1 != nil {
			owns = string(mf.FieldsV1.Raw)
		}
	}
	if !strings.Contains(owns, `k:{\"type\":\"ExternallyReviewed\"}`) || strings.Contains(owns, `Ready`) || strings.Contains(owns, `f:spec`) {
		t.Errorf("status-tester's apply of flags/status owns %s, want its condition only", owns)
	}
}

func hasCause(err error, fieldPath string) bool {
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == fieldPath {
			return true
		}
	}
	return false
}
