// Package edit is the plugin's commands that change a flag: enable and
// disable (the kill switch), set-default, rollout, and override (a
// FlagOverride). Each change is computed from the flag as it is now and
// written with its resourceVersion as precondition; a concurrent change
// makes the write conflict, and the change is then recomputed from the new
// flag and written again (retry.RetryOnConflict), so nobody's change is
// lost. With --if-resource-version the change applies only to that
// revision, and a conflict is reported instead.
package edit

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/pflag"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

// WriteFlags are what every flag change takes.
type WriteFlags struct {
	// IfResourceVersion, when set, is the only revision the change may
	// apply to: a flag changed since is a conflict, reported (exit 5).
	IfResourceVersion string
	// DryRun sends the change with dryRun=All: validated, not stored.
	DryRun bool
}

// AddFlags adds --if-resource-version and --dry-run.
func (f *WriteFlags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.IfResourceVersion, "if-resource-version", "", "change the flag only if it is still at this resourceVersion (else exit 5, changing nothing); without it a concurrent change is merged by recomputing this change on top of it")
	fs.BoolVar(&f.DryRun, "dry-run", false, "send the change to the server to validate, without storing it")
}

// ErrUnchanged is what a Mutation returns when the flag already is as asked.
var ErrUnchanged = errors.New("unchanged")

// Mutation changes f in place, or returns ErrUnchanged when f already is as
// asked. It runs again on the fresh flag after every conflict, so it must
// decide from f alone.
type Mutation func(f *v1beta1.Flag) error

// Note says, for people, what a write had to do besides the change: how
// many concurrent changes it was recomputed on.
func (r Result) Note() string {
	switch r.Retries {
	case 0:
		return ""
	case 1:
		return " (recomputed on a concurrent change)"
	}
	return fmt.Sprintf(" (recomputed on %d concurrent changes)", r.Retries)
}

// Result says what Update did.
type Result struct {
	// Flag is the flag after the change (or as found, when unchanged).
	Flag *v1beta1.Flag
	// Unchanged is true when the flag already was as asked.
	Unchanged bool
	// Retries counts the conflicts the change was recomputed after.
	Retries int
}

// Update applies mutate to the flag namespace/name and writes it, as the
// package comment says.
func Update(ctx context.Context, client clientset.Interface, namespace, name string, wf WriteFlags, mutate Mutation) (Result, error) {
	flags := client.FlagpoleV1beta1().Flags(namespace)
	var res Result
	attempts := 0
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		attempts++
		f, err := flags.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return exit.FromAPI(err, exit.Target{Verb: "get", Resource: "flags", Namespace: namespace, Name: name})
		}
		if wf.IfResourceVersion != "" && f.ResourceVersion != wf.IfResourceVersion {
			return exit.New(exit.Conflict, "look at the flag again (kubectl flagpole get "+name+") and re-run with its current resourceVersion, or without --if-resource-version",
				"flag %s/%s is at resourceVersion %s, not %s: it changed since; nothing was written", namespace, name, f.ResourceVersion, wf.IfResourceVersion)
		}
		if err := mutate(f); err != nil {
			if errors.Is(err, ErrUnchanged) {
				res = Result{Flag: f, Unchanged: true}
				return nil
			}
			return err
		}
		opts := metav1.UpdateOptions{FieldManager: session.FieldManager}
		if wf.DryRun {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		updated, err := flags.Update(ctx, f, opts)
		if err != nil {
			// A conflict is retried: the next attempt reads the flag again
			// (and, with --if-resource-version, reports it changed).
			if apierrors.IsConflict(err) {
				return err
			}
			return exit.FromAPI(err, exit.Target{Verb: "update", Resource: "flags", Namespace: namespace, Name: name})
		}
		res = Result{Flag: updated}
		return nil
	})
	res.Retries = attempts - 1
	if apierrors.IsConflict(err) {
		return res, exit.Wrap(exit.Conflict, "the flag is being changed by someone else right now: look at it again (kubectl flagpole get "+name+") and re-run",
			fmt.Errorf("flag %s/%s changed under each of %d attempts; nothing was written: %w", namespace, name, attempts, err))
	}
	return res, err
}
