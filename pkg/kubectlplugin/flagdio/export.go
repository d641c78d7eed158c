package flagdio

import (
	"context"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/flagd"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// ExportOptions are the options of export flagd.
type ExportOptions struct {
	Fractional string

	names []string
	s     *session.Session
	session.Scope
}

// NewCmdExport is `export flagd [FLAG...]`.
func NewCmdExport(s *session.Session) *cobra.Command {
	o := &ExportOptions{s: s}
	flagdCmd := &cobra.Command{
		Use:   "flagd [FLAG...]",
		Short: "Write the namespace's flags (or those named) as a flagd flag definition document",
		Long: `Write flags, and the Segments they name, as one flagd document on standard
output, for flags whose rules flagd can express: a flag imported from flagd
and unchanged is written as imported; any other flag's rules are translated
back from CEL. A flag flagd cannot express is refused with its field path,
and nothing is written.`,
		Example: `  kubectl flagpole export flagd -n shop > flags.json
  kubectl flagpole export flagd new-checkout banner-color`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.names = args
			if err := o.Complete(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	flagdCmd.Flags().StringVar(&o.Fractional, "fractional", string(flagd.FractionalV2), "the fractional bucketing of the flagd the document is for: v2 or v1")
	cmd := &cobra.Command{Use: "export flagd", Short: "Export flags as flagd flag definitions"}
	cmd.AddCommand(flagdCmd)
	return cmd
}

// Complete fills in the namespace and client.
func (o *ExportOptions) Complete() error {
	if o.Fractional != string(flagd.FractionalV1) && o.Fractional != string(flagd.FractionalV2) {
		return exit.New(exit.Usage, "", "--fractional=%q: v1 or v2", o.Fractional)
	}
	var err error
	o.Scope, err = o.s.Scope()
	return err
}

// Run reads the flags and segments and writes the document.
func (o *ExportOptions) Run(ctx context.Context) error {
	v1 := o.Client.FlagpoleV1beta1()
	var flags []v1beta1.Flag
	if len(o.names) == 0 {
		list, err := v1.Flags(o.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "list", Resource: "flags", Namespace: o.Namespace})
		}
		flags = list.Items
	}
	for _, name := range o.names {
		f, err := v1.Flags(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: o.Namespace, Name: name})
		}
		flags = append(flags, *f)
	}
	if len(flags) == 0 {
		return exit.New(exit.NotFound, "", "no flags in namespace %s to export", o.Namespace)
	}
	segments, err := v1.Segments(o.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return exit.FromAPI(err, exit.Target{Verb: "list", Resource: "segments", Namespace: o.Namespace})
	}
	doc, err := flagd.Export(flags, segments.Items, flagd.ExportOptions{Fractional: flagd.Fractional(o.Fractional)})
	if err != nil {
		return exportProblems(err)
	}
	_, err = o.s.Out.Write(doc)
	return err
}

func exportProblems(err error) error {
	e := problems(err)
	if ee, ok := e.(*exit.Error); ok {
		ee.Hint = "nothing was written; export the other flags by name, or change these so that flagd can express them (docs/flagd-import.md#export)"
	}
	return e
}
