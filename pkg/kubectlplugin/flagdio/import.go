// Package flagdio is `kubectl flagpole import flagd`, `import featureflags`
// and `export flagd`: files, standard input or the cluster's OpenFeature
// Operator FeatureFlags in, through pkg/flagd's translation, and Flags and
// Segments out — printed (--dry-run) or applied with server-side apply.
package flagdio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/flagd"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// Dry-run modes, as kubectl names them.
const (
	dryRunNone   = "none"
	dryRunClient = "client"
	dryRunServer = "server"
)

// ImportOptions are the options of both imports.
type ImportOptions struct {
	// DryRun is none, client (print the objects) or server (validate them
	// with the server, store nothing).
	DryRun string
	// Fractional is the bucketing the flags' fractional operators had: v2
	// (flagd since 2026) or v1 (older flagd).
	Fractional string
	// Output is the format of --dry-run=client: yaml or json.
	Output string
	// ForceConflicts takes over fields another field manager owns.
	ForceConflicts bool

	featureFlags bool
	files        []string

	s *session.Session
	session.Scope
	sources []flagd.Source
}

// NewCmdImport is `import flagd|featureflags`.
func NewCmdImport(s *session.Session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import (flagd FILE... | featureflags [FILE...])",
		Short: "Import flags from flagd flag files or OpenFeature Operator FeatureFlags",
	}
	cmd.AddCommand(newImportCmd(s, false), newImportCmd(s, true))
	return cmd
}

func newImportCmd(s *session.Session, featureFlags bool) *cobra.Command {
	o := &ImportOptions{s: s, featureFlags: featureFlags}
	cmd := &cobra.Command{
		Use:   "flagd FILE...|-",
		Short: "Import flagd flag definition files (- for standard input)",
		Long: `Translate flagd flag definitions (flagd's flags.json schema; several files
are merged as flagd merges its sources) into Flags and the Segments their
$evaluators become, targeting JsonLogic translated to CEL so that every
imported flag answers as flagd does, and apply them to the namespace with
server-side apply. What cannot be translated exactly is refused with its
JSON path, and nothing is applied. --dry-run prints the objects instead.

fractional: flagd changed its bucketing in 2026. The import assumes
flagd's current one (v2) and says so; --fractional v1 keeps the buckets an
older flagd (core up to v0.13) gave its users.`,
		Example: `  kubectl flagpole import flagd flags.json -n shop
  kubectl flagpole import flagd flags.json --dry-run
  cat flags.json | kubectl flagpole import flagd - --fractional v1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return o.run(cmd.Context(), args) },
	}
	if featureFlags {
		cmd.Use = "featureflags [FILE...|-]"
		cmd.Short = "Import OpenFeature Operator FeatureFlag objects from files, or from the current cluster"
		cmd.Long = `Import the flags of OpenFeature Operator FeatureFlag objects
(core.openfeature.dev, any version): from YAML or JSON files (- for
standard input), or, without files, from the FeatureFlags of the namespace
in the current cluster. Each FeatureFlag's spec.flagSpec is a flagd
document, translated as 'import flagd' does.`
		cmd.Example = `  kubectl flagpole import featureflags -n shop                # from the cluster
  kubectl flagpole import featureflags featureflags.yaml --dry-run`
		cmd.Args = cobra.ArbitraryArgs
	}
	cmd.Flags().StringVar(&o.DryRun, "dry-run", dryRunNone, `"client" prints the objects and sends nothing; "server" has the server validate them and stores nothing`)
	cmd.Flags().Lookup("dry-run").NoOptDefVal = dryRunClient
	cmd.Flags().StringVar(&o.Fractional, "fractional", string(flagd.FractionalV2), "the fractional bucketing of the flagd the flags come from: v2 (since 2026) or v1 (flagd core up to v0.13)")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "yaml", "the format of --dry-run=client: yaml or json")
	cmd.Flags().BoolVar(&o.ForceConflicts, "force-conflicts", false, "take over fields another field manager set (server-side apply's --force-conflicts)")
	return cmd
}

func (o *ImportOptions) run(ctx context.Context, args []string) error {
	o.files = args
	if err := o.Validate(); err != nil {
		return err
	}
	if err := o.Complete(ctx); err != nil {
		return err
	}
	return o.Run(ctx)
}

// Validate checks the flags before anything is read.
func (o *ImportOptions) Validate() error {
	switch o.DryRun {
	case dryRunNone, dryRunClient, dryRunServer:
	default:
		return exit.New(exit.Usage, "", "--dry-run=%q: none, client or server", o.DryRun)
	}
	if o.Fractional != string(flagd.FractionalV1) && o.Fractional != string(flagd.FractionalV2) {
		return exit.New(exit.Usage, "", "--fractional=%q: v1 or v2", o.Fractional)
	}
	if o.Output != "yaml" && o.Output != "json" {
		return exit.New(exit.Usage, "", "-o %q: yaml or json", o.Output)
	}
	stdin := 0
	for _, f := range o.files {
		if f == "-" {
			stdin++
		}
	}
	if stdin > 1 {
		return exit.New(exit.Usage, "", "- (standard input) named more than once")
	}
	return nil
}

// Complete reads the sources.
func (o *ImportOptions) Complete(ctx context.Context) error {
	var err error
	if o.Namespace, err = o.s.Namespace(); err != nil {
		return err
	}
	// A client-side dry run needs no server, unless the sources are the cluster's.
	if o.DryRun != dryRunClient || (o.featureFlags && len(o.files) == 0) {
		if o.Client, err = o.s.Client(); err != nil {
			return err
		}
	}
	if o.featureFlags && len(o.files) == 0 {
		o.sources, err = o.clusterFeatureFlags(ctx)
		return err
	}
	for _, name := range o.files {
		data, err := o.read(name)
		if err != nil {
			return err
		}
		if !o.featureFlags {
			o.sources = append(o.sources, flagd.Source{Name: name, Data: data})
			continue
		}
		sources, err := flagd.ReadFeatureFlags(strings.NewReader(string(data)), name)
		if err != nil {
			return problems(err)
		}
		o.sources = append(o.sources, sources...)
	}
	return nil
}

func (o *ImportOptions) read(name string) ([]byte, error) {
	var r io.Reader = o.s.In
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, exit.Wrap(exit.Failed, "", err)
		}
		defer f.Close()
		r = f
	}
	// One byte past the limit tells a document too large from one at it.
	data, err := io.ReadAll(io.LimitReader(r, flagd.MaxDocumentBytes+1))
	if err != nil {
		return nil, exit.Wrap(exit.Failed, "", fmt.Errorf("%s: %w", name, err))
	}
	return data, nil
}

// featureFlagResource is the OpenFeature Operator's resource.
var featureFlagResource = schema.GroupResource{Group: "core.openfeature.dev", Resource: "featureflags"}

// clusterFeatureFlags lists the namespace's FeatureFlags, in the version the
// cluster prefers.
func (o *ImportOptions) clusterFeatureFlags(ctx context.Context) ([]flagd.Source, error) {
	cfg, err := o.s.RESTConfig()
	if err != nil {
		return nil, err
	}
	mapper, err := o.s.Config.ToRESTMapper()
	if err != nil {
		return nil, exit.Wrap(exit.Failed, "", err)
	}
	gvr, err := mapper.ResourceFor(featureFlagResource.WithVersion(""))
	if err != nil {
		return nil, exit.New(exit.NotFound, "is the OpenFeature Operator installed? Or import FeatureFlags from files: kubectl flagpole import featureflags FILE",
			"the cluster serves no %s: %v", featureFlagResource, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := dyn.Resource(gvr).Namespace(o.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, exit.FromAPI(err, exit.Target{Verb: "list", Resource: "featureflags", Namespace: o.Namespace})
	}
	if len(list.Items) == 0 {
		return nil, exit.New(exit.NotFound, "", "no FeatureFlags in namespace %s", o.Namespace)
	}
	objs := make([]*unstructured.Unstructured, len(list.Items))
	for i := range list.Items {
		objs[i] = &list.Items[i]
	}
	sources, err := flagd.FeatureFlagSources(objs)
	if err != nil {
		return nil, problems(err)
	}
	return sources, nil
}

// Run translates and prints or applies.
func (o *ImportOptions) Run(ctx context.Context) error {
	res, err := flagd.Import(o.sources, flagd.Options{Namespace: o.Namespace, Fractional: flagd.Fractional(o.Fractional)})
	if err != nil {
		return problems(err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(o.s.ErrOut, "note: %s\n", n)
	}
	if o.DryRun == dryRunClient {
		return flagd.Render(o.s.Out, res.Objects(), o.Output)
	}
	suffix := ""
	if o.DryRun == dryRunServer {
		suffix = " (server dry run)"
	}
	for _, obj := range res.Objects() {
		kind, name, err := o.apply(ctx, obj)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.s.Out, "%s.flagpole.dev/%s serverside-applied%s\n", strings.ToLower(kind), name, suffix)
	}
	return nil
}

// apply server-side-applies one imported object.
func (o *ImportOptions) apply(ctx context.Context, obj runtime.Object) (string, string, error) {
	body, err := json.Marshal(obj)
	if err != nil {
		return "", "", err
	}
	opts := metav1.PatchOptions{FieldManager: session.FieldManager, Force: &o.ForceConflicts}
	if o.DryRun == dryRunServer {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	v1 := o.Client.FlagpoleV1beta1()
	switch obj := obj.(type) {
	case *v1beta1.Segment:
		_, err = v1.Segments(o.Namespace).Patch(ctx, obj.Name, types.ApplyPatchType, body, opts)
		return "Segment", obj.Name, applyError(err, "segments", o.Namespace, obj.Name)
	case *v1beta1.Flag:
		_, err = v1.Flags(o.Namespace).Patch(ctx, obj.Name, types.ApplyPatchType, body, opts)
		return "Flag", obj.Name, applyError(err, "flags", o.Namespace, obj.Name)
	}
	return "", "", fmt.Errorf("import made a %T", obj)
}

func applyError(err error, resource, namespace, name string) error {
	if err == nil {
		return nil
	}
	e := exit.FromAPI(err, exit.Target{Verb: "patch", Resource: resource, Namespace: namespace, Name: name})
	var ee *exit.Error
	if errors.As(e, &ee) && ee.Code == exit.Conflict {
		ee.Hint = "another field manager set these fields (kubectl or a GitOps tool): re-run with --force-conflicts to take them over"
	}
	return e
}

// problems turns pkg/flagd's Problems into a usage error listing them all.
func problems(err error) error {
	var ps flagd.Problems
	if errors.As(err, &ps) {
		return exit.New(exit.Usage, "nothing was imported; each line names the JSON path that cannot be translated exactly (docs/flagd-import.md)",
			"%d problem(s):\n%s", len(ps), ps.Error())
	}
	return exit.Wrap(exit.Usage, "", err)
}
