// Package flagoverride holds the REST storage and strategy for flag
// overrides: objects that expire.
package flagoverride

import (
	"context"
	"fmt"
	"math"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
)

// Strategy implements create, update and delete behaviour for overrides.
type Strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	clock clock.PassiveClock
}

// NewStrategy returns the strategy for overrides; c decides when they expire.
func NewStrategy(scheme *runtime.Scheme, c clock.PassiveClock) Strategy {
	return Strategy{scheme, names.SimpleNameGenerator, c}
}

func (Strategy) NamespaceScoped() bool { return true }

// PrepareForCreate records when the override expires; nothing changes it later.
func (s Strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	o := obj.(*flagpole.FlagOverride)
	o.Generation = 1
	o.Status = flagpole.FlagOverrideStatus{}
	if o.Spec.TTL != nil {
		// Rounded up to the second metav1.Time keeps, so the override lasts at least its ttl.
		exp := s.clock.Now().Add(o.Spec.TTL.Duration).Add(time.Second - 1).Truncate(time.Second)
		o.Status.ExpiresAt = &metav1.Time{Time: exp}
	}
}

func (Strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	o, oldO := obj.(*flagpole.FlagOverride), old.(*flagpole.FlagOverride)
	o.Status = oldO.Status
	if !apiequality.Semantic.DeepEqual(o.Spec, oldO.Spec) {
		o.Generation = oldO.Generation + 1
	}
}

func (s Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidateFlagOverride(obj.(*flagpole.FlagOverride))
}

func (s Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateFlagOverrideUpdate(obj.(*flagpole.FlagOverride), old.(*flagpole.FlagOverride))
}

func (Strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }

func (s Strategy) WarningsOnUpdate(_ context.Context, obj, _ runtime.Object) []string {
	if o := obj.(*flagpole.FlagOverride); o.Status.ExpiresAt != nil && !s.clock.Now().Before(o.Status.ExpiresAt.Time) {
		return []string{"the override has expired and no longer affects evaluation; it is deleted shortly"}
	}
	return nil
}

func (Strategy) Canonicalize(runtime.Object) {}

func (Strategy) AllowCreateOnUpdate(context.Context) bool { return false }

func (Strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

// TTL returns the seconds left until expiresAt, for the object's etcd lease.
// Computed from the stored expiry, never from spec.ttl, so an update keeps
// the original deadline. The lease is garbage collection only: evaluation
// ignores an override past expiresAt whether or not it still exists.
func (s Strategy) TTL(obj runtime.Object, _ uint64, _ bool) (uint64, error) {
	o, ok := obj.(*flagpole.FlagOverride)
	if !ok || o.Status.ExpiresAt == nil {
		return 0, fmt.Errorf("flag override without status.expiresAt")
	}
	left := math.Ceil(o.Status.ExpiresAt.Sub(s.clock.Now()).Seconds())
	if left < 1 {
		left = 1
	}
	return uint64(left), nil
}

// GetAttrs returns the labels and selectable fields of an override.
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	o, ok := obj.(*flagpole.FlagOverride)
	if !ok {
		return nil, nil, fmt.Errorf("not a FlagOverride: %T", obj)
	}
	return labels.Set(o.Labels), generic.AddObjectMetaFieldsSet(fields.Set{flagpole.FlagOverrideFieldFlag: o.Spec.Flag}, &o.ObjectMeta, true), nil
}

// Matcher returns the predicate LIST and WATCH filter with.
func Matcher(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: GetAttrs}
}
