package flagoverride

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/table"
)

// REST serves flagoverrides.
type REST struct {
	guard.Store
}

var (
	_ rest.ShortNamesProvider = &REST{}
	_ rest.CategoriesProvider = &REST{}
)

// ShortNames lets `kubectl get fo` work.
func (*REST) ShortNames() []string { return []string{"fo"} }

// Categories lets `kubectl get flagpole` list every Flagpole kind.
func (*REST) Categories() []string { return []string{"flagpole"} }

// NewREST builds the etcd-backed storage for overrides, each stored with a
// lease that lapses at its expiresAt.
func NewREST(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter) (*REST, error) {
	strategy := NewStrategy(scheme, clock.RealClock{})
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &flagpole.FlagOverride{} },
		NewListFunc:               func() runtime.Object { return &flagpole.FlagOverrideList{} },
		PredicateFunc:             Matcher,
		DefaultQualifiedResource:  flagpole.Resource("flagoverrides"),
		SingularQualifiedResource: flagpole.Resource("flagoverride"),
		TTLFunc:                   strategy.TTL,

		CreateStrategy: strategy,
		UpdateStrategy: strategy,
		DeleteStrategy: strategy,

		TableConvertor: tableConvertor,
	}
	guarded, err := guard.NewStore(store, &generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: GetAttrs}, guard.SizeLimit{Max: validation.MaxObjectBytes, Path: field.NewPath("spec")})
	if err != nil {
		return nil, err
	}
	return &REST{guarded}, nil
}

var tableConvertor = table.Convertor[*flagpole.FlagOverride]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Flag", Type: "string", Description: "The flag overridden."},
		{Name: "Variant", Type: "string", Description: "The variant forced."},
		{Name: "Expires", Type: "string", Description: "Time until the override expires."},
		table.AgeColumn,
		{Name: "Targeting Keys", Type: "integer", Priority: 1, Description: "How many targeting keys it is limited to; 0 means everyone."},
	},
	Cells: func(o *flagpole.FlagOverride) []interface{} {
		return []interface{}{o.Spec.Flag, o.Spec.Variant, expires(o.Status.ExpiresAt), table.Age(o.CreationTimestamp), int64(len(o.Spec.TargetingKeys))}
	},
}

func expires(t *metav1.Time) string {
	if t == nil {
		return "<unknown>"
	}
	left := time.Until(t.Time)
	if left <= 0 {
		return "expired"
	}
	return duration.HumanDuration(left)
}
