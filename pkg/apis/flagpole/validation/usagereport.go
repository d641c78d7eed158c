package validation

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Bounds of a usage report. A report says what one provider evaluated since
// its last one (every 30 s by default): MaxReportedCount per count is more
// than 3 million evaluations a second for that long, far beyond one
// process, so a larger number is a lie and refused rather than believed.
const (
	MaxUsageReportFlags = 1000
	MaxReportedCount    = 100_000_000
)

// ValidateUsageReport checks what a report can be checked for without the
// flags it names: names, counts and reasons. Which flags exist, and which
// variants they have, is the registry's to check.
func ValidateUsageReport(r *flagpole.UsageReport) field.ErrorList {
	var allErrs field.ErrorList
	flagsPath := field.NewPath("spec", "flags")
	if len(r.Spec.Flags) > MaxUsageReportFlags {
		allErrs = append(allErrs, field.TooMany(flagsPath, len(r.Spec.Flags), MaxUsageReportFlags))
		return allErrs
	}
	names := sets.New[string]()
	for i, f := range r.Spec.Flags {
		p := flagsPath.Index(i)
		for _, msg := range ValidateFlagName(f.Name, false) {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), f.Name, msg))
		}
		if names.Has(f.Name) {
			allErrs = append(allErrs, field.Duplicate(p.Child("name"), f.Name))
		}
		names.Insert(f.Name)

		var evaluations int64
		countsValid := true
		reasons := sets.New[string]()
		if len(f.Reasons) == 0 {
			allErrs = append(allErrs, field.Required(p.Child("reasons"), "a flag reported needs at least one count"))
		}
		for j, rc := range f.Reasons {
			rp := p.Child("reasons").Index(j)
			switch {
			case !slices.Contains(flagpole.Reasons, rc.Reason):
				allErrs = append(allErrs, field.NotSupported(rp.Child("reason"), rc.Reason, flagpole.Reasons))
			case reasons.Has(rc.Reason):
				allErrs = append(allErrs, field.Duplicate(rp.Child("reason"), rc.Reason))
			}
			reasons.Insert(rc.Reason)
			countErrs := validateCount(rc.Count, rp.Child("count"))
			countsValid = countsValid && len(countErrs) == 0
			allErrs = append(allErrs, countErrs...)
			evaluations += rc.Count
		}
		if len(f.Variants) > MaxVariants {
			allErrs = append(allErrs, field.TooMany(p.Child("variants"), len(f.Variants), MaxVariants))
			continue
		}
		var served int64
		variants := sets.New[string]()
		for j, vc := range f.Variants {
			vp := p.Child("variants").Index(j)
			if errs := validateVariantName(vc.Name, vp.Child("name")); len(errs) > 0 {
				allErrs = append(allErrs, errs...)
			} else if variants.Has(vc.Name) {
				allErrs = append(allErrs, field.Duplicate(vp.Child("name"), vc.Name))
			}
			variants.Insert(vc.Name)
			countErrs := validateCount(vc.Count, vp.Child("count"))
			countsValid = countsValid && len(countErrs) == 0
			allErrs = append(allErrs, countErrs...)
			served += vc.Count
		}
		// With every count within its bounds the sums cannot overflow.
		if countsValid && served > evaluations {
			allErrs = append(allErrs, field.Invalid(p.Child("variants"), served,
				fmt.Sprintf("the variants served add up to more than the %d evaluations the reasons count", evaluations)))
		}
	}
	return allErrs
}

func validateCount(n int64, fldPath *field.Path) field.ErrorList {
	switch {
	case n < 1:
		return field.ErrorList{field.Invalid(fldPath, n, "must be at least 1 (leave out what was not evaluated)")}
	case n > MaxReportedCount:
		return field.ErrorList{field.Invalid(fldPath, n, fmt.Sprintf("must be at most %d for one report", MaxReportedCount))}
	}
	return nil
}
