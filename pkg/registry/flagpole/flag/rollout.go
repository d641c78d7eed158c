package flag

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/flagevents"
	"github.com/flagpole-dev/flagpole/pkg/rolloutplan"
)

// RolloutREST serves flags/rollout: POST a RolloutAction (pause, resume,
// promote, approve, abort a plan), get the flag with its new status.
// Authorized as `create` on `flags/rollout`, apart from editing the flag:
// whoever may approve a step need not be able to change the flag. The
// action is written to the status (with the flag's resourceVersion as
// precondition, read again on a conflict) and recorded as an Event.
type RolloutREST struct {
	status   *StatusREST
	recorder flagevents.Recorder
	clock    clock.PassiveClock
}

var _ rest.NamedCreater = &RolloutREST{}

// NewRolloutREST returns the flags/rollout storage over the flag's status.
func NewRolloutREST(status *StatusREST, recorder flagevents.Recorder, c clock.PassiveClock) *RolloutREST {
	return &RolloutREST{status: status, recorder: recorder, clock: c}
}

func (r *RolloutREST) New() runtime.Object { return &flagpole.RolloutAction{} }

func (r *RolloutREST) Destroy() {}

// conflictRetries bounds the reads again after a concurrent write (the
// controller's status writes, usage): the plan's own state rarely moves
// in the meantime.
const conflictRetries = 5

func (r *RolloutREST) Create(ctx context.Context, name string, obj runtime.Object, createValidation rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	action, ok := obj.(*flagpole.RolloutAction)
	if !ok {
		return nil, apierrors.NewBadRequest("not a RolloutAction")
	}
	if errs := validation.ValidateRolloutAction(action); len(errs) > 0 {
		return nil, apierrors.NewInvalid(flagpole.Kind("RolloutAction"), name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	by := ""
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		by = u.GetName()
	}
	for attempt := 0; ; attempt++ {
		current, err := r.status.Get(ctx, name, &metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		f := current.(*flagpole.Flag)
		var versioned v1beta1.Flag
		if err := v1beta1.Convert_flagpole_Flag_To_v1beta1_Flag(f, &versioned, nil); err != nil {
			return nil, err
		}
		rule, plan, err := planOf(&versioned, action.Rule)
		if err != nil {
			return nil, err
		}
		var status *v1beta1.RolloutStatus
		at := -1
		for i := range versioned.Status.Rollouts {
			if versioned.Status.Rollouts[i].Rule == rule {
				status, at = &versioned.Status.Rollouts[i], i
			}
		}
		next, transition, err := rolloutplan.Act(plan, status, v1beta1.RolloutActionType(action.Action), by, action.Message, r.clock.Now())
		var conflict *rolloutplan.ConflictError
		if errors.As(err, &conflict) {
			return nil, apierrors.NewConflict(flagpole.Resource("flags/rollout"), name, errors.New(conflict.Message))
		}
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		versioned.Status.Rollouts[at] = next
		updated := f.DeepCopy()
		updated.Status.Rollouts = nil
		for i := range versioned.Status.Rollouts {
			var s flagpole.RolloutStatus
			if err := v1beta1.Convert_v1beta1_RolloutStatus_To_flagpole_RolloutStatus(&versioned.Status.Rollouts[i], &s, nil); err != nil {
				return nil, err
			}
			updated.Status.Rollouts = append(updated.Status.Rollouts, s)
		}
		written, _, err := r.status.store.Update(ctx, name, rest.DefaultUpdatedObjectInfo(updated),
			rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{FieldManager: "flags/rollout"})
		if apierrors.IsConflict(err) && attempt < conflictRetries {
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.recorder != nil {
			kind := corev1.EventTypeNormal
			if transition.Warning {
				kind = corev1.EventTypeWarning
			}
			var event v1beta1.Flag
			if err := v1beta1.Convert_flagpole_Flag_To_v1beta1_Flag(written.(*flagpole.Flag), &event, nil); err == nil {
				event.SetGroupVersionKind(v1beta1.SchemeGroupVersion.WithKind("Flag"))
				r.recorder.Eventf(&event, nil, kind, "Rollout"+transition.Reason, flagevents.ActionRollout, "rule %s: %s", rule, transition.Message)
			}
		}
		return written, nil
	}
}

// planOf finds the rule whose plan an action is for: the named one, or
// the only one with a plan.
func planOf(f *v1beta1.Flag, rule string) (string, *v1beta1.RolloutPlan, error) {
	var planned []string
	for i := range f.Spec.Rules {
		r := &f.Spec.Rules[i]
		if r.Rollout == nil || r.Rollout.Plan == nil {
			continue
		}
		if r.Name == rule {
			return r.Name, r.Rollout.Plan, nil
		}
		planned = append(planned, r.Name)
	}
	sort.Strings(planned)
	invalid := func(msg string) error {
		return apierrors.NewInvalid(flagpole.Kind("RolloutAction"), f.Name, field.ErrorList{field.Invalid(field.NewPath("rule"), rule, msg)})
	}
	switch {
	case len(planned) == 0:
		return "", nil, invalid(fmt.Sprintf("flag %s has no rule with a rollout plan (spec.rules[].rollout.plan)", f.Name))
	case rule == "" && len(planned) == 1:
		return planned[0], f.Spec.Rules[ruleIndex(f, planned[0])].Rollout.Plan, nil
	case rule == "":
		return "", nil, invalid("the flag has several plans: name one of " + strings.Join(planned, ", "))
	}
	return "", nil, invalid("no rule of that name has a plan; rules with one: " + strings.Join(planned, ", "))
}

func ruleIndex(f *v1beta1.Flag, name string) int {
	for i := range f.Spec.Rules {
		if f.Spec.Rules[i].Name == name {
			return i
		}
	}
	return -1
}
