package cmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	basecompatibility "k8s.io/component-base/compatibility"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/term"

	"github.com/flagpole-dev/flagpole/pkg/memlimit"
)

// NewCommand returns the flagpole-apiserver command; it serves until ctx is done.
func NewCommand(ctx context.Context) *cobra.Command {
	o := NewOptions()
	logging := logsapi.NewLoggingConfiguration()
	var printVersion versionFlag

	cmd := &cobra.Command{
		Use:   "flagpole-apiserver",
		Short: "Serve feature flags as a Kubernetes API (flagpole.dev)",
		Long: `flagpole-apiserver serves the flagpole.dev API group: Flags, Segments,
FlagOverrides and evaluation, stored in its own etcd, and OFREP for
applications.

Standalone (the default outside a cluster): embedded etcd under --data-dir, a
local CA, and an admin kubeconfig written to <data-dir>/kubeconfig.
Delegated (with --kubeconfig / --authentication-kubeconfig, or in a pod):
authentication and authorization are delegated to kube-apiserver, and storage
is the etcd given by --etcd-servers.`,
		SilenceUsage: true,
		RunE: func(c *cobra.Command, _ []string) error {
			if printed, err := printVersion.print(c.OutOrStdout()); printed {
				return err
			}
			if err := logsapi.ValidateAndApply(logging, o.ComponentGlobalsRegistry.FeatureGateFor(basecompatibility.DefaultKubeComponent)); err != nil {
				return err
			}
			cliflag.PrintFlags(c.Flags())
			// Before anything allocates much: the garbage collector works
			// to the container's memory limit.
			memlimit.Apply()
			completed, err := o.Complete()
			if err != nil {
				return err
			}
			if err := completed.Validate(); err != nil {
				return err
			}
			return completed.Run(c.Context())
		},
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%q does not take any arguments, got %q", c.CommandPath(), args)
			}
			return nil
		},
	}
	cmd.SetContext(ctx)

	fss := o.Flags()
	addVersionFlag(fss.FlagSet("global"), &printVersion)
	logsapi.AddFlags(logging, fss.FlagSet("logging"))
	fs := cmd.Flags()
	for _, f := range fss.FlagSets {
		fs.AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, fss, cols)
	return cmd
}

func init() {
	// The logging options read their own feature gates (ContextualLogging,
	// LoggingBetaOptions) from the kube feature gate.
	utilruntime.Must(logsapi.AddFeatureGates(utilfeature.DefaultMutableFeatureGate))
}
