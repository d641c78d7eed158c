package flag

import (
	"context"
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
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
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

// Storage is everything served under flags.
type Storage struct {
	Flag   *REST
	Status *StatusREST
	// Local lists and watches flags as stored, without usage: the server's
	// own informers read it (LocalInformers), so that the status
	// controller compares and writes what is stored.
	Local guard.Store
}

// UsageSource is what reads of flags take usage from (usage.View).
type UsageSource interface {
	// Usage is the flag's usage at now.
	Usage(uid types.UID, now time.Time) *flagpole.FlagUsage
	// LastEvaluated is when the flag was last evaluated; zero: never.
	LastEvaluated(uid types.UID) time.Time
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
// derives the status a write stores (NewStrategy); usage is added to every
// flag a read returns (status.usage, never stored) and printed.
func NewStorage(scheme *runtime.Scheme, optsGetter generic.RESTOptionsGetter, compile validation.CompileFunc, status StatusFunc, source UsageSource) (Storage, error) {
	if compile == nil || source == nil {
		return Storage{}, errors.New("flag storage needs an expression compiler and a usage source")
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

		TableConvertor: newTableConvertor(source),
	}
	guarded, err := guard.NewStore(store, &generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: GetAttrs}, specSize)
	if err != nil {
		return Storage{}, err
	}
	// The same store (one watch cache), before the decorator is set.
	local := *store
	// Usage is joined on read: the Flag in etcd changes only when a
	// condition does, never with traffic. Watch events do not pass the
	// decorator (a usage change is not an event); the table convertor asks
	// the source itself, so kubectl get -w prints it too.
	store.Decorator = decorateUsage(source, clock.RealClock{})

	statusStore := *store
	statusStrategy := NewStatusStrategy(strategy)
	statusStore.UpdateStrategy = statusStrategy
	statusStore.ResetFieldsStrategy = statusStrategy
	statusGuarded := guard.Store{Store: &statusStore, Size: statusSize}
	statusGuarded.Size.Storage = guarded.Size.Storage
	return Storage{Flag: &REST{guarded}, Status: &StatusREST{store: statusGuarded}, Local: guard.Store{Store: &local, Size: guarded.Size}}, nil
}

// decorateUsage sets status.usage of every flag a read returns. The objects
// are the store's copies (the watch cache hands out copies of its structs),
// and only their own field is set, so nothing shared is changed.
func decorateUsage(source UsageSource, c clock.PassiveClock) func(runtime.Object) {
	return func(obj runtime.Object) {
		now := c.Now()
		switch o := obj.(type) {
		case *flagpole.Flag:
			o.Status.Usage = source.Usage(o.UID, now)
		case *flagpole.FlagList:
			for i := range o.Items {
				o.Items[i].Status.Usage = source.Usage(o.Items[i].UID, now)
			}
		}
	}
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

func newTableConvertor(source UsageSource) table.Convertor[*flagpole.Flag] {
	return table.Convertor[*flagpole.Flag]{
		Columns: []metav1.TableColumnDefinition{
			{Name: "Type", Type: "string", Description: "The type of every variant value."},
			{Name: "State", Type: "string", Description: "Enabled, or Disabled (the kill switch)."},
			{Name: "Default", Type: "string", Description: "The variant served when no rule matches."},
			{Name: "Rules", Type: "integer", Description: "How many targeting rules the flag has."},
			{Name: "Last-Evaluated", Type: "string", Description: "How long ago the flag was last evaluated, by any replica or reporting provider; never: not since counting began."},
			{Name: "Stale", Type: "string", Description: "Why the flag is due for clean-up (the Stale condition's reason), or <none>."},
			table.AgeColumn,
			{Name: "Lifecycle", Type: "string", Priority: 1, Description: "The flag's lifecycle kind (spec.lifecycle.kind)."},
			{Name: "Evaluations-24h", Type: "integer", Priority: 1, Description: "Evaluations in the last day (status.usage)."},
			{Name: "Owner", Type: "string", Priority: 1, Description: "Who is responsible for the flag."},
			{Name: "Description", Type: "string", Priority: 1, Description: "What the flag is for."},
		},
		Cells: func(f *flagpole.Flag) []interface{} {
			def := f.Spec.DefaultVariant
			if def == "" {
				def = "<none>"
			}
			lastEvaluated := "never"
			if t := source.LastEvaluated(f.UID); !t.IsZero() {
				lastEvaluated = table.Age(metav1.NewTime(t))
			}
			stale := "<none>"
			for _, c := range f.Status.Conditions {
				if c.Type == flagpole.FlagConditionStale && c.Status == metav1.ConditionTrue {
					stale = c.Reason
				}
			}
			lifecycle := "<none>"
			if f.Spec.Lifecycle != nil {
				lifecycle = string(f.Spec.Lifecycle.Kind)
			}
			var day int64
			u := f.Status.Usage
			if u == nil {
				u = source.Usage(f.UID, time.Now())
			}
			for _, w := range u.Windows {
				if w.Window == usage.WindowDay {
					day = w.Evaluations
				}
			}
			return []interface{}{string(f.Spec.Type), string(f.Spec.State), def, int64(len(f.Spec.Rules)), lastEvaluated, stale,
				table.Age(f.CreationTimestamp), lifecycle, day, f.Spec.Owner, f.Spec.Description}
		},
	}
}
