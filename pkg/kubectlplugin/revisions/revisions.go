// Package revisions is `kubectl flagpole history`, `diff` and `rollback`:
// a flag's earlier specs, as the server records them (FlagRevisions,
// docs/lifecycle.md), and going back to one (an ordinary update with that
// spec, so RBAC, admission and the audit log treat it as any change).
//
// The commands read revisions through Source. A server that serves no
// flagrevisions (a Flagpole older than revisions) answers their list with
// a 404: that is exit 6 with what to use instead, not "not found".
package revisions

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

// Revision is one recorded state of a flag.
type Revision struct {
	// Number identifies the revision: the flag's metadata.generation.
	Number int64
	// Spec is the flag's spec at that generation.
	Spec v1beta1.FlagSpec
	// User made the change; Time is when.
	User string
	Time time.Time
	// Diff is the server's account of what changed from the previous
	// revision kept, one line per field; empty for the first.
	Diff []string
	// Object is the FlagRevision itself (-o json|yaml prints it).
	Object *v1beta1.FlagRevision
}

// Source reads a flag's revisions.
type Source interface {
	// List returns the flag's recorded revisions, oldest first.
	List(ctx context.Context, namespace, flag string) ([]Revision, error)
}

// ErrNoRevisions is Discover's answer for a server that keeps none.
var ErrNoRevisions = errors.New("this server keeps no revisions of flags")

// Discover returns the server's revisions.
func Discover(client clientset.Interface) Source { return apiSource{client} }

// apiSource reads FlagRevisions.
type apiSource struct{ client clientset.Interface }

func (s apiSource) List(ctx context.Context, namespace, flag string) ([]Revision, error) {
	// One flag's revisions: the server filters them (flag.name is a
	// field selector of flagrevisions), so the request costs the same
	// whatever the namespace holds.
	list, err := s.client.FlagpoleV1beta1().FlagRevisions(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector(flagpole.FlagRevisionFieldFlag, flag).String(),
	})
	switch {
	case apierrors.IsNotFound(err) && s.servesFlagsOnly():
		return nil, &exit.Error{Code: exit.Unsupported, Err: ErrNoRevisions,
			Hint: "this server is older than FlagRevisions: see the flag's changes in your GitOps history, or in the audit log (kubectl flagpole get FLAG shows its current generation)"}
	case err != nil:
		return nil, exit.FromAPI(err, exit.Target{Verb: "list", Resource: "flagrevisions", Namespace: namespace})
	}
	revs := make([]Revision, 0, len(list.Items))
	for i := range list.Items {
		r := &list.Items[i]
		revs = append(revs, Revision{Number: r.Change.Generation, Spec: r.Spec, User: r.Change.User, Time: r.Change.Time.Time, Diff: r.Diff, Object: r})
	}
	slices.SortFunc(revs, func(a, b Revision) int { return cmp.Compare(a.Number, b.Number) })
	return revs, nil
}

// servesFlagsOnly reports whether the server serves flagpole.dev but not
// flagrevisions: a list's 404 says the same whether the group or only the
// kind is missing. Asked only after that 404, so a user whom discovery
// is not granted to is not refused for it first.
func (s apiSource) servesFlagsOnly() bool {
	resources, err := s.client.Discovery().ServerResourcesForGroupVersion(v1beta1.SchemeGroupVersion.String())
	return err == nil && !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "flagrevisions" })
}

// Find returns revision number of revs.
func Find(revs []Revision, namespace, flag string, number int64) (Revision, error) {
	for _, r := range revs {
		if r.Number == number {
			return r, nil
		}
	}
	return Revision{}, exit.New(exit.NotFound, fmt.Sprintf("kubectl flagpole history %s -n %s lists them", flag, namespace),
		"flag %s/%s has no revision %d", namespace, flag, number)
}
