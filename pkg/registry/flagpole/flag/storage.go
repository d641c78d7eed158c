package flag

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/table"
)

// Storage is everything served under flags.
type Storage struct {
	Flag   *REST
	Status *StatusREST
}

// REST serves flags.
type REST struct {
	guard.Store
}

var (
	_ rest.ShortNamesProvider = &REST{}
	_ rest.CategoriesProvider = &REST{}
)

// ShortNames lets `kubectl get fl` work.
func (*REST) ShortNames() []string { return []string{"fl"} }

// Categories lets `kubectl get flagpole` list every Flagpole kind.
func (*REST) Categories() []string { return []string{"flagpole"} }

// NewStorage builds the etcd-backed storage for flags and flags/status;
// compile checks CEL expressions on write (expression.Compile); status
// derives the status a write stores (NewStrategy).
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, compile validation.CompileFunc, status StatusFunc) (Storage, error) {
	if compile == nil {
		return Storage{}, errors.New("flag storage needs an expression compiler")
	}
	strategy := NewStrategy(scheme, compile, status, clock.RealClock{})
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return &flagpole.Flag{} },
		NewListFunc:               func() runtime.Object { return &flagpole.FlagList{} },
		PredicateFunc:             Matcher,
		DefaultQualifiedResource:  flagpole.Resource("flags"),
		SingularQualifiedResource: flagpole.Resource("flag"),

		CreateStrategy:      strategy,
		UpdateStrategy:      strategy,
		DeleteStrategy:      strategy,
		ResetFieldsStrategy: strategy,

		TableConvertor: tableConvertor,
	}
	guarded, err := guard.NewStore(store, &generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: GetAttrs}, specSize)
	if err != nil {
		return Storage{}, err
	}

	statusStore := *store
	statusStrategy := NewStatusStrategy(strategy)
	statusStore.UpdateStrategy = statusStrategy
	statusStore.ResetFieldsStrategy = statusStrategy
	statusGuarded := guard.Store{Store: &statusStore, Size: statusSize}
	statusGuarded.Size.Storage = guarded.Size.Storage
	return Storage{Flag: &REST{guarded}, Status: &StatusREST{store: statusGuarded}}, nil
}

// What a write may take as stored: a status write StatusHeadroomBytes
// beyond MaxObjectBytes, so that a spec written up to the limit still gets
// its status.
var (
	specSize   = guard.SizeLimit{Max: validation.MaxObjectBytes, Path: field.NewPath("spec")}
	statusSize = guard.SizeLimit{Max: validation.MaxObjectBytes + validation.StatusHeadroomBytes, Path: field.NewPath("status")}
)

// StatusREST serves flags/status: get, update and patch of status only.
type StatusREST struct {
	store guard.Store
}

var (
	_ rest.Patcher             = &StatusREST{}
	_ rest.TableConvertor      = &StatusREST{}
	_ rest.ResetFieldsStrategy = &StatusREST{}
)

func (r *StatusREST) New() runtime.Object { return &flagpole.Flag{} }

// Destroy does nothing: the main resource's store owns the shared storage.
func (r *StatusREST) Destroy() {}

func (r *StatusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

func (r *StatusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// Status is never created through the subresource.
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

func (r *StatusREST) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return r.store.GetResetFields()
}

func (r *StatusREST) ConvertToTable(ctx context.Context, object runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, object, tableOptions)
}

var tableConvertor = table.Convertor[*flagpole.Flag]{
	Columns: []metav1.TableColumnDefinition{
		{Name: "Type", Type: "string", Description: "The type of every variant value."},
		{Name: "State", Type: "string", Description: "Enabled, or Disabled (the kill switch)."},
		{Name: "Default", Type: "string", Description: "The variant served when no rule matches."},
		{Name: "Rules", Type: "integer", Description: "How many targeting rules the flag has."},
		table.AgeColumn,
		{Name: "Owner", Type: "string", Priority: 1, Description: "Who is responsible for the flag."},
		{Name: "Description", Type: "string", Priority: 1, Description: "What the flag is for."},
	},
	Cells: func(f *flagpole.Flag) []interface{} {
		def := f.Spec.DefaultVariant
		if def == "" {
			def = "<none>"
		}
		return []interface{}{string(f.Spec.Type), string(f.Spec.State), def, int64(len(f.Spec.Rules)), table.Age(f.CreationTimestamp), f.Spec.Owner, f.Spec.Description}
	},
}
