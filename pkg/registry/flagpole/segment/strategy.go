// Package segment holds the REST storage and strategy for segments.
package segment

import (
	"context"
	"fmt"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
)

// Strategy implements create, update and delete behaviour for segments.
type Strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	compile validation.CompileFunc
}

var _ rest.RESTCreateUpdateStrategy = Strategy{}

// NewStrategy returns the strategy for segments. compile checks the CEL
// predicate (expression.Compile in the server): required, so that validation
// never runs without it.
func NewStrategy(scheme *runtime.Scheme, compile validation.CompileFunc) Strategy {
	return Strategy{scheme, names.SimpleNameGenerator, compile}
}

func (Strategy) NamespaceScoped() bool { return true }

func (Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	obj.(*flagpole.Segment).Generation = 1
}

func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	s, oldSegment := obj.(*flagpole.Segment), old.(*flagpole.Segment)
	if !apiequality.Semantic.DeepEqual(s.Spec, oldSegment.Spec) {
		s.Generation = oldSegment.Generation + 1
	}
}

func (s Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidateSegment(obj.(*flagpole.Segment), s.compile)
}

func (s Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateSegmentUpdate(obj.(*flagpole.Segment), old.(*flagpole.Segment), s.compile)
}

func (Strategy) WarningsOnCreate(_ context.Context, obj runtime.Object) []string {
	return specWarnings(&obj.(*flagpole.Segment).Spec)
}

func (Strategy) WarningsOnUpdate(_ context.Context, obj, _ runtime.Object) []string {
	return specWarnings(&obj.(*flagpole.Segment).Spec)
}

func specWarnings(spec *flagpole.SegmentSpec) []string {
	if spec.When == "" && len(spec.Include) == 0 {
		return []string{"spec: the segment has no when and no include list, so no context belongs to it"}
	}
	return nil
}

func (Strategy) Canonicalize(runtime.Object) {}

func (Strategy) AllowCreateOnUpdate(context.Context) bool { return false }

func (Strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

// GetAttrs returns the labels and selectable fields of a segment.
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	s, ok := obj.(*flagpole.Segment)
	if !ok {
		return nil, nil, fmt.Errorf("not a Segment: %T", obj)
	}
	return labels.Set(s.Labels), generic.ObjectMetaFieldsSet(&s.ObjectMeta, true), nil
}

// Matcher returns the predicate LIST and WATCH filter with.
func Matcher(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: GetAttrs}
}
