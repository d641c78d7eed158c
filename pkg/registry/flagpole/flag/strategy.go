// Package flag holds the REST storage and strategies for flags and flags/status.
package flag

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
	"k8s.io/utils/clock"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
)

// Strategy implements create, update and delete behaviour for the main resource.
type Strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	compile validation.CompileFunc
	status  StatusFunc
	clock   clock.PassiveClock
}

// StatusFunc derives the status a flag has when it is written: what the
// server knows then (observedGeneration, whether its segments exist and its
// expressions compile, whether it is past expiresAt). The status controller
// computes the same function later, when a segment or the time changes it.
type StatusFunc func(*flagpole.Flag) flagpole.FlagStatus

// NewStrategy returns the strategy for flags. compile checks CEL
// expressions (expression.Compile in the server): required, so that
// validation never runs without it. status, when set, fills in the status of
// every write that creates a flag or changes its spec, in that same write;
// without it status waits for the controller.
func NewStrategy(scheme *runtime.Scheme, compile validation.CompileFunc, status StatusFunc, c clock.PassiveClock) Strategy {
	return Strategy{scheme, names.SimpleNameGenerator, compile, status, c}
}

var (
	_ rest.RESTCreateUpdateStrategy = Strategy{}
	_ rest.RESTDeleteStrategy       = Strategy{}
	_ rest.ResetFieldsStrategy      = Strategy{}
)

func (Strategy) NamespaceScoped() bool { return true }

// GetResetFields says which fields a write to the main resource never owns,
// so that server-side apply does not record status for a spec writer.
func (Strategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		"flagpole.dev/v1beta1": fieldpath.NewSet(fieldpath.MakePathOrDie("status")),
	}
}

func (s Strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	f := obj.(*flagpole.Flag)
	f.Status = flagpole.FlagStatus{}
	f.Generation = 1
	f.Status.LastChange = s.change(ctx, f.Generation)
}

func (s Strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	f, oldFlag := obj.(*flagpole.Flag), old.(*flagpole.Flag)
	f.Status = oldFlag.Status
	// Compact before comparing, so re-spaced JSON is not a spec change.
	compactValues(f)
	if !apiequality.Semantic.DeepEqual(f.Spec, oldFlag.Spec) {
		f.Generation = oldFlag.Generation + 1
		f.Status.LastChange = s.change(ctx, f.Generation)
	}
}

// change records who makes this write, now: the identity is known only
// inside the request, so it is captured here, in the same write as the
// change. Through kube-apiserver the user is the one it forwards, the
// impersonated one when impersonating.
func (s Strategy) change(ctx context.Context, generation int64) *flagpole.FlagChange {
	c := &flagpole.FlagChange{Time: metav1.NewTime(s.clock.Now()).Rfc3339Copy(), Generation: generation}
	if u, ok := genericapirequest.UserFrom(ctx); ok {
		c.User = u.GetName()
	}
	return c
}

func (s Strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return validation.ValidateFlag(obj.(*flagpole.Flag), s.compile)
}

func (s Strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateFlagUpdate(obj.(*flagpole.Flag), old.(*flagpole.Flag), s.compile)
}

func (s Strategy) WarningsOnCreate(_ context.Context, obj runtime.Object) []string {
	return specWarnings(&obj.(*flagpole.Flag).Spec, s.clock.Now())
}

func (s Strategy) WarningsOnUpdate(_ context.Context, obj, _ runtime.Object) []string {
	return specWarnings(&obj.(*flagpole.Flag).Spec, s.clock.Now())
}

// specWarnings points out what is valid but almost certainly not meant.
func specWarnings(spec *flagpole.FlagSpec, now time.Time) []string {
	var warnings []string
	if spec.ExpiresAt != nil && spec.ExpiresAt.Time.Before(now) {
		warnings = append(warnings, fmt.Sprintf("spec.expiresAt: %s is in the past; the flag is stale and due for clean-up", spec.ExpiresAt.UTC().Format(time.RFC3339)))
	}
	for i, r := range spec.Rules {
		if r.When == "" && len(r.Segments) == 0 && i < len(spec.Rules)-1 {
			warnings = append(warnings, fmt.Sprintf("spec.rules[%d] (%q) has no when and no segments, so it matches every context and the %d rule(s) after it are never reached", i, r.Name, len(spec.Rules)-1-i))
			break
		}
	}
	return warnings
}

// Canonicalize compacts variant values, so that the same JSON value written
// with different spacing is the same stored object (no spurious generation
// bump), and derives the status of a generation that has none yet.
//
// Status is derived here rather than in PrepareForCreate because this runs
// after validation: deriving it compiles the flag's expressions, which must
// not happen before their size and cost have been checked. Deriving it in
// the write that changes the spec saves the controller's second etcd write.
func (s Strategy) Canonicalize(obj runtime.Object) {
	f := obj.(*flagpole.Flag)
	compactValues(f)
	if s.status != nil && f.Status.ObservedGeneration != f.Generation {
		f.Status = s.status(f)
	}
}

func compactValues(f *flagpole.Flag) {
	for i := range f.Spec.Variants {
		raw := f.Spec.Variants[i].Value.Raw
		var buf bytes.Buffer
		if len(raw) > 0 && json.Compact(&buf, raw) == nil && !bytes.Equal(buf.Bytes(), raw) {
			f.Spec.Variants[i].Value.Raw = buf.Bytes()
		}
	}
}

func (Strategy) AllowCreateOnUpdate(context.Context) bool { return false }

func (Strategy) AllowUnconditionalUpdate(context.Context) bool { return true }

// StatusStrategy implements writes to flags/status: only status changes.
type StatusStrategy struct {
	Strategy
}

// NewStatusStrategy returns the strategy for flags/status.
func NewStatusStrategy(s Strategy) StatusStrategy {
	return StatusStrategy{s}
}

var _ rest.ResetFieldsStrategy = StatusStrategy{}

// GetResetFields names what PrepareForUpdate resets, so that server-side
// apply records no ownership of it for a status writer.
func (StatusStrategy) GetResetFields() map[fieldpath.APIVersion]*fieldpath.Set {
	return map[fieldpath.APIVersion]*fieldpath.Set{
		"flagpole.dev/v1beta1": fieldpath.NewSet(
			fieldpath.MakePathOrDie("spec"),
			fieldpath.MakePathOrDie("status", "lastChange"),
			fieldpath.MakePathOrDie("status", "usage"),
			fieldpath.MakePathOrDie("metadata", "labels"),
			fieldpath.MakePathOrDie("metadata", "annotations"),
			fieldpath.MakePathOrDie("metadata", "finalizers"),
			fieldpath.MakePathOrDie("metadata", "ownerReferences"),
		),
	}
}

// PrepareForUpdate keeps everything but status, metadata included as kube's
// status strategies do: labels decide which flags a bulk evaluation selects,
// and a status writer must not decide that. Of status it keeps lastChange
// (who changed the spec is the main resource's write to record) and drops
// usage, which is computed on read and never stored.
func (StatusStrategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	f, oldFlag := obj.(*flagpole.Flag), old.(*flagpole.Flag)
	f.Spec = oldFlag.Spec
	metav1.ResetObjectMetaForStatus(&f.ObjectMeta, &oldFlag.ObjectMeta)
	f.Status.LastChange = oldFlag.Status.LastChange
	f.Status.Usage = nil
}

func (s StatusStrategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return validation.ValidateFlagStatusUpdate(obj.(*flagpole.Flag), old.(*flagpole.Flag))
}

func (StatusStrategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}

// Canonicalize leaves status as its writer wrote it: deriving it is for
// writes of the spec.
func (StatusStrategy) Canonicalize(obj runtime.Object) {
	compactValues(obj.(*flagpole.Flag))
}

// GetAttrs returns the labels and selectable fields of a flag.
func GetAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	f, ok := obj.(*flagpole.Flag)
	if !ok {
		return nil, nil, fmt.Errorf("not a Flag: %T", obj)
	}
	return labels.Set(f.Labels), SelectableFields(f), nil
}

// SelectableFields is the field set field selectors match against.
func SelectableFields(f *flagpole.Flag) fields.Set {
	return generic.AddObjectMetaFieldsSet(fields.Set{
		flagpole.FlagFieldState: string(f.Spec.State),
		flagpole.FlagFieldType:  string(f.Spec.Type),
		flagpole.FlagFieldStale: strconv.FormatBool(IsStale(f)),
	}, &f.ObjectMeta, true)
}

// IsStale is whether the flag's Stale condition is True.
func IsStale(f *flagpole.Flag) bool {
	for _, c := range f.Status.Conditions {
		if c.Type == flagpole.FlagConditionStale {
			return c.Status == metav1.ConditionTrue
		}
	}
	return false
}

// Matcher returns the predicate LIST and WATCH filter with.
func Matcher(label labels.Selector, field fields.Selector) storage.SelectionPredicate {
	return storage.SelectionPredicate{Label: label, Field: field, GetAttrs: GetAttrs}
}
