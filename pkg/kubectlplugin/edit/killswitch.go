package edit

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/show"
)

// StateOptions are the options of enable and disable.
type StateOptions struct {
	Write WriteFlags
	Yes   bool

	state v1beta1.FlagState
	name  string
	s     *session.Session
	session.Scope
}

// NewCmdDisable is `disable FLAG`: the kill switch.
func NewCmdDisable(s *session.Session) *cobra.Command {
	return newStateCmd(s, v1beta1.FlagStateDisabled, &cobra.Command{
		Use:   "disable FLAG",
		Short: "Turn the kill switch on: every evaluation of the flag answers DISABLED",
		Long: `Set spec.state to Disabled. Every evaluation then answers reason DISABLED
with the flag's default variant (or the caller's code default when it has
none), whatever its rules and overrides say. Asks for confirmation unless
--yes.`,
		Example: `  kubectl flagpole disable new-checkout
  kubectl flagpole disable new-checkout --yes -n shop`,
	})
}

// NewCmdEnable is `enable FLAG`.
func NewCmdEnable(s *session.Session) *cobra.Command {
	return newStateCmd(s, v1beta1.FlagStateEnabled, &cobra.Command{
		Use:   "enable FLAG",
		Short: "Turn the kill switch off: the flag's overrides and rules decide again",
		Long: `Set spec.state to Enabled: evaluations go through the flag's overrides,
rules and default again. Asks for confirmation unless --yes.`,
		Example: `  kubectl flagpole enable new-checkout --yes`,
	})
}

func newStateCmd(s *session.Session, state v1beta1.FlagState, cmd *cobra.Command) *cobra.Command {
	o := &StateOptions{s: s, state: state}
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(args); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
	o.Write.AddFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// Complete reads the flag name, namespace and client.
func (o *StateOptions) Complete(args []string) error {
	o.name = args[0]
	var err error
	o.Scope, err = o.s.Scope()
	return err
}

// Run asks, then sets the state.
func (o *StateOptions) Run(ctx context.Context) error {
	asked := o.Yes
	res, err := Update(ctx, o.Client, o.Namespace, o.name, o.Write, func(f *v1beta1.Flag) error {
		if f.Spec.State == o.state {
			return ErrUnchanged
		}
		if !asked {
			if err := o.s.Confirm(o.question(f)); err != nil {
				return err
			}
			// Asked once: a retry after a conflict does not ask again.
			asked = true
		}
		f.Spec.State = o.state
		return nil
	})
	if err != nil {
		return err
	}
	verb := "enabled"
	if o.state == v1beta1.FlagStateDisabled {
		verb = "disabled (kill switch on)"
	}
	switch {
	case res.Unchanged:
		fmt.Fprintf(o.s.Out, "flag %s/%s is already %s\n", o.Namespace, o.name, o.state)
	case o.Write.DryRun:
		fmt.Fprintf(o.s.Out, "flag %s/%s would be %s (dry run)\n", o.Namespace, o.name, verb)
	default:
		fmt.Fprintf(o.s.Out, "flag %s/%s %s (resourceVersion %s)%s\n", o.Namespace, o.name, verb, res.Flag.ResourceVersion, res.Note())
	}
	return nil
}

func (o *StateOptions) question(f *v1beta1.Flag) string {
	if o.state == v1beta1.FlagStateEnabled {
		return fmt.Sprintf("Enable flag %s/%s? Its overrides and %d rule(s) decide again.", f.Namespace, f.Name, len(f.Spec.Rules))
	}
	serves := "the caller's code default (it has no default variant)"
	if f.Spec.DefaultVariant != "" {
		serves = fmt.Sprintf("its default variant %q = %s", f.Spec.DefaultVariant, show.VariantValue(f, f.Spec.DefaultVariant))
	}
	return fmt.Sprintf("Disable flag %s/%s? Every evaluation will answer DISABLED with %s.", f.Namespace, f.Name, serves)
}
