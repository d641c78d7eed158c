// Package plan is `kubectl flagpole plan`: where a flag's rollout plans
// are (its steps, the current one, what ends it), and the actions that move
// a plan by hand through flags/rollout — pause, resume, promote, approve,
// abort — which RBAC grants apart from editing the flag.
package plan

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/scheme"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// NewCmdPlan is `plan FLAG` and its actions.
func NewCmdPlan(s *session.Session) *cobra.Command {
	var rule string
	printFlags := genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.Scheme)
	cmd := &cobra.Command{
		Use:   "plan FLAG",
		Short: "Show a flag's rollout plans; pause, resume, promote, approve or abort one",
		Long: `Show where each rollout plan of the flag is: its steps, the current one,
the weight in effect, and what ends the step (a time, or an approval).
The actions move a plan by hand through flags/rollout, which RBAC grants
apart from editing the flag (the flagpole:rollout-approver ClusterRole).
With several plans on the flag, --rule names one.`,
		Example: `  kubectl flagpole plan new-checkout
  kubectl flagpole plan approve new-checkout --message "error rate flat"
  kubectl flagpole plan abort new-checkout --yes
  kubectl flagpole plan new-checkout -o yaml   # the flag: spec.rules[].rollout.plan, status.rollouts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if session.OutputFormat(printFlags) != "" {
				if _, err := printFlags.ToPrinter(); err != nil {
					return exit.Wrap(exit.Usage, "", err)
				}
			}
			scope, err := s.Scope()
			if err != nil {
				return err
			}
			f, err := scope.Client.FlagpoleV1beta1().Flags(scope.Namespace).Get(cmd.Context(), args[0], metav1.GetOptions{})
			if err != nil {
				return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: scope.Namespace, Name: args[0]})
			}
			plans := Plans(f, rule)
			if len(plans) == 0 {
				return noPlan(f, rule)
			}
			if session.OutputFormat(printFlags) != "" {
				// The flag: its plans are in spec.rules, where they are
				// in status.rollouts.
				p, _ := printFlags.ToPrinter()
				f.ManagedFields = nil
				return p.PrintObj(f, s.Out)
			}
			return Print(s.Out, f, plans, clock.RealClock{}.Now())
		},
	}
	cmd.PersistentFlags().StringVar(&rule, "rule", "", "the rule whose plan (needed when the flag has several)")
	printFlags.AddFlags(cmd)
	for _, a := range actions {
		cmd.AddCommand(newActionCmd(s, a, &rule))
	}
	return cmd
}

type action struct {
	verb    v1beta1.RolloutActionType
	use     string
	short   string
	confirm bool
}

var actions = []action{
	{v1beta1.RolloutActionPause, "pause", "Hold the plan: the current step's weight stays, its time left is kept", false},
	{v1beta1.RolloutActionResume, "resume", "Go on with a paused plan, from the time its step had left", false},
	{v1beta1.RolloutActionPromote, "promote", "End the current step now (its time or its approval): the next one begins", true},
	{v1beta1.RolloutActionApprove, "approve", "Approve the step that waits for approval: the next one begins", false},
	{v1beta1.RolloutActionAbort, "abort", "Stop the plan: everyone back on the rule's distribution at once", true},
}

func newActionCmd(s *session.Session, a action, rule *string) *cobra.Command {
	var message string
	var yes bool
	cmd := &cobra.Command{
		Use:   a.use + " FLAG",
		Short: a.short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scope, err := s.Scope()
			if err != nil {
				return err
			}
			flags := scope.Client.FlagpoleV1beta1().Flags(scope.Namespace)
			if a.confirm && !yes {
				f, err := flags.Get(cmd.Context(), args[0], metav1.GetOptions{})
				if err != nil {
					return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: scope.Namespace, Name: args[0]})
				}
				plans := Plans(f, *rule)
				if len(plans) == 0 {
					return noPlan(f, *rule)
				}
				if err := s.Confirm(question(a, f, plans[0])); err != nil {
					return err
				}
			}
			f, err := flags.Rollout(cmd.Context(), args[0], &v1beta1.RolloutAction{Rule: *rule, Action: a.verb, Message: message}, metav1.CreateOptions{})
			if err != nil {
				if apierrors.IsConflict(err) {
					return &exit.Error{Code: exit.Conflict, Err: err, Hint: fmt.Sprintf("see where the plan is: kubectl flagpole plan %s -n %s", args[0], scope.Namespace)}
				}
				return exit.FromAPI(err, exit.Target{Verb: "create", Resource: "flags/rollout", Namespace: scope.Namespace, Name: args[0]})
			}
			for _, p := range Plans(f, *rule) {
				if p.Status != nil && p.Status.Reason != "" {
					fmt.Fprintf(s.Out, "flag %s/%s rule %s: %s — %s\n", f.Namespace, f.Name, p.Rule.Name, p.Status.Phase, p.Status.Message)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&message, "message", "", "why, for the plan's status and its Event")
	if a.confirm {
		cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	}
	return cmd
}

func question(a action, f *v1beta1.Flag, p Plan) string {
	weight := int32(0)
	if p.Status != nil {
		weight = p.Status.Weight
	}
	if a.verb == v1beta1.RolloutActionAbort {
		return fmt.Sprintf("Abort the plan of %s/%s rule %s? %d%% of the rule's traffic on %s goes back to the distribution at once.", f.Namespace, f.Name, p.Rule.Name, weight, p.Rule.Rollout.Plan.Variant)
	}
	return fmt.Sprintf("Promote the plan of %s/%s rule %s? Its current step ends now.", f.Namespace, f.Name, p.Rule.Name)
}

func noPlan(f *v1beta1.Flag, rule string) error {
	if rule != "" {
		return exit.New(exit.NotFound, "see the flag's rules: kubectl flagpole status "+f.Name, "flag %s/%s has no rule %q with a rollout plan", f.Namespace, f.Name, rule)
	}
	return exit.New(exit.NotFound, "a plan is spec.rules[].rollout.plan: docs/rollouts.md", "flag %s/%s has no rollout plan", f.Namespace, f.Name)
}

// Plan is a rule with a plan, and where it is (nil: not started yet).
type Plan struct {
	Rule   *v1beta1.Rule
	Status *v1beta1.RolloutStatus
}

// Plans are the flag's rules with a plan (the one named, when rule is set).
func Plans(f *v1beta1.Flag, rule string) []Plan {
	var out []Plan
	for i := range f.Spec.Rules {
		r := &f.Spec.Rules[i]
		if r.Rollout == nil || r.Rollout.Plan == nil || (rule != "" && r.Name != rule) {
			continue
		}
		p := Plan{Rule: r}
		for j := range f.Status.Rollouts {
			if f.Status.Rollouts[j].Rule == r.Name {
				p.Status = &f.Status.Rollouts[j]
			}
		}
		out = append(out, p)
	}
	return out
}

// Print writes each plan: a line of where it is, then its steps.
func Print(out io.Writer, f *v1beta1.Flag, plans []Plan, now time.Time) error {
	w := printers.GetNewTabWriter(out)
	for i, p := range plans {
		if i > 0 {
			fmt.Fprintln(w)
		}
		plan := p.Rule.Rollout.Plan
		st := p.Status
		if st == nil {
			fmt.Fprintf(w, "Rule %s: rolls %s out, not started yet (the server starts it within a second)\n", p.Rule.Name, plan.Variant)
		} else {
			fmt.Fprintf(w, "Rule %s: rolls %s out — %s, step %d of %d, %d%% on %s\n", p.Rule.Name, plan.Variant, st.Phase, st.Step+1, len(plan.Steps), st.Weight, plan.Variant)
			if st.Message != "" {
				fmt.Fprintf(w, "  %s\n", st.Message)
			}
		}
		fmt.Fprintln(w, "  STEP\tWEIGHT\tENDS\tGUARD\tSTARTED")
		for j, step := range plan.Steps {
			mark := " "
			if st != nil && int(st.Step) == j && !(st.Phase == v1beta1.RolloutPhaseAborted) {
				mark = "▶"
			}
			fmt.Fprintf(w, "%s %d\t%d%%\t%s\t%s\t%s\n", mark, j+1, step.Weight, ends(step, st, j, now), guard(step), started(st, j, now))
		}
	}
	return w.Flush()
}

func ends(step v1beta1.RolloutStep, st *v1beta1.RolloutStatus, j int, now time.Time) string {
	current := st != nil && int(st.Step) == j
	switch {
	case step.Approval && current && st.Phase == v1beta1.RolloutPhaseWaiting:
		return "waiting for approval"
	case step.Approval:
		return "on approval"
	case step.Duration != nil && current && st.NextStepAt != nil:
		return fmt.Sprintf("after %s (in %s)", step.Duration.Duration, st.NextStepAt.Sub(now).Round(time.Second))
	case step.Duration != nil && current && st.Remaining != nil:
		return fmt.Sprintf("after %s (%s left, paused)", step.Duration.Duration, st.Remaining.Duration)
	case step.Duration != nil:
		return "after " + step.Duration.Duration.String()
	}
	return "completes the plan"
}

func guard(step v1beta1.RolloutStep) string {
	g := step.Guard
	if g == nil {
		return "—"
	}
	var bounds []string
	if g.AbortAbove != nil {
		bounds = append(bounds, "> "+g.AbortAbove.String())
	}
	if g.AbortBelow != nil {
		bounds = append(bounds, "< "+g.AbortBelow.String())
	}
	q := g.Query
	if len(q) > 40 {
		q = q[:37] + "..."
	}
	return fmt.Sprintf("abort if %s %s", q, strings.Join(bounds, " or "))
}

func started(st *v1beta1.RolloutStatus, j int, now time.Time) string {
	if st == nil {
		return ""
	}
	for i := len(st.Steps) - 1; i >= 0; i-- {
		if int(st.Steps[i].Step) == j {
			return st.Steps[i].StartedAt.UTC().Format(time.RFC3339) + " (" + now.Sub(st.Steps[i].StartedAt.Time).Round(time.Second).String() + " ago)"
		}
	}
	return ""
}
