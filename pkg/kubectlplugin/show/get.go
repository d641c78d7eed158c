// Package show is `kubectl flagpole get` and `status`: a namespace's flags
// as the server's table (the printer columns kubectl shows), or one flag as
// a readable page: state, default, variants, rules with rollout bars,
// overrides with the time they have left, conditions.
package show

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/printers"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/scheme"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// GetOptions are the options of get and status.
type GetOptions struct {
	PrintFlags    *genericclioptions.PrintFlags
	AllNamespaces bool

	// status is true for `status`: one flag, always the readable page.
	status bool
	names  []string

	s *session.Session
	session.Scope
}

// NewCmdGet is `get [FLAG...]`.
func NewCmdGet(s *session.Session) *cobra.Command {
	o := &GetOptions{s: s, PrintFlags: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.Scheme)}
	cmd := &cobra.Command{
		Use:   "get [FLAG...]",
		Short: "List a namespace's flags, or show flags",
		Long: `Without a flag name, list the namespace's flags with the server's columns
(-o wide for more, -A for every namespace). With names, show each flag:
state, default, variants, rules and rollouts, overrides and the time they
have left, conditions. -o json|yaml|name prints the objects.`,
		Example: `  kubectl flagpole get
  kubectl flagpole get -A -o wide
  kubectl flagpole get new-checkout
  kubectl flagpole get new-checkout -o yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), o, args)
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "list the flags of every namespace")
	return cmd
}

// NewCmdStatus is `status FLAG`.
func NewCmdStatus(s *session.Session) *cobra.Command {
	o := &GetOptions{s: s, status: true, PrintFlags: genericclioptions.NewPrintFlags("").WithTypeSetter(scheme.Scheme)}
	cmd := &cobra.Command{
		Use:     "status FLAG",
		Short:   "Show one flag: state, default, rules, rollouts, overrides, conditions",
		Example: `  kubectl flagpole status new-checkout -n shop`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return run(cmd.Context(), o, args)
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *GetOptions) addFlags(cmd *cobra.Command) {
	o.PrintFlags.AddFlags(cmd)
	// PrintFlags knows json, yaml, name and templates; wide is the
	// server's table with its wide columns.
	cmd.Flag("output").Usage = "output format: json, yaml, name, wide, jsonpath=..., go-template=... (default: a table, or the readable page of each flag named)"
}

func run(ctx context.Context, o *GetOptions, args []string) error {
	if err := o.Complete(args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	return o.Run(ctx)
}

// Complete fills in the namespace and the client.
func (o *GetOptions) Complete(args []string) error {
	o.names = args
	var err error
	o.Scope, err = o.s.Scope()
	return err
}

// Validate checks the options make sense together.
func (o *GetOptions) Validate() error {
	if o.AllNamespaces && len(o.names) > 0 {
		return exit.New(exit.Usage, "name flags of one namespace (-n), or list every namespace's without names", "--all-namespaces cannot be used with flag names")
	}
	if session.OutputFormat(o.PrintFlags) == "wide" && len(o.names) > 0 {
		return exit.New(exit.Usage, "-o wide is for the list: kubectl flagpole get -o wide", "-o wide shows the list of flags, not named ones")
	}
	if _, err := o.printer(); session.OutputFormat(o.PrintFlags) != "" && session.OutputFormat(o.PrintFlags) != "wide" && err != nil {
		return exit.Wrap(exit.Usage, "", err)
	}
	return nil
}

func (o *GetOptions) printer() (printers.ResourcePrinter, error) {
	return o.PrintFlags.ToPrinter()
}

// Run lists or shows.
func (o *GetOptions) Run(ctx context.Context) error {
	if len(o.names) == 0 {
		return o.list(ctx)
	}
	flags := &v1beta1.FlagList{}
	for _, name := range o.names {
		f, err := o.Client.FlagpoleV1beta1().Flags(o.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: o.Namespace, Name: name})
		}
		flags.Items = append(flags.Items, *f)
	}
	if session.OutputFormat(o.PrintFlags) != "" {
		if len(flags.Items) == 1 {
			p, _ := o.printer()
			return p.PrintObj(&flags.Items[0], o.s.Out)
		}
		return o.printList(flags)
	}
	for i := range flags.Items {
		if i > 0 {
			fmt.Fprintln(o.s.Out)
		}
		page, err := Gather(ctx, o.Client, &flags.Items[i])
		if err != nil {
			return err
		}
		if err := page.Write(o.s.Out, o.s.Now()); err != nil {
			return err
		}
	}
	return nil
}

func (o *GetOptions) list(ctx context.Context) error {
	namespace := o.Namespace
	if o.AllNamespaces {
		namespace = ""
	}
	target := exit.Target{Verb: "list", Resource: "flags", Namespace: namespace}
	if out := session.OutputFormat(o.PrintFlags); out != "" && out != "wide" {
		list, err := o.Client.FlagpoleV1beta1().Flags(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return exit.FromAPI(err, target)
		}
		return o.printList(list)
	}
	table, err := serverTable(ctx, o.Client, namespace)
	if err != nil {
		return exit.FromAPI(err, target)
	}
	if len(table.Rows) == 0 {
		if o.AllNamespaces {
			fmt.Fprintln(o.s.ErrOut, "No flags found.")
		} else {
			fmt.Fprintf(o.s.ErrOut, "No flags found in namespace %s.\n", o.Namespace)
		}
		return nil
	}
	return printers.NewTablePrinter(printers.PrintOptions{WithNamespace: o.AllNamespaces, Wide: session.OutputFormat(o.PrintFlags) == "wide"}).PrintObj(table, o.s.Out)
}

// printList prints a list as -o asks: json and yaml (and templates) print
// the list, name each item, as kubectl does.
func (o *GetOptions) printList(list *v1beta1.FlagList) error {
	p, err := o.printer()
	if err != nil {
		return err
	}
	if session.OutputFormat(o.PrintFlags) != "name" {
		return p.PrintObj(list, o.s.Out)
	}
	for i := range list.Items {
		if err := p.PrintObj(&list.Items[i], o.s.Out); err != nil {
			return err
		}
	}
	return nil
}

// serverTable lists flags as the server's Table: the columns `kubectl get
// flags` shows, defined once, by the server.
func serverTable(ctx context.Context, client clientset.Interface, namespace string) (*metav1.Table, error) {
	raw, err := client.FlagpoleV1beta1().RESTClient().Get().
		Namespace(namespace).Resource("flags").
		SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
		DoRaw(ctx)
	if err != nil {
		// The generated client's decoder does not read a Status answering
		// a Table request; the body is that Status.
		status := &metav1.Status{}
		if json.Unmarshal(raw, status) == nil && status.Kind == "Status" {
			return nil, &apierrors.StatusError{ErrStatus: *status}
		}
		return nil, err
	}
	table := &metav1.Table{}
	if err := json.Unmarshal(raw, table); err != nil {
		return nil, fmt.Errorf("the server's table: %w", err)
	}
	// The printer reads each row's namespace from its object.
	for i := range table.Rows {
		row := &table.Rows[i]
		if len(row.Object.Raw) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal(row.Object.Raw, &u.Object); err != nil {
			return nil, fmt.Errorf("the server's table row %d: %w", i, err)
		}
		row.Object = runtime.RawExtension{Object: u}
	}
	return table, nil
}
