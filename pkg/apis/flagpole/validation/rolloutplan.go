package validation

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Rollout plan bounds (docs/rollouts.md).
const (
	// MaxPlanSteps bounds a plan's steps.
	MaxPlanSteps = 20
	// MaxPlans bounds the rules of one flag with a plan: each plan's
	// status lives in the flag's, within StatusHeadroomBytes.
	MaxPlans = 16
	// MinStepDuration is the shortest step: the controller acts within
	// about a second, so a shorter step would be mostly noise.
	MinStepDuration = 5 * time.Second
	// MaxStepDuration is the longest timed step; a step meant to wait
	// longer waits for approval.
	MaxStepDuration = 90 * 24 * time.Hour
	// MaxRolloutMessageLength bounds a plan status's and action's message.
	MaxRolloutMessageLength = 1024
)

var rolloutPhases = sets.New(flagpole.RolloutPhaseProgressing, flagpole.RolloutPhasePaused, flagpole.RolloutPhaseWaiting,
	flagpole.RolloutPhaseCompleted, flagpole.RolloutPhaseAborted)

var rolloutActions = sets.New(flagpole.RolloutActionPause, flagpole.RolloutActionResume, flagpole.RolloutActionPromote,
	flagpole.RolloutActionApprove, flagpole.RolloutActionAbort)

// validatePlan refuses plans that cannot work: a variant the flag lacks,
// weights that do not rise or leave 1–100, steps nothing ends, steps
// shorter than MinStepDuration, guards without a query or a bound.
func validatePlan(plan *flagpole.RolloutPlan, variants sets.Set[string], compile CompileFunc, fldPath *field.Path) field.ErrorList {
	allErrs := validateVariantRef(plan.Variant, variants, fldPath.Child("variant"))
	stepsPath := fldPath.Child("steps")
	switch {
	case len(plan.Steps) == 0:
		return append(allErrs, field.Required(stepsPath, "a plan needs at least one step"))
	case len(plan.Steps) > MaxPlanSteps:
		allErrs = append(allErrs, field.TooMany(stepsPath, len(plan.Steps), MaxPlanSteps))
	}
	var previous int32
	for i, s := range plan.Steps {
		idxPath := stepsPath.Index(i)
		switch {
		case s.Weight < 1 || s.Weight > 100:
			allErrs = append(allErrs, field.Invalid(idxPath.Child("weight"), s.Weight, "a percentage of the rule's traffic, from 1 to 100"))
		case s.Weight <= previous:
			allErrs = append(allErrs, field.Invalid(idxPath.Child("weight"), s.Weight, fmt.Sprintf("weights must rise: the step before gives %d", previous)))
		}
		if s.Weight > previous {
			previous = s.Weight
		}
		last := i == len(plan.Steps)-1
		switch {
		case s.Duration != nil && s.Approval:
			allErrs = append(allErrs, field.Forbidden(idxPath.Child("approval"), "a step ends by its duration or by an approval, not both"))
		case s.Duration == nil && !s.Approval && !last:
			allErrs = append(allErrs, field.Required(idxPath, "a duration or approval: true (only the last step may have neither, and completes the plan)"))
		}
		if d := s.Duration; d != nil && (d.Duration < MinStepDuration || d.Duration > MaxStepDuration) {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("duration"), d.Duration.String(),
				fmt.Sprintf("from %s to %s (a longer wait is an approval)", MinStepDuration, MaxStepDuration)))
		}
		if g := s.Guard; g != nil {
			allErrs = append(allErrs, validateGuard(g, compile, idxPath.Child("guard"))...)
		}
	}
	return allErrs
}

func validateGuard(g *flagpole.RolloutGuard, _ CompileFunc, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch {
	case g.Query == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("query"), "a PromQL query whose answer is one number"))
	case len(g.Query) > MaxExpressionLength:
		allErrs = append(allErrs, field.TooLong(fldPath.Child("query"), "", MaxExpressionLength))
	}
	switch {
	case g.AbortAbove == nil && g.AbortBelow == nil:
		allErrs = append(allErrs, field.Required(fldPath, "abortAbove, abortBelow or both"))
	case g.AbortAbove != nil && g.AbortBelow != nil && g.AbortBelow.Cmp(*g.AbortAbove) >= 0:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("abortBelow"), g.AbortBelow.String(),
			fmt.Sprintf("must be below abortAbove (%s): no value could pass", g.AbortAbove.String())))
	}
	return allErrs
}

// validateRolloutStatuses checks status.rollouts as written to flags/status.
func validateRolloutStatuses(statuses []flagpole.RolloutStatus, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(statuses) > MaxPlans {
		allErrs = append(allErrs, field.TooMany(fldPath, len(statuses), MaxPlans))
	}
	rules := sets.New[string]()
	for i, s := range statuses {
		idxPath := fldPath.Index(i)
		if s.Rule == "" {
			allErrs = append(allErrs, field.Required(idxPath.Child("rule"), ""))
		} else if rules.Has(s.Rule) {
			allErrs = append(allErrs, field.Duplicate(idxPath.Child("rule"), s.Rule))
		}
		rules.Insert(s.Rule)
		if s.Phase != "" && !rolloutPhases.Has(s.Phase) {
			allErrs = append(allErrs, field.NotSupported(idxPath.Child("phase"), s.Phase, sets.List(rolloutPhases)))
		}
		if s.Weight < 0 || s.Weight > 100 {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("weight"), s.Weight, "a percentage, from 0 to 100"))
		}
		if s.Step < 0 || s.Step >= MaxPlanSteps {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("step"), s.Step, fmt.Sprintf("a step index, from 0 to %d", MaxPlanSteps-1)))
		}
		if len(s.Steps) > MaxPlanSteps {
			allErrs = append(allErrs, field.TooMany(idxPath.Child("steps"), len(s.Steps), MaxPlanSteps))
		}
		allErrs = append(allErrs, validateMaxLength(s.Message, MaxRolloutMessageLength, idxPath.Child("message"))...)
		allErrs = append(allErrs, validateMaxLength(s.Reason, 64, idxPath.Child("reason"))...)
		allErrs = append(allErrs, validateMaxLength(s.Plan, 64, idxPath.Child("plan"))...)
	}
	return allErrs
}

// ValidateRolloutAction validates a flags/rollout request.
func ValidateRolloutAction(a *flagpole.RolloutAction) field.ErrorList {
	var allErrs field.ErrorList
	if !rolloutActions.Has(a.Action) {
		allErrs = append(allErrs, field.NotSupported(field.NewPath("action"), a.Action, sets.List(rolloutActions)))
	}
	allErrs = append(allErrs, validateMaxLength(a.Message, MaxRolloutMessageLength, field.NewPath("message"))...)
	allErrs = append(allErrs, validateMaxLength(a.Rule, MaxVariantNameLength, field.NewPath("rule"))...)
	return allErrs
}
