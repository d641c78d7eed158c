// Package rolloutplan is the state machine of a rollout plan
// (spec.rules[].rollout.plan): where a plan goes from where it is, at a
// time, given what its guard read — and what a person's action
// (flags/rollout) does to it. It reads and writes status.rollouts only and
// holds no state: the controller (pkg/controllers/rolloutplan) and the
// subresource (pkg/registry/flagpole/flag) store what it returns, so a new
// leader goes on from the object. docs/rollouts.md has the semantics.
package rolloutplan

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Reasons of transitions: status.rollouts[].reason and the Event's.
const (
	ReasonStarted          = "Started"
	ReasonAdvanced         = "Advanced"
	ReasonWaiting          = "WaitingForApproval"
	ReasonApproved         = "Approved"
	ReasonPromoted         = "Promoted"
	ReasonPaused           = "Paused"
	ReasonResumed          = "Resumed"
	ReasonGuardUnavailable = "GuardUnavailable"
	ReasonGuardTripped     = "GuardTripped"
	ReasonAborted          = "Aborted"
	ReasonCompleted        = "Completed"
	ReasonPlanChanged      = "PlanChanged"
)

// Transition is one change of a plan, for an Event.
type Transition struct {
	Rule    string
	Reason  string
	Message string
	// Warning marks what a person should look at (an abort, a guard).
	Warning bool
}

// Hash identifies a plan (status.rollouts[].plan): "<variant>-<steps>",
// each an FNV-64a of its JSON, so that a changed variant is told from
// changed steps.
func Hash(plan *v1beta1.RolloutPlan) string {
	v := fnv.New64a()
	_, _ = v.Write([]byte(plan.Variant))
	s := fnv.New64a()
	b, _ := json.Marshal(plan.Steps)
	_, _ = s.Write(b)
	return fmt.Sprintf("%016x-%016x", v.Sum64(), s.Sum64())
}

func sameVariant(a, b string) bool { return len(a) >= 16 && len(b) >= 16 && a[:16] == b[:16] }

// Terminal is true of a plan that no time moves on: completed or aborted.
func Terminal(s *v1beta1.RolloutStatus) bool {
	return s.Phase == v1beta1.RolloutPhaseCompleted || s.Phase == v1beta1.RolloutPhaseAborted
}

// enter makes step i of plan the current one, from now.
func enter(plan *v1beta1.RolloutPlan, s *v1beta1.RolloutStatus, i int32, now time.Time, reason, message string) Transition {
	step := plan.Steps[i]
	t := metav1.NewTime(now).Rfc3339Copy()
	s.Step, s.Weight, s.StepStartedAt, s.NextStepAt, s.Remaining = i, step.Weight, &t, nil, nil
	s.Steps = append(s.Steps, v1beta1.RolloutStepStatus{Step: i, StartedAt: t})
	if len(s.Steps) > len(plan.Steps) {
		// A changed plan may revisit steps: keep the newest.
		s.Steps = s.Steps[len(s.Steps)-len(plan.Steps):]
	}
	last := int(i) == len(plan.Steps)-1
	switch {
	case step.Approval:
		s.Phase = v1beta1.RolloutPhaseWaiting
		if message == "" {
			message = fmt.Sprintf("step %d of %d: %d%% on %s, waiting for approval", i+1, len(plan.Steps), step.Weight, plan.Variant)
		}
	case step.Duration != nil:
		s.Phase = v1beta1.RolloutPhaseProgressing
		next := metav1.NewTime(t.Add(step.Duration.Duration))
		s.NextStepAt = &next
		if message == "" {
			message = fmt.Sprintf("step %d of %d: %d%% on %s until %s", i+1, len(plan.Steps), step.Weight, plan.Variant, next.UTC().Format(time.RFC3339))
		}
	case last:
		s.Phase = v1beta1.RolloutPhaseCompleted
		reason = ReasonCompleted
		if message == "" {
			message = fmt.Sprintf("the last step reached: %d%% on %s", step.Weight, plan.Variant)
		}
	}
	s.Reason, s.Message = reason, message
	return Transition{Rule: s.Rule, Reason: reason, Message: message}
}

// Guard is what a step's guard read: nothing to read (no guard), a value
// within bounds, a value that crossed one, or no value.
type Guard struct {
	// Tripped, with Message, aborts the plan.
	Tripped bool
	// Unavailable, with Message, pauses it (and a plan paused so resumes
	// once the guard reads again).
	Unavailable bool
	Message     string
}

// Advance is where rule's plan is at now: started, its step over (one step
// at most, however late: the next step gets its whole duration), aborted
// or paused by its guard. It returns the new status and what changed.
func Advance(rule string, plan *v1beta1.RolloutPlan, current *v1beta1.RolloutStatus, guard Guard, now time.Time) (v1beta1.RolloutStatus, []Transition) {
	hash := Hash(plan)
	var s v1beta1.RolloutStatus
	if current != nil {
		s = *current.DeepCopy()
	}
	s.Rule = rule
	switch {
	case current == nil || current.Plan == "":
		s.Plan = hash
		return s, []Transition{enter(plan, &s, 0, now, ReasonStarted, "")}
	case current.Plan != hash:
		// Go on from the first step not below the weight in effect, so no
		// one who has the variant loses it; another variant starts again.
		from := int32(0)
		if sameVariant(current.Plan, hash) && current.Phase != v1beta1.RolloutPhaseAborted {
			for from < int32(len(plan.Steps))-1 && plan.Steps[from].Weight < current.Weight {
				from++
			}
		}
		s.Plan, s.Steps = hash, nil
		return s, []Transition{enter(plan, &s, from, now, ReasonPlanChanged, "")}
	case Terminal(&s) || int(s.Step) >= len(plan.Steps):
		return s, nil
	}
	if plan.Steps[s.Step].Guard != nil {
		switch {
		case guard.Tripped:
			abort(&s, ReasonGuardTripped, guard.Message)
			return s, []Transition{{Rule: rule, Reason: ReasonGuardTripped, Message: s.Message, Warning: true}}
		case guard.Unavailable:
			if s.Phase == v1beta1.RolloutPhasePaused {
				return s, nil
			}
			pause(&s, now, ReasonGuardUnavailable, guard.Message+"; the plan is paused, and goes on when the guard reads again")
			return s, []Transition{{Rule: rule, Reason: ReasonGuardUnavailable, Message: s.Message, Warning: true}}
		case s.Phase == v1beta1.RolloutPhasePaused && s.Reason == ReasonGuardUnavailable:
			resume(plan, &s, now, ReasonResumed, "the guard reads again")
			return s, []Transition{{Rule: rule, Reason: ReasonResumed, Message: s.Message}}
		}
	}
	if s.Phase == v1beta1.RolloutPhaseProgressing && s.NextStepAt != nil && !now.Before(s.NextStepAt.Time) {
		return s, []Transition{next(plan, &s, now, ReasonAdvanced, "")}
	}
	return s, nil
}

// next ends the current step: the next begins, or the plan is complete.
func next(plan *v1beta1.RolloutPlan, s *v1beta1.RolloutStatus, now time.Time, reason, message string) Transition {
	if int(s.Step)+1 < len(plan.Steps) {
		return enter(plan, s, s.Step+1, now, reason, message)
	}
	s.Phase, s.NextStepAt, s.Remaining = v1beta1.RolloutPhaseCompleted, nil, nil
	s.Reason = ReasonCompleted
	s.Message = fmt.Sprintf("the last step is over: %d%% on %s", s.Weight, plan.Variant)
	return Transition{Rule: s.Rule, Reason: ReasonCompleted, Message: s.Message}
}

func abort(s *v1beta1.RolloutStatus, reason, message string) {
	s.Phase, s.Weight, s.NextStepAt, s.Remaining = v1beta1.RolloutPhaseAborted, 0, nil, nil
	s.Reason, s.Message = reason, message+"; everyone is back on the distribution"
}

func pause(s *v1beta1.RolloutStatus, now time.Time, reason, message string) {
	if s.Phase == v1beta1.RolloutPhaseProgressing && s.NextStepAt != nil {
		left := max(s.NextStepAt.Sub(now), 0)
		s.Remaining = &metav1.Duration{Duration: left.Round(time.Second)}
	}
	s.Phase, s.NextStepAt = v1beta1.RolloutPhasePaused, nil
	s.Reason, s.Message = reason, message
}

func resume(plan *v1beta1.RolloutPlan, s *v1beta1.RolloutStatus, now time.Time, reason, message string) {
	step := plan.Steps[s.Step]
	switch {
	case step.Approval:
		s.Phase = v1beta1.RolloutPhaseWaiting
	default:
		s.Phase = v1beta1.RolloutPhaseProgressing
		left := time.Duration(0)
		if s.Remaining != nil {
			left = s.Remaining.Duration
		} else if step.Duration != nil {
			left = step.Duration.Duration
		}
		t := metav1.NewTime(now.Add(left)).Rfc3339Copy()
		s.NextStepAt = &t
	}
	s.Remaining = nil
	s.Reason, s.Message = reason, message
}

// ConflictError is an action the plan's phase does not allow (409).
type ConflictError struct{ Message string }

func (e *ConflictError) Error() string { return e.Message }

// Act applies a person's action to rule's plan at now. by names who (for
// the message); message is theirs.
func Act(plan *v1beta1.RolloutPlan, current *v1beta1.RolloutStatus, action v1beta1.RolloutActionType, by, message string, now time.Time) (v1beta1.RolloutStatus, Transition, error) {
	if current == nil || current.Plan != Hash(plan) {
		return v1beta1.RolloutStatus{}, Transition{}, &ConflictError{"the plan has not started yet (the server starts it within a second of the write): try again"}
	}
	s := *current.DeepCopy()
	say := func(what string) string {
		m := what + " by " + by
		if by == "" {
			m = what
		}
		if message != "" {
			m += ": " + message
		}
		return m
	}
	phase := s.Phase
	refuse := func(why string) (v1beta1.RolloutStatus, Transition, error) {
		return v1beta1.RolloutStatus{}, Transition{}, &ConflictError{fmt.Sprintf("cannot %s: the plan is %s (step %d of %d). %s", action, phase, s.Step+1, len(plan.Steps), why)}
	}
	switch action {
	case v1beta1.RolloutActionPause:
		if phase != v1beta1.RolloutPhaseProgressing && phase != v1beta1.RolloutPhaseWaiting {
			return refuse("Only a progressing or waiting plan pauses.")
		}
		pause(&s, now, ReasonPaused, say("paused"))
		return s, Transition{Rule: s.Rule, Reason: ReasonPaused, Message: s.Message}, nil
	case v1beta1.RolloutActionResume:
		if phase != v1beta1.RolloutPhasePaused {
			return refuse("Only a paused plan resumes.")
		}
		resume(plan, &s, now, ReasonResumed, say("resumed"))
		return s, Transition{Rule: s.Rule, Reason: ReasonResumed, Message: s.Message}, nil
	case v1beta1.RolloutActionApprove:
		if phase != v1beta1.RolloutPhaseWaiting {
			return refuse("Only a step that waits for approval is approved; Promote ends any step.")
		}
		t := next(plan, &s, now, ReasonApproved, "")
		t.Reason = ReasonApproved
		t.Message = say(fmt.Sprintf("step %d approved", current.Step+1)) + "; " + t.Message
		s.Message = t.Message
		return s, t, nil
	case v1beta1.RolloutActionPromote:
		if Terminal(&s) {
			return refuse("A completed or aborted plan does not move; change the plan to start again.")
		}
		t := next(plan, &s, now, ReasonPromoted, "")
		t.Reason = ReasonPromoted
		t.Message = say(fmt.Sprintf("step %d promoted", current.Step+1)) + "; " + t.Message
		s.Message = t.Message
		return s, t, nil
	case v1beta1.RolloutActionAbort:
		if phase == v1beta1.RolloutPhaseAborted {
			return refuse("It is aborted already.")
		}
		abort(&s, ReasonAborted, say("aborted"))
		return s, Transition{Rule: s.Rule, Reason: ReasonAborted, Message: s.Message, Warning: true}, nil
	}
	return v1beta1.RolloutStatus{}, Transition{}, fmt.Errorf("unknown action %q", action)
}

// Wake is how long until rule's plan next needs looking at without a
// change of the flag: its step's end, or the next guard reading; false:
// never (a terminal plan, a paused or waiting one without a guard).
func Wake(plan *v1beta1.RolloutPlan, s *v1beta1.RolloutStatus, guardInterval time.Duration, now time.Time) (time.Duration, bool) {
	if s == nil || Terminal(s) || int(s.Step) >= len(plan.Steps) {
		return 0, false
	}
	wake, ok := time.Duration(0), false
	if s.Phase == v1beta1.RolloutPhaseProgressing && s.NextStepAt != nil {
		wake, ok = max(s.NextStepAt.Sub(now), 0), true
	}
	if plan.Steps[s.Step].Guard != nil && (!ok || guardInterval < wake) {
		wake, ok = guardInterval, true
	}
	return wake, ok
}
