package revisions

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"
	"sigs.k8s.io/yaml"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/scheme"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/edit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// Options are what history, diff and rollback share.
type Options struct {
	// Sources finds the server's revisions (Discover, or a fake in tests).
	Sources func(s *session.Session) (Source, error)

	s    *session.Session
	flag string
	session.Scope
	source Source
}

// DiscoverFromSession is Options.Sources for a real server.
func DiscoverFromSession(s *session.Session) (Source, error) {
	client, err := s.Client()
	if err != nil {
		return nil, err
	}
	return Discover(client), nil
}

func (o *Options) complete(s *session.Session, flag string) error {
	o.s, o.flag = s, flag
	var err error
	if o.Scope, err = s.Scope(); err != nil {
		return err
	}
	o.source, err = o.Sources(s)
	return err
}

func (o *Options) list(ctx context.Context) ([]Revision, error) {
	// Errors are the plugin's own (exit.Error) already.
	return o.source.List(ctx, o.Namespace, o.flag)
}

func parseRevision(arg string) (int64, error) {
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || n <= 0 {
		return 0, exit.New(exit.Usage, "revisions are numbered by the flag's generation: kubectl flagpole history FLAG lists them", "%q is not a revision number", arg)
	}
	return n, nil
}

// NewCmdHistory is `history FLAG`.
func NewCmdHistory(s *session.Session, sources func(*session.Session) (Source, error)) *cobra.Command {
	o := &Options{Sources: sources}
	printFlags := genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.Scheme)
	cmd := &cobra.Command{
		Use:   "history FLAG",
		Short: "List a flag's revisions: who changed it, when, and what (where the server keeps revisions)",
		Example: `  kubectl flagpole history new-checkout
  kubectl flagpole history new-checkout -o yaml   # the FlagRevisions, specs included`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if session.OutputFormat(printFlags) != "" {
				if _, err := printFlags.ToPrinter(); err != nil {
					return exit.Wrap(exit.Usage, "", err)
				}
			}
			if err := o.complete(s, args[0]); err != nil {
				return err
			}
			revs, err := o.list(cmd.Context())
			if err != nil {
				return err
			}
			if session.OutputFormat(printFlags) != "" {
				list := &v1beta1.FlagRevisionList{}
				for _, r := range revs {
					if r.Object != nil {
						list.Items = append(list.Items, *r.Object)
					}
				}
				p, _ := printFlags.ToPrinter()
				return p.PrintObj(list, s.Out)
			}
			w := printers.GetNewTabWriter(s.Out)
			if len(revs) == 0 {
				// None kept: is there such a flag at all?
				if _, err := o.Client.FlagpoleV1beta1().Flags(o.Namespace).Get(cmd.Context(), o.flag, metav1.GetOptions{}); err != nil {
					return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: o.Namespace, Name: o.flag})
				}
				fmt.Fprintf(s.ErrOut, "flag %s/%s has no revisions kept (they are kept for --flag-revision-max-age)\n", o.Namespace, o.flag)
				return nil
			}
			fmt.Fprintln(w, "REVISION\tTIME\tUSER\tSTATE\tDEFAULT\tRULES\tCHANGE")
			for _, r := range revs {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Number, r.Time.UTC().Format(time.RFC3339), r.User, r.Spec.State, r.Spec.DefaultVariant, len(r.Spec.Rules), change(r.Diff))
			}
			return w.Flush()
		},
	}
	printFlags.AddFlags(cmd)
	return cmd
}

// NewCmdDiff is `diff FLAG REVISION [REVISION]`.
func NewCmdDiff(s *session.Session, sources func(*session.Session) (Source, error)) *cobra.Command {
	o := &Options{Sources: sources}
	return &cobra.Command{
		Use:   "diff FLAG REVISION [REVISION]",
		Short: "Show how a flag's spec changed from a revision to now (or to another revision)",
		Example: `  kubectl flagpole diff new-checkout 3
  kubectl flagpole diff new-checkout 3 5`,
		Args: cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := parseRevision(args[1])
			if err != nil {
				return err
			}
			if err := o.complete(s, args[0]); err != nil {
				return err
			}
			revs, err := o.list(cmd.Context())
			if err != nil {
				return err
			}
			a, err := Find(revs, o.Namespace, o.flag, from)
			if err != nil {
				return err
			}
			var b Revision
			if len(args) == 3 {
				to, err := parseRevision(args[2])
				if err != nil {
					return err
				}
				if b, err = Find(revs, o.Namespace, o.flag, to); err != nil {
					return err
				}
			} else {
				f, err := o.Client.FlagpoleV1beta1().Flags(o.Namespace).Get(cmd.Context(), o.flag, metav1.GetOptions{})
				if err != nil {
					return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: o.Namespace, Name: o.flag})
				}
				b = Revision{Number: f.Generation, Spec: f.Spec}
			}
			text, err := Diff(a, b)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(s.Out, text)
			return err
		},
	}
}

// Diff is the unified diff of two revisions' specs as YAML.
func Diff(a, b Revision) (string, error) {
	ya, err := yaml.Marshal(a.Spec)
	if err != nil {
		return "", err
	}
	yb, err := yaml.Marshal(b.Spec)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(ya)), B: difflib.SplitLines(string(yb)),
		FromFile: fmt.Sprintf("revision %d", a.Number), ToFile: fmt.Sprintf("revision %d", b.Number), Context: 3,
	})
}

// RollbackOptions are the options of rollback.
type RollbackOptions struct {
	Options
	Write edit.WriteFlags
	Yes   bool
}

// NewCmdRollback is `rollback FLAG REVISION`.
func NewCmdRollback(s *session.Session, sources func(*session.Session) (Source, error)) *cobra.Command {
	o := &RollbackOptions{Options: Options{Sources: sources}}
	cmd := &cobra.Command{
		Use:     "rollback FLAG REVISION",
		Short:   "Give a flag the spec of an earlier revision (an ordinary update; asks unless --yes)",
		Example: `  kubectl flagpole rollback new-checkout 3`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			number, err := parseRevision(args[1])
			if err != nil {
				return err
			}
			if err := o.complete(s, args[0]); err != nil {
				return err
			}
			return o.Run(cmd.Context(), number)
		},
	}
	o.Write.AddFlags(cmd.Flags())
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// Run rolls the flag back to revision number.
func (o *RollbackOptions) Run(ctx context.Context, number int64) error {
	revs, err := o.list(ctx)
	if err != nil {
		return err
	}
	rev, err := Find(revs, o.Namespace, o.flag, number)
	if err != nil {
		return err
	}
	asked := o.Yes
	res, err := edit.Update(ctx, o.Client, o.Namespace, o.flag, o.Write, func(f *v1beta1.Flag) error {
		if apiequality.Semantic.DeepEqual(f.Spec, rev.Spec) {
			return edit.ErrUnchanged
		}
		if !asked {
			text, err := Diff(Revision{Number: f.Generation, Spec: f.Spec}, rev)
			if err != nil {
				return err
			}
			fmt.Fprint(o.s.ErrOut, text)
			if err := o.s.Confirm(fmt.Sprintf("Roll flag %s/%s back to revision %d?", o.Namespace, o.flag, number)); err != nil {
				return err
			}
			asked = true
		}
		f.Spec = *rev.Spec.DeepCopy()
		return nil
	})
	if err != nil {
		return err
	}
	if res.Unchanged {
		fmt.Fprintf(o.s.Out, "flag %s/%s already has the spec of revision %d\n", o.Namespace, o.flag, number)
		return nil
	}
	fmt.Fprintf(o.s.Out, "flag %s/%s rolled back to revision %d (now generation %d)%s\n", o.Namespace, o.flag, number, res.Flag.Generation, res.Note())
	return nil
}

// change is a revision's CHANGE column: its first changed field, and how
// many more ("created" for the first revision kept).
func change(diff []string) string {
	switch len(diff) {
	case 0:
		return "created"
	case 1:
		return diff[0]
	default:
		return fmt.Sprintf("%s (+%d more)", diff[0], len(diff)-1)
	}
}
