// Package kubectlplugin is kubectl-flagpole, the kubectl plugin for
// Flagpole: `kubectl flagpole get|status|evaluate|explain|enable|disable|
// set-default|rollout|plan|override|history|diff|rollback|import|export|manifest|
// console`. Every command talks to the API with the user's kubeconfig
// (k8s.io/cli-runtime's flags and the generated clientset), so RBAC, audit
// and admission apply unchanged. Each command is an Options struct with
// Complete/Validate/Run in a package named for what it does; this package
// assembles them, prints failures and turns them into exit codes (package
// exit).
package kubectlplugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/console"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/edit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/evaluate"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/flagdio"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/manifest"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/plan"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/revisions"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/show"
	"github.com/flagpole-dev/flagpole/pkg/version"
)

// NewCommand is the root command, on session s.
func NewCommand(s *session.Session) *cobra.Command {
	root := &cobra.Command{
		Use:   "kubectl-flagpole",
		Short: "Manage Flagpole feature flags with your kubectl credentials",
		Long: `kubectl flagpole manages the feature flags of a Flagpole server
(flagpole.dev) with your kubeconfig's credentials: what you may see and
change is what RBAC allows you, and the server's audit log records it.

Exit codes: 0 done; 1 failed; 2 usage or input refused; 3 not found;
4 forbidden or unauthorized; 5 conflict with a concurrent change;
6 not supported by the server; 7 not confirmed.`,
		Version:       version.Get().String(),
		SilenceErrors: true,
		SilenceUsage:  true,
		// A plugin is run as `kubectl flagpole`, which is how it shows itself.
		Annotations: map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl flagpole"},
	}
	s.AddFlags(root.PersistentFlags())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return exit.New(exit.Usage, "see: "+cmd.CommandPath()+" --help", "%v", err)
	})
	root.AddGroup(
		&cobra.Group{ID: "read", Title: "Look at flags:"},
		&cobra.Group{ID: "change", Title: "Change flags:"},
		&cobra.Group{ID: "history", Title: "Revisions (where the server keeps them):"},
		&cobra.Group{ID: "move", Title: "Move flags in and out:"},
		&cobra.Group{ID: "console", Title: "In a browser:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("read", show.NewCmdGet(s), show.NewCmdStatus(s), evaluate.NewCmdEvaluate(s), evaluate.NewCmdExplain(s))
	add("change", edit.NewCmdEnable(s), edit.NewCmdDisable(s), edit.NewCmdSetDefault(s), edit.NewCmdRollout(s), plan.NewCmdPlan(s), edit.NewCmdOverride(s))
	add("history",
		revisions.NewCmdHistory(s, revisions.DiscoverFromSession),
		revisions.NewCmdDiff(s, revisions.DiscoverFromSession),
		revisions.NewCmdRollback(s, revisions.DiscoverFromSession))
	add("move", flagdio.NewCmdImport(s), flagdio.NewCmdExport(s), manifest.NewCmdManifest(s))
	add("console", console.NewCmdConsole(s))
	codeErrors(root)
	return root
}

// codeErrors makes every error a command's RunE returns an exit.Error (an
// API error gets the code its status implies, anything else Failed), so
// that Main can tell them from cobra's own refusals, which are usage errors.
func codeErrors(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			return exit.Wrap(exit.CodeOf(err), "", err)
		}
	}
	for _, c := range cmd.Commands() {
		codeErrors(c)
	}
}

// Main runs the plugin with args and returns its exit code.
func Main(args []string, streams genericiooptions.IOStreams) int {
	s := session.New(streams)
	root := NewCommand(s)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return int(exit.OK)
	}
	var e *exit.Error
	if !errors.As(err, &e) {
		// What cobra itself refuses (an unknown command, wrong arguments)
		// is a usage error; every command's own errors are exit.Errors.
		e = &exit.Error{Code: exit.Usage, Err: err, Hint: "see: kubectl flagpole --help"}
	}
	fmt.Fprintf(streams.ErrOut, "error: %v\n", e.Err)
	if e.Hint != "" {
		fmt.Fprintf(streams.ErrOut, "hint: %s\n", e.Hint)
	}
	return int(e.Code)
}
