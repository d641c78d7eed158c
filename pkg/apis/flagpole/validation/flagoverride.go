package validation

import (
	"fmt"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Override bounds.
const (
	MinOverrideTTL           = 10 * time.Second
	MaxOverrideTTL           = 7 * 24 * time.Hour
	MaxOverrideTargetingKeys = 1000
)

// ValidateFlagOverride validates an override on create. Whether the variant
// exists on the flag is checked by admission, which can see the flag.
func ValidateFlagOverride(o *flagpole.FlagOverride) field.ErrorList {
	allErrs := validateObjectMetaOnCreate(&o.ObjectMeta, apimachineryvalidation.NameIsDNSSubdomain)
	return append(allErrs, validateFlagOverrideSpec(&o.Spec, field.NewPath("spec"))...)
}

// ValidateFlagOverrideUpdate validates an update: the flag and the lifetime
// cannot change, so an update never extends an override.
func ValidateFlagOverrideUpdate(o, old *flagpole.FlagOverride) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&o.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fldPath := field.NewPath("spec")
	allErrs = append(allErrs, validateFlagOverrideSpec(&o.Spec, fldPath)...)
	allErrs = append(allErrs, apimachineryvalidation.ValidateImmutableField(o.Spec.Flag, old.Spec.Flag, fldPath.Child("flag"))...)
	if !apiequality.Semantic.DeepEqual(o.Spec.TTL, old.Spec.TTL) {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("ttl"), o.Spec.TTL, "field is immutable: create a new override to change how long it lasts"))
	}
	return allErrs
}

func validateFlagOverrideSpec(spec *flagpole.FlagOverrideSpec, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if spec.Flag == "" {
		allErrs = append(allErrs, field.Required(fldPath.Child("flag"), "the name of a Flag in this namespace"))
	} else {
		for _, msg := range ValidateFlagName(spec.Flag, false) {
			allErrs = append(allErrs, field.Invalid(fldPath.Child("flag"), spec.Flag, msg))
		}
	}
	allErrs = append(allErrs, validateVariantName(spec.Variant, fldPath.Child("variant"))...)
	if len(spec.TargetingKeys) > MaxOverrideTargetingKeys {
		allErrs = append(allErrs, field.TooMany(fldPath.Child("targetingKeys"), len(spec.TargetingKeys), MaxOverrideTargetingKeys))
	}
	allErrs = append(allErrs, validateTargetingKeys(spec.TargetingKeys, fldPath.Child("targetingKeys"))...)
	switch {
	case spec.TTL == nil:
		allErrs = append(allErrs, field.Required(fldPath.Child("ttl"), ""))
	case spec.TTL.Duration < MinOverrideTTL || spec.TTL.Duration > MaxOverrideTTL:
		allErrs = append(allErrs, field.Invalid(fldPath.Child("ttl"), spec.TTL.Duration.String(), fmt.Sprintf("must be between %s and %s", MinOverrideTTL, "168h (7d)")))
	}
	return allErrs
}
