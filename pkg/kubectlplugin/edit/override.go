package edit

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// OverrideOptions are the options of override.
type OverrideOptions struct {
	TargetingKeys []string
	TTL           time.Duration
	Name          string
	DryRun        bool

	variant v1beta1.VariantName
	target
}

// NewCmdOverride is `override FLAG VARIANT`.
func NewCmdOverride(s *session.Session) *cobra.Command {
	o := &OverrideOptions{}
	cmd := &cobra.Command{
		Use:   "override FLAG VARIANT [--targeting-key KEY...] [--ttl 30m]",
		Short: "Force a flag to a variant for a while, for some targeting keys or everyone",
		Long: `Create a FlagOverride: until it expires, evaluations of FLAG for the
targeting keys given (or for everyone, without --targeting-key) answer
VARIANT, before any rule. The server records when it expires (creation plus
--ttl, 10s to 7d, default 1h) and deletes it afterwards.`,
		Example: `  kubectl flagpole override new-checkout on --targeting-key alice --targeting-key bob --ttl 30m
  kubectl flagpole override new-checkout off --ttl 10m      # everyone`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.complete(s, args[0]); err != nil {
				return err
			}
			o.variant = v1beta1.VariantName(args[1])
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringArrayVar(&o.TargetingKeys, "targeting-key", nil, "a targeting key the override is for (repeatable); without any it is for everyone")
	cmd.Flags().DurationVar(&o.TTL, "ttl", 0, "how long the override lasts (10s to 7d; the server's default is 1h)")
	cmd.Flags().StringVar(&o.Name, "name", "", "the FlagOverride's name (default: generated from the flag's)")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "send the override to the server to validate, without storing it")
	return cmd
}

// Run creates the override.
func (o *OverrideOptions) Run(ctx context.Context) error {
	f, err := o.Client.FlagpoleV1beta1().Flags(o.Namespace).Get(ctx, o.name, metav1.GetOptions{})
	if err != nil {
		return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: o.Namespace, Name: o.name})
	}
	if err := hasVariants(f, o.variant); err != nil {
		return err
	}
	fo := &v1beta1.FlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: o.Name},
		Spec:       v1beta1.FlagOverrideSpec{Flag: o.name, Variant: o.variant, TargetingKeys: o.TargetingKeys},
	}
	if o.Name == "" {
		fo.GenerateName = o.name + "-"
	}
	if o.TTL != 0 {
		fo.Spec.TTL = &metav1.Duration{Duration: o.TTL}
	}
	opts := metav1.CreateOptions{FieldManager: session.FieldManager}
	if o.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	created, err := o.Client.FlagpoleV1beta1().FlagOverrides(o.Namespace).Create(ctx, fo, opts)
	if err != nil {
		return exit.FromAPI(err, exit.Target{Verb: "create", Resource: "flagoverrides", Namespace: o.Namespace, Name: o.Name})
	}
	who := "everyone"
	if len(o.TargetingKeys) > 0 {
		who = fmt.Sprintf("%d targeting key(s)", len(o.TargetingKeys))
	}
	expires := "when the server says"
	if created.Status.ExpiresAt != nil {
		expires = fmt.Sprintf("at %s (in %s)", created.Status.ExpiresAt.UTC().Format(time.RFC3339), duration.HumanDuration(created.Status.ExpiresAt.Sub(o.s.Now())))
	}
	dry := ""
	if o.DryRun {
		dry = " (dry run: not stored)"
	}
	fmt.Fprintf(o.s.Out, "flagoverride %s/%s: flag %s answers %s for %s until it expires %s%s\n", o.Namespace, created.Name, o.name, o.variant, who, expires, dry)
	return nil
}
