package segment

import (
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/table"
)

// REST serves segments.
type REST struct {
	guard.Store
}

var (
	_ rest.ShortNamesProvider = &REST{}
	_ rest.CategoriesProvider = &REST{}
)

// ShortNames lets `kubectl get seg` work.
func (*REST) ShortNames() []string { return []string{"seg"} }

// Categories lets `kubectl get flagpole` list every Flagpole kind.
func (*REST) Categories() []string { return []string{"flagpole"} }

// NewREST builds the etcd-backed storage for segments; compile checks CEL
// expressions on write (expression.Compile).
func NewREST(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, compile validation.CompileFunc) (*REST, error) {
	if compile == nil {
		return nil, errors.New("segment storage needs an expression compiler")
	}
	strategy := NewStrategy(scheme, compile)
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &flagpole.Segment{} },
		NewListFunc:               func() runtime.Object { return &flagpole.SegmentList{} },
		PredicateFunc:             Matcher,
		DefaultQualifiedResource:  flagpole.Resource("segments"),
		SingularQualifiedResource: flagpole.Resource("segment"),

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

var tableConvertor = table.Convertor[*flagpole.Segment]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Include", Type: "integer", Description: "Targeting keys that always belong."},
		{Name: "Exclude", Type: "integer", Description: "Targeting keys that never belong."},
		table.AgeColumn,
		{Name: "When", Type: "string", Priority: 1, Description: "The CEL predicate."},
		{Name: "Description", Type: "string", Priority: 1, Description: "Who the segment is."},
	},
	Cells: func(s *flagpole.Segment) []interface{} {
		return []interface{}{int64(len(s.Spec.Include)), int64(len(s.Spec.Exclude)), table.Age(s.CreationTimestamp), s.Spec.When, s.Spec.Description}
	},
}
