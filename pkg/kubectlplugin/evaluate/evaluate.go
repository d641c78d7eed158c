package evaluate

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/scheme"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// Options are the options of evaluate and explain.
type Options struct {
	Context    ContextFlags
	All        bool
	Type       string
	PrintFlags *genericclioptions.PrintFlags

	// explain is true for `explain`.
	explain bool
	keys    []string

	s *session.Session
	session.Scope
	context []byte
}

// NewCmdEvaluate is `evaluate FLAG...|--all`.
func NewCmdEvaluate(s *session.Session) *cobra.Command {
	o := newOptions(s, false)
	cmd := &cobra.Command{
		Use:   "evaluate (FLAG... | --all) [-c key=value...] [--targeting-key KEY]",
		Short: "Evaluate flags for a context: value, variant, reason",
		Long: `Evaluate one or more flags (flags/evaluate), or every flag of the
namespace (--all, the evaluations resource), for the context given, as an
application would. The reason, variant and rule come from the server;
an ERROR reason is an answer, not a failure of the command.`,
		Example: `  kubectl flagpole evaluate new-checkout -c plan=enterprise -c email=ann@example.com
  kubectl flagpole evaluate --all --targeting-key user-1 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), args) },
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.All, "all", false, "evaluate every flag of the namespace")
	return cmd
}

// NewCmdExplain is `explain FLAG`.
func NewCmdExplain(s *session.Session) *cobra.Command {
	o := newOptions(s, true)
	cmd := &cobra.Command{
		Use:   "explain FLAG [-c key=value...] [--targeting-key KEY]",
		Short: "Say which rule decided a flag's answer, and why each earlier rule did not match",
		Long: `Evaluate a flag with explain: true and show what decided the answer (the
kill switch, an override, a rule or the default) and, for each rule tried
before it, why it did not match: its when was false, it read an attribute
the context lacks, a segment excluded the key or does not exist, or an
expression failed.`,
		Example: `  kubectl flagpole explain new-checkout -c plan=free --targeting-key user-1`,
		Args:    cobra.ExactArgs(1),
		RunE:    func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), args) },
	}
	o.addFlags(cmd)
	return cmd
}

func newOptions(s *session.Session, explain bool) *Options {
	return &Options{s: s, explain: explain, PrintFlags: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.Scheme)}
}

func (o *Options) addFlags(cmd *cobra.Command) {
	o.Context.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.Type, "type", "", "the type the caller expects (Boolean, String, Number, Object): another type answers TYPE_MISMATCH")
	o.PrintFlags.AddFlags(cmd)
}

func (o *Options) run(ctx context.Context, args []string) error {
	if err := o.Complete(args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	return o.Run(ctx)
}

// Complete reads the context and makes the client.
func (o *Options) Complete(args []string) error {
	o.keys = args
	var err error
	if o.context, err = o.Context.Build(o.s.In); err != nil {
		return err
	}
	o.Scope, err = o.s.Scope()
	return err
}

// Validate checks the arguments.
func (o *Options) Validate() error {
	switch {
	case o.All && len(o.keys) > 0:
		return exit.New(exit.Usage, "name flags, or pass --all for every flag", "--all cannot be used with flag names")
	case !o.All && len(o.keys) == 0:
		return exit.New(exit.Usage, "kubectl flagpole evaluate FLAG, or --all for every flag of the namespace", "no flag to evaluate")
	case o.All && o.Type != "":
		return exit.New(exit.Usage, "", "--type applies to named flags only")
	}
	if session.OutputFormat(o.PrintFlags) != "" {
		if _, err := o.PrintFlags.ToPrinter(); err != nil {
			return exit.Wrap(exit.Usage, "", err)
		}
	}
	return nil
}

// Run evaluates and prints.
func (o *Options) Run(ctx context.Context) error {
	var results []v1beta1.FlagEvaluation
	var printed []runtime.Object
	if o.All {
		ev, err := o.Client.FlagpoleV1beta1().Evaluations(o.Namespace).Create(ctx, &v1beta1.Evaluation{
			Spec: v1beta1.EvaluationSpec{Context: v1beta1.JSON{Raw: o.context}, Explain: o.explain},
		}, metav1.CreateOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "create", Resource: "evaluations", Namespace: o.Namespace})
		}
		results = ev.Status.Results
		printed = append(printed, ev)
	} else {
		for _, key := range o.keys {
			res, err := o.Client.FlagpoleV1beta1().Flags(o.Namespace).Evaluate(ctx, key, &v1beta1.EvaluationRequest{
				Context: v1beta1.JSON{Raw: o.context}, Type: v1beta1.FlagType(o.Type), Explain: o.explain,
			}, metav1.CreateOptions{})
			if err != nil {
				return exit.FromAPI(err, exit.Target{Verb: "create", Resource: "flags/evaluate", Namespace: o.Namespace, Name: key})
			}
			results = append(results, res.FlagEvaluation)
			printed = append(printed, res)
		}
	}
	if session.OutputFormat(o.PrintFlags) != "" {
		p, _ := o.PrintFlags.ToPrinter()
		for _, obj := range printed {
			if err := p.PrintObj(obj, o.s.Out); err != nil {
				return err
			}
		}
		return nil
	}
	if o.explain {
		return WriteExplanation(o.s.Out, results[0])
	}
	if o.All && len(results) == 0 {
		fmt.Fprintf(o.s.ErrOut, "No flags found in namespace %s.\n", o.Namespace)
		return nil
	}
	return WriteResults(o.s.Out, results)
}

// WriteResults prints results as a table: FLAG VALUE VARIANT REASON DECIDED-BY.
func WriteResults(out io.Writer, results []v1beta1.FlagEvaluation) error {
	w := printers.GetNewTabWriter(out)
	fmt.Fprintln(w, "FLAG\tVALUE\tVARIANT\tREASON\tDECIDED BY")
	for _, r := range results {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Key, value(r), dash(r.Variant), reason(r), decidedBy(r))
	}
	return w.Flush()
}

// WriteExplanation prints one result and how it came about.
func WriteExplanation(out io.Writer, r v1beta1.FlagEvaluation) error {
	w := printers.GetNewTabWriter(out)
	fmt.Fprintf(w, "Flag:\t%s\n", r.Key)
	fmt.Fprintf(w, "Answer:\t%s (variant %s), reason %s\n", value(r), dash(r.Variant), reason(r))
	if r.ErrorMessage != "" {
		fmt.Fprintf(w, "Error:\t%s\n", r.ErrorMessage)
	}
	ex := r.Explanation
	if ex == nil {
		fmt.Fprintln(w, "Decided by:\t(the server gave no explanation: it may predate explain)")
		return w.Flush()
	}
	switch ex.Decision {
	case v1beta1.DecisionDisabled:
		fmt.Fprintln(w, "Decided by:\tthe kill switch (state Disabled): no rule was tried")
	case v1beta1.DecisionOverride:
		fmt.Fprintf(w, "Decided by:\tFlagOverride %q, before any rule\n", r.Metadata.Override)
	case v1beta1.DecisionTypeMismatch:
		fmt.Fprintln(w, "Decided by:\tthe flag's type, which is not the one asked for")
	case v1beta1.DecisionRule:
		fmt.Fprintf(w, "Decided by:\trule %q\n", r.Metadata.Rule)
	case v1beta1.DecisionDefault:
		if len(ex.Rules) == 0 {
			fmt.Fprintln(w, "Decided by:\tthe default: the flag has no rules")
		} else {
			fmt.Fprintln(w, "Decided by:\tthe default: no rule matched")
		}
	default:
		fmt.Fprintf(w, "Decided by:\t%s\n", ex.Decision)
	}
	if len(ex.Rules) > 0 {
		fmt.Fprintln(w, "Rules tried:")
		if err := w.Flush(); err != nil {
			return err
		}
		// The table aligns on its own columns, not the header's.
		w = printers.GetNewTabWriter(out)
		fmt.Fprintln(w, "  #\tRULE\tOUTCOME\tSEGMENT\tWHY")
		for i, rule := range ex.Rules {
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\n", i+1, rule.Name, rule.Outcome, dash(rule.Segment), oneLine(rule.Message))
		}
	}
	return w.Flush()
}

func value(r v1beta1.FlagEvaluation) string {
	if r.Value == nil {
		return "(code default)"
	}
	return string(r.Value.Raw)
}

func reason(r v1beta1.FlagEvaluation) string {
	if r.ErrorCode != "" {
		return r.Reason + " " + r.ErrorCode
	}
	return r.Reason
}

func decidedBy(r v1beta1.FlagEvaluation) string {
	switch {
	case r.Metadata.Override != "":
		return "override " + r.Metadata.Override
	case r.Metadata.Rule != "":
		return "rule " + r.Metadata.Rule
	}
	return "-"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
