// Package usagereport serves usagereports: create-only and never stored,
// like evaluations. An in-process provider reports what it evaluated, and
// the counts are added to this replica's usage counter, to be stored with
// its record. A report is checked whole before anything is counted: a
// report that names a flag the namespace does not have, a variant the flag
// does not have, or counts no provider could have made is refused with 422
// and counts nothing.
package usagereport

import (
	"context"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
)

// Counter is what reported counts are added to (usage.Counter).
type Counter interface {
	Add(uid types.UID, namespace, name string, reasons []flagpole.ReasonCount, variants []flagpole.VariantCount, at time.Time)
}

// REST serves usagereports.
type REST struct {
	flags   listers.FlagLister
	counter Counter
	clock   clock.PassiveClock
}

var (
	_ rest.Creater              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

// NewREST returns the usagereports storage: flags are looked up in the
// server's informer, counts added to counter.
func NewREST(flags listers.FlagLister, counter Counter, c clock.PassiveClock) *REST {
	return &REST{flags: flags, counter: counter, clock: c}
}

func (r *REST) New() runtime.Object     { return &flagpole.UsageReport{} }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return true }
func (r *REST) GetSingularName() string { return "usagereport" }

// Create checks the report against the namespace's flags and counts it.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	report, ok := obj.(*flagpole.UsageReport)
	if !ok {
		return nil, apierrors.NewBadRequest("not a UsageReport")
	}
	namespace := genericapirequest.NamespaceValue(ctx)
	errs := validation.ValidateUsageReport(report)
	var uids []types.UID
	if len(errs) == 0 {
		uids, errs = r.checkFlags(namespace, report)
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(flagpole.Kind("UsageReport"), report.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, obj); err != nil {
			return nil, err
		}
	}
	// A dry run is checked, not counted.
	if options == nil || !dryrun.IsDryRun(options.DryRun) {
		now := r.clock.Now()
		for i, f := range report.Spec.Flags {
			r.counter.Add(uids[i], namespace, f.Name, f.Reasons, f.Variants, now)
		}
	}
	out := report.DeepCopy()
	out.ManagedFields = nil
	return out, nil
}

// checkFlags finds each reported flag in the namespace and checks its
// variants, and returns the flags' UIDs.
func (r *REST) checkFlags(namespace string, report *flagpole.UsageReport) ([]types.UID, field.ErrorList) {
	var errs field.ErrorList
	uids := make([]types.UID, len(report.Spec.Flags))
	flagsPath := field.NewPath("spec", "flags")
	for i, entry := range report.Spec.Flags {
		p := flagsPath.Index(i)
		f, err := r.flags.Flags(namespace).Get(entry.Name)
		if err != nil {
			errs = append(errs, field.NotFound(p.Child("name"), entry.Name))
			continue
		}
		if entry.UID != "" && entry.UID != f.UID {
			errs = append(errs, field.Invalid(p.Child("uid"), entry.UID, "is not the uid of the flag of this name: it was deleted and created again"))
			continue
		}
		uids[i] = f.UID
		for j, v := range entry.Variants {
			if !slices.ContainsFunc(f.Spec.Variants, func(fv v1beta1.Variant) bool { return string(fv.Name) == v.Name }) {
				errs = append(errs, field.Invalid(p.Child("variants").Index(j).Child("name"), v.Name, "the flag has no such variant"))
			}
		}
	}
	return uids, errs
}
