package flagrevision

import (
	"context"
	"fmt"
	"time"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/table"
)

// REST serves flagrevisions to clients: get, list and watch only.
type REST struct {
	store guard.Store
}

var (
	_ rest.Getter               = &REST{}
	_ rest.Lister               = &REST{}
	_ rest.Watcher              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.ShortNamesProvider   = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.Storage              = &REST{}
)

// Writer is the store the history controller writes revisions through.
type Writer = guard.Store

// NewStorage builds the etcd-backed storage of revisions, each stored with
// a lease that lapses maxAge after its change. Revisions are read by
// people, rarely, so they have no watch cache: the server holds none of
// them in memory (a flag's spec may be up to 1 MiB, and each flag keeps up
// to --flag-revision-limit of them), and a read goes to etcd.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, maxAge time.Duration) (*REST, Writer, error) {
	strategy := NewStrategy(scheme, maxAge, clock.RealClock{})
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &flagpole.FlagRevision{} },
		NewListFunc:               func() runtime.Object { return &flagpole.FlagRevisionList{} },
		PredicateFunc:             Matcher,
		DefaultQualifiedResource:  flagpole.Resource("flagrevisions"),
		SingularQualifiedResource: flagpole.Resource("flagrevision"),
		TTLFunc:                   strategy.TTL,

		CreateStrategy: strategy,
		UpdateStrategy: strategy,
		DeleteStrategy: strategy,

		TableConvertor: tableConvertor,
	}
	guarded, err := guard.NewStore(store, &generic.StoreOptions{RESTOptions: uncached{optsGetter}, AttrFunc: GetAttrs},
		guard.SizeLimit{Max: validation.MaxObjectBytes + validation.StatusHeadroomBytes, Path: field.NewPath("spec")})
	if err != nil {
		return nil, Writer{}, err
	}
	return &REST{guarded}, guarded, nil
}

// uncached gives the store its options without the watch cache.
type uncached struct{ generic.RESTOptionsGetter }

func (u uncached) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	opts, err := u.RESTOptionsGetter.GetRESTOptions(resource, example)
	opts.Decorator = generic.UndecoratedStorage
	return opts, err
}

func (r *REST) New() runtime.Object     { return &flagpole.FlagRevision{} }
func (r *REST) NewList() runtime.Object { return &flagpole.FlagRevisionList{} }
func (r *REST) Destroy()                { r.store.Destroy() }
func (r *REST) NamespaceScoped() bool   { return true }
func (r *REST) GetSingularName() string { return "flagrevision" }

// ShortNames lets `kubectl get flrev` work.
func (*REST) ShortNames() []string { return []string{"flrev"} }

func (r *REST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

func (r *REST) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	return r.store.List(ctx, options)
}

func (r *REST) Watch(ctx context.Context, options *metainternalversion.ListOptions) (watch.Interface, error) {
	return r.store.Watch(ctx, options)
}

func (r *REST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

var tableConvertor = table.Convertor[*flagpole.FlagRevision]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Flag", Type: "string", Description: "The flag this is a revision of."},
		{Name: "Generation", Type: "integer", Description: "The flag's metadata.generation at this revision."},
		{Name: "User", Type: "string", Description: "Who made the change."},
		{Name: "Change", Type: "string", Description: "What changed from the previous revision (its first line; -o yaml has them all)."},
		{Name: "Age", Type: "string", Description: "Time since the change."},
	},
	Cells: func(r *flagpole.FlagRevision) []interface{} {
		change := "created"
		switch {
		case len(r.Diff) == 1:
			change = r.Diff[0]
		case len(r.Diff) > 1:
			change = fmt.Sprintf("%s (+%d more)", r.Diff[0], len(r.Diff)-1)
		case r.Change.Generation > 1:
			change = "(previous revision not kept)"
		}
		return []interface{}{r.Flag.Name, r.Change.Generation, r.Change.User, change, table.Age(r.Change.Time)}
	},
}
