package edit

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/show"
)

// target is a flag a command changes.
type target struct {
	s    *session.Session
	name string
	session.Scope
}

func (t *target) complete(s *session.Session, name string) error {
	t.s, t.name = s, name
	var err error
	t.Scope, err = s.Scope()
	return err
}

// SetDefaultOptions are the options of set-default.
type SetDefaultOptions struct {
	Write   WriteFlags
	variant v1beta1.VariantName
	target
}

// NewCmdSetDefault is `set-default FLAG VARIANT`.
func NewCmdSetDefault(s *session.Session) *cobra.Command {
	o := &SetDefaultOptions{}
	cmd := &cobra.Command{
		Use:   "set-default FLAG VARIANT",
		Short: "Set the variant served when no rule matches (and by the kill switch)",
		Example: `  kubectl flagpole set-default new-checkout off
  kubectl flagpole set-default banner-color blue --if-resource-version 4711`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(s, args[0]); err != nil {
				return err
			}
			o.variant = v1beta1.VariantName(args[1])
			return o.Run(cmd.Context())
		},
	}
	o.Write.AddFlags(cmd.Flags())
	return cmd
}

// Run sets the default.
func (o *SetDefaultOptions) Run(ctx context.Context) error {
	res, err := Update(ctx, o.Client, o.Namespace, o.name, o.Write, func(f *v1beta1.Flag) error {
		if err := hasVariants(f, o.variant); err != nil {
			return err
		}
		if f.Spec.DefaultVariant == o.variant {
			return ErrUnchanged
		}
		f.Spec.DefaultVariant = o.variant
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(o.s.Out, "flag %s/%s already defaults to %s\n", o.Namespace, o.name, o.variant)
	case o.Write.DryRun:
		fmt.Fprintf(o.s.Out, "flag %s/%s would default to %s = %s (dry run)\n", o.Namespace, o.name, o.variant, show.VariantValue(res.Flag, o.variant))
	default:
		fmt.Fprintf(o.s.Out, "flag %s/%s defaults to %s = %s (resourceVersion %s)%s\n", o.Namespace, o.name, o.variant, show.VariantValue(res.Flag, o.variant), res.Flag.ResourceVersion, res.Note())
	}
	return nil
}

// hasVariants refuses names the flag has no variant for, listing those it has.
func hasVariants(f *v1beta1.Flag, names ...v1beta1.VariantName) error {
	var have []string
	for _, v := range f.Spec.Variants {
		have = append(have, string(v.Name))
	}
	for _, n := range names {
		if !slices.Contains(have, string(n)) {
			return exit.New(exit.Usage, "its variants are: "+strings.Join(have, ", "), "flag %s/%s has no variant %q", f.Namespace, f.Name, n)
		}
	}
	return nil
}

// RolloutOptions are the options of rollout.
type RolloutOptions struct {
	Write WriteFlags
	// Rule names the rule whose rollout changes; empty: the flag's only
	// rollout rule, or a new rule "rollout" when it has none.
	Rule string
	dist []v1beta1.WeightedVariant
	target
}

// DefaultRolloutRule is the name of the rule rollout adds to a flag with no rollout.
const DefaultRolloutRule = "rollout"

// NewCmdRollout is `rollout FLAG VARIANT=WEIGHT...`.
func NewCmdRollout(s *session.Session) *cobra.Command {
	o := &RolloutOptions{}
	cmd := &cobra.Command{
		Use:   "rollout FLAG VARIANT=WEIGHT...",
		Short: "Set a sticky percentage rollout between variants",
		Long: `Set the distribution of a rollout rule: each VARIANT=WEIGHT gets
WEIGHT / (sum of weights) of the contexts, bucketed by flag key and
targeting key as flagd's fractional does (a "%" after a weight is allowed).
The rule is --rule, else the flag's only rollout rule; a flag with none
gets a rule "rollout" after its other rules. Its bucketBy and bucketing
are kept.`,
		Example: `  kubectl flagpole rollout new-checkout on=10 off=90
  kubectl flagpole rollout new-checkout on=50% off=50% --rule gradual`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(s, args); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	o.Write.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Rule, "rule", "", "the rule whose rollout to set (default: the flag's only rollout rule, or a new rule \"rollout\")")
	return cmd
}

// Complete parses VARIANT=WEIGHT arguments.
func (o *RolloutOptions) Complete(s *session.Session, args []string) error {
	dist, err := ParseDistribution(args[1:])
	if err != nil {
		return err
	}
	o.dist = dist
	return o.complete(s, args[0])
}

// ParseDistribution reads VARIANT=WEIGHT arguments.
func ParseDistribution(args []string) ([]v1beta1.WeightedVariant, error) {
	var dist []v1beta1.WeightedVariant
	var total int64
	seen := map[string]bool{}
	for _, a := range args {
		name, w, ok := strings.Cut(a, "=")
		weight, err := strconv.ParseInt(strings.TrimSuffix(w, "%"), 10, 32)
		if !ok || name == "" || err != nil || weight < 0 {
			return nil, exit.New(exit.Usage, "write VARIANT=WEIGHT with a whole number, e.g. on=10 off=90", "%q: not VARIANT=WEIGHT", a)
		}
		if seen[name] {
			return nil, exit.New(exit.Usage, "name each variant once", "variant %q named twice", name)
		}
		seen[name] = true
		total += weight
		dist = append(dist, v1beta1.WeightedVariant{Variant: v1beta1.VariantName(name), Weight: int32(weight)})
	}
	if total == 0 {
		return nil, exit.New(exit.Usage, "give at least one variant a weight above 0", "the weights add up to 0")
	}
	if total > math.MaxInt32 {
		return nil, exit.New(exit.Usage, "use smaller weights: they are relative", "the weights add up to %d, more than %d", total, math.MaxInt32)
	}
	return dist, nil
}

// Run sets the rollout.
func (o *RolloutOptions) Run(ctx context.Context) error {
	var ruleName string
	res, err := Update(ctx, o.Client, o.Namespace, o.name, o.Write, func(f *v1beta1.Flag) error {
		names := make([]v1beta1.VariantName, len(o.dist))
		for i, d := range o.dist {
			names[i] = d.Variant
		}
		if err := hasVariants(f, names...); err != nil {
			return err
		}
		i, err := o.rule(f)
		if err != nil {
			return err
		}
		if i < 0 {
			f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: DefaultRolloutRule, Rollout: &v1beta1.Rollout{}})
			i = len(f.Spec.Rules) - 1
		}
		r := &f.Spec.Rules[i]
		ruleName = r.Name
		if slices.Equal(r.Rollout.Distribution, o.dist) {
			return ErrUnchanged
		}
		r.Rollout.Distribution = o.dist
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(o.s.Out, "rule %q of flag %s/%s already has this rollout\n", ruleName, o.Namespace, o.name)
	case o.Write.DryRun:
		fmt.Fprintf(o.s.Out, "rule %q of flag %s/%s would roll out (dry run):\n", ruleName, o.Namespace, o.name)
	default:
		fmt.Fprintf(o.s.Out, "rule %q of flag %s/%s rolls out (resourceVersion %s)%s:\n", ruleName, o.Namespace, o.name, res.Flag.ResourceVersion, res.Note())
	}
	for _, b := range show.RolloutBars(o.dist) {
		fmt.Fprintf(o.s.Out, "  %-12s %s %s\n", b.Variant, b.Bar, b.Percent)
	}
	return nil
}

// rule finds the index of the rule to change, or -1 to add one.
func (o *RolloutOptions) rule(f *v1beta1.Flag) (int, error) {
	if o.Rule != "" {
		for i, r := range f.Spec.Rules {
			if r.Name != o.Rule {
				continue
			}
			if r.Rollout == nil {
				return 0, exit.New(exit.Usage, "choose a rule with a rollout (kubectl flagpole get "+f.Name+")", "rule %q of flag %s/%s serves variant %q, it has no rollout", r.Name, f.Namespace, f.Name, r.Variant)
			}
			return i, nil
		}
		return 0, exit.New(exit.NotFound, "kubectl flagpole get "+f.Name+" lists its rules", "flag %s/%s has no rule %q", f.Namespace, f.Name, o.Rule)
	}
	var found []string
	at := -1
	for i, r := range f.Spec.Rules {
		if r.Rollout != nil {
			found = append(found, r.Name)
			at = i
		}
	}
	if len(found) > 1 {
		return 0, exit.New(exit.Usage, "choose one with --rule", "flag %s/%s has %d rollout rules (%s)", f.Namespace, f.Name, len(found), strings.Join(found, ", "))
	}
	if at < 0 && slices.ContainsFunc(f.Spec.Rules, func(r v1beta1.Rule) bool { return r.Name == DefaultRolloutRule }) {
		return 0, exit.New(exit.Usage, "", "flag %s/%s has no rollout, and a rule named %q already exists to add one as", f.Namespace, f.Name, DefaultRolloutRule)
	}
	return at, nil
}
