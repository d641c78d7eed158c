// Package flagrevision holds the storage of FlagRevisions: read-only to
// clients (get, list, watch), written by the server's history controller
// (pkg/controllers/flaghistory) through Writer.
package flagrevision

import (
	"context"
	"fmt"
	"time"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
)

// Strategy is how the history controller's writes are stored.
type Strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	maxAge time.Duration
	clock  clock.PassiveClock
}

// NewStrategy returns the strategy; revisions older than maxAge lapse.
func NewStrategy(typer runtime.ObjectTyper, maxAge time.Duration, c clock.PassiveClock) Strategy {
	return Strategy{typer, names.SimpleNameGenerator, maxAge, c}
}

func (Strategy) NamespaceScoped() bool { return true }

func (Strategy) PrepareForCreate(context.Context, runtime.Object) {}

func (Strategy) PrepareForUpdate(context.Context, runtime.Object, runtime.Object) {}

// Validate checks what the controller writes: its name and that it names a
// flag. The spec was valid when the flag stored it, and must be kept as it
// was even if today's validation would refuse it.
func (Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	r := obj.(*flagpole.FlagRevision)
	errs := apimachineryvalidation.ValidateObjectMeta(&r.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	for _, msg := range validation.ValidateFlagName(r.Flag.Name, false) {
		errs = append(errs, field.Invalid(field.NewPath("flag", "name"), r.Flag.Name, msg))
	}
	return errs
}

func (Strategy) ValidateUpdate(context.Context, runtime.Object, runtime.Object) field.ErrorList {
	return field.ErrorList{field.Forbidden(field.NewPath(""), "a FlagRevision is never changed")}
}

func (Strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

func (Strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

func (Strategy) Canonicalize(runtime.Object) {}

func (Strategy) AllowCreateOnUpdate(context.Context) bool { return false }

func (Strategy) AllowUnconditionalUpdate(context.Context) bool { return false }

// TTL stores a revision with a lease that lapses maxAge after its change:
// etcd removes it then, and no sweep is needed.
func (s Strategy) TTL(obj runtime.Object, _ uint64, _ bool) (uint64, error) {
	r, ok := obj.(*flagpole.FlagRevision)
	if !ok {
		return 0, fmt.Errorf("not a FlagRevision: %T", obj)
	}
	left := r.Change.Time.Add(s.maxAge).Sub(s.clock.Now())
	return uint64(max(time.Second, left).Round(time.Second) / time.Second), nil
}

// Name is the name of a flag's revision of a generation: <flag>.<generation>,
// or, when that would be too long for a name, the flag's name shortened.
func Name(flag string, generation int64) string {
	suffix := fmt.Sprintf(".%d", generation)
	if limit := utilvalidation.DNS1123SubdomainMaxLength - len(suffix); len(flag) > limit {
		flag = trimToName(flag[:limit])
	}
	return flag + suffix
}

// trimToName drops the dots and dashes a shortened name may end with.
func trimToName(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '.' || s[len(s)-1] == '-') {
		s = s[:len(s)-1]
	}
	return s
}

// GetAttrs returns the labels and selectable fields of a revision.
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	r, ok := obj.(*flagpole.FlagRevision)
	if !ok {
		return nil, nil, fmt.Errorf("not a FlagRevision: %T", obj)
	}
	return labels.Set(r.Labels), generic.AddObjectMetaFieldsSet(fields.Set{flagpole.FlagRevisionFieldFlag: r.Flag.Name}, &r.ObjectMeta, true), nil
}

// Matcher returns the predicate LIST and WATCH filter with.
func Matcher(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: GetAttrs}
}
