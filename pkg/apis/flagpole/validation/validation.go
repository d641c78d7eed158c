// Package validation checks Flagpole objects and returns every problem with
// its field path, so that a client gets a 422 that says what to fix.
package validation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Size bounds. They keep one object well inside etcd's request limit and keep
// the engine's per-flag work bounded; docs/api.md publishes them.
const (
	MaxDescriptionLength  = 1024
	MaxOwnerLength        = 256
	MaxVariants           = 100
	MaxVariantNameLength  = 63
	MaxVariantValueBytes  = 32 * 1024
	MaxRules              = 200
	MaxSegmentsPerRule    = 16
	MaxDistribution       = 100
	MaxExpressionLength   = 4096
	MaxSegmentKeys        = 10000
	MaxTargetingKeyLength = 256
)

var variantNameRegexp = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)

const variantNameFormat = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"

const quoteHint = "YAML 1.1 reads unquoted on/off/yes/no/true/false as booleans: quote the value (for example \"on\")"

// ExpressionKind says where a CEL expression sits, which decides its type.
type ExpressionKind string

const (
	// ExpressionRuleWhen is a rule's `when`: a boolean predicate.
	ExpressionRuleWhen ExpressionKind = "RuleWhen"
	// ExpressionBucketBy is a rollout's `bucketBy`: a string.
	ExpressionBucketBy ExpressionKind = "BucketBy"
	// ExpressionSegmentWhen is a segment's `when`: a boolean predicate.
	ExpressionSegmentWhen ExpressionKind = "SegmentWhen"
)

// Options carries what validation needs beyond the objects themselves.
type Options struct {
	// CompileExpression compiles and cost-checks one CEL expression. stored is
	// true when the same expression is already stored at the same path, so it
	// may be checked leniently (a tightened limit must not strand old objects).
	// Nil checks only the expression's length.
	CompileExpression func(fldPath *field.Path, expr string, kind ExpressionKind, stored bool) field.ErrorList
}

// ValidateFlagName is the name check for flags: the flag key is a DNS subdomain.
var ValidateFlagName = apimachineryvalidation.NameIsDNSSubdomain

// ValidateFlag validates a flag on create.
func ValidateFlag(f *flagpole.Flag, opts Options) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(&f.ObjectMeta, true, ValidateFlagName, field.NewPath("metadata"))
	allErrs = append(allErrs, validateFlagSpec(&f.Spec, nil, opts, field.NewPath("spec"))...)
	return allErrs
}

// ValidateFlagUpdate validates a flag on update of its main resource.
func ValidateFlagUpdate(f, old *flagpole.Flag, opts Options) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&f.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateFlagSpec(&f.Spec, &old.Spec, opts, field.NewPath("spec"))...)
	return allErrs
}

// ValidateFlagStatusUpdate validates a write to flags/status.
func ValidateFlagStatusUpdate(f, old *flagpole.Flag) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&f.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fldPath := field.NewPath("status")
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(f.Status.ObservedGeneration, fldPath.Child("observedGeneration"))...)
	allErrs = append(allErrs, metav1validation.ValidateConditions(f.Status.Conditions, fldPath.Child("conditions"))...)
	return allErrs
}

func validateFlagSpec(spec, old *flagpole.FlagSpec, opts Options, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateMaxLength(spec.Description, MaxDescriptionLength, fldPath.Child("description"))...)
	allErrs = append(allErrs, validateMaxLength(spec.Owner, MaxOwnerLength, fldPath.Child("owner"))...)

	types := []flagpole.FlagType{flagpole.FlagTypeBoolean, flagpole.FlagTypeString, flagpole.FlagTypeNumber, flagpole.FlagTypeObject}
	typeValid := true
	switch {
	case spec.Type == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "one of Boolean, String, Number, Object"))
		typeValid = false
	case !sets.New(types...).Has(spec.Type):
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), spec.Type, types))
		typeValid = false
	}

	states := []flagpole.FlagState{flagpole.FlagStateEnabled, flagpole.FlagStateDisabled}
	if !sets.New(states...).Has(spec.State) {
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("state"), spec.State, states))
	}

	variants := sets.New[string]()
	variantsPath := fldPath.Child("variants")
	switch {
	case len(spec.Variants) == 0:
		allErrs = append(allErrs, field.Required(variantsPath, "a flag needs at least one variant"))
	case len(spec.Variants) > MaxVariants:
		allErrs = append(allErrs, field.TooMany(variantsPath, len(spec.Variants), MaxVariants))
	}
	for i, v := range spec.Variants {
		idxPath := variantsPath.Index(i)
		namePath := idxPath.Child("name")
		if errs := validateVariantName(v.Name, namePath); len(errs) > 0 {
			allErrs = append(allErrs, errs...)
		} else if variants.Has(v.Name) {
			allErrs = append(allErrs, field.Duplicate(namePath, v.Name))
		}
		variants.Insert(v.Name)
		if typeValid {
			allErrs = append(allErrs, validateVariantValue(v.Value, spec.Type, idxPath.Child("value"))...)
		}
	}

	if spec.DefaultVariant != "" {
		allErrs = append(allErrs, validateVariantRef(spec.DefaultVariant, variants, fldPath.Child("defaultVariant"))...)
	}

	allErrs = append(allErrs, validateRules(spec.Rules, oldRules(old), variants, opts, fldPath.Child("rules"))...)
	return allErrs
}

func oldRules(old *flagpole.FlagSpec) []flagpole.Rule {
	if old == nil {
		return nil
	}
	return old.Rules
}

func validateRules(rules, old []flagpole.Rule, variants sets.Set[string], opts Options, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	if len(rules) > MaxRules {
		allErrs = append(allErrs, field.TooMany(fldPath, len(rules), MaxRules))
	}
	// Expressions already stored under the same rule name are checked leniently.
	storedWhen, storedBucketBy := sets.New[string](), sets.New[string]()
	for _, r := range old {
		storedWhen.Insert(r.Name + "\x00" + r.When)
		if r.Rollout != nil {
			storedBucketBy.Insert(r.Name + "\x00" + r.Rollout.BucketBy)
		}
	}

	names := sets.New[string]()
	for i, r := range rules {
		idxPath := fldPath.Index(i)
		namePath := idxPath.Child("name")
		switch {
		case r.Name == "":
			allErrs = append(allErrs, field.Required(namePath, "rules are named so that results can say which rule matched"))
		case len(r.Name) > MaxVariantNameLength || !variantNameRegexp.MatchString(r.Name):
			allErrs = append(allErrs, field.Invalid(namePath, r.Name, fmt.Sprintf("at most %d characters: %s", MaxVariantNameLength, variantNameFormat)))
		case names.Has(r.Name):
			allErrs = append(allErrs, field.Duplicate(namePath, r.Name))
		}
		names.Insert(r.Name)

		segPath := idxPath.Child("segments")
		if len(r.Segments) > MaxSegmentsPerRule {
			allErrs = append(allErrs, field.TooMany(segPath, len(r.Segments), MaxSegmentsPerRule))
		}
		for j, s := range r.Segments {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(s, false) {
				allErrs = append(allErrs, field.Invalid(segPath.Index(j), s, msg))
			}
		}

		if r.When != "" {
			allErrs = append(allErrs, validateExpression(r.When, ExpressionRuleWhen, storedWhen.Has(r.Name+"\x00"+r.When), opts, idxPath.Child("when"))...)
		}

		switch {
		case r.Variant == "" && r.Rollout == nil:
			allErrs = append(allErrs, field.Required(idxPath, "exactly one of variant and rollout"))
		case r.Variant != "" && r.Rollout != nil:
			allErrs = append(allErrs, field.Forbidden(idxPath.Child("rollout"), "exactly one of variant and rollout may be set"))
		case r.Variant != "":
			allErrs = append(allErrs, validateVariantRef(r.Variant, variants, idxPath.Child("variant"))...)
		default:
			rolloutPath := idxPath.Child("rollout")
			if r.Rollout.BucketBy != "" {
				stored := storedBucketBy.Has(r.Name + "\x00" + r.Rollout.BucketBy)
				allErrs = append(allErrs, validateExpression(r.Rollout.BucketBy, ExpressionBucketBy, stored, opts, rolloutPath.Child("bucketBy"))...)
			}
			allErrs = append(allErrs, validateDistribution(r.Rollout.Distribution, variants, rolloutPath.Child("distribution"))...)
		}
	}
	return allErrs
}

func validateDistribution(dist []flagpole.WeightedVariant, variants sets.Set[string], fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	switch {
	case len(dist) == 0:
		return append(allErrs, field.Required(fldPath, "a rollout needs at least one weighted variant"))
	case len(dist) > MaxDistribution:
		allErrs = append(allErrs, field.TooMany(fldPath, len(dist), MaxDistribution))
	}
	var sum int64
	seen := sets.New[string]()
	for i, wv := range dist {
		idxPath := fldPath.Index(i)
		if errs := validateVariantRef(wv.Variant, variants, idxPath.Child("variant")); len(errs) > 0 {
			allErrs = append(allErrs, errs...)
		} else if seen.Has(wv.Variant) {
			allErrs = append(allErrs, field.Duplicate(idxPath.Child("variant"), wv.Variant))
		}
		seen.Insert(wv.Variant)
		if wv.Weight < 0 {
			allErrs = append(allErrs, field.Invalid(idxPath.Child("weight"), wv.Weight, "must be a non-negative integer"))
			continue
		}
		sum += int64(wv.Weight)
	}
	switch {
	case sum == 0:
		allErrs = append(allErrs, field.Invalid(fldPath, sum, "the weights must add up to more than zero"))
	case sum > math.MaxInt32:
		allErrs = append(allErrs, field.Invalid(fldPath, sum, fmt.Sprintf("the weights must add up to at most %d", math.MaxInt32)))
	}
	return allErrs
}

// validateVariantName checks a variant's own name.
func validateVariantName(name string, fldPath *field.Path) field.ErrorList {
	if b, ok := flagpole.VariantNameBoolean(name); ok {
		return field.ErrorList{field.Invalid(fldPath, b, "must be a string, not a boolean; "+quoteHint)}
	}
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	if len(name) > MaxVariantNameLength || !variantNameRegexp.MatchString(name) {
		return field.ErrorList{field.Invalid(fldPath, name, fmt.Sprintf("at most %d characters: %s", MaxVariantNameLength, variantNameFormat))}
	}
	return nil
}

// validateVariantRef checks a field that names one of the flag's variants.
func validateVariantRef(name string, variants sets.Set[string], fldPath *field.Path) field.ErrorList {
	if b, ok := flagpole.VariantNameBoolean(name); ok {
		return field.ErrorList{field.Invalid(fldPath, b, "must name a variant (a string), not a boolean; "+quoteHint)}
	}
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "must name one of spec.variants")}
	}
	if !variants.Has(name) {
		return field.ErrorList{field.Invalid(fldPath, name, fmt.Sprintf("must name one of spec.variants (%s)", strings.Join(sets.List(variants), ", ")))}
	}
	return nil
}

func validateVariantValue(v flagpole.JSON, t flagpole.FlagType, fldPath *field.Path) field.ErrorList {
	raw := bytes.TrimSpace(v.Raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return field.ErrorList{field.Required(fldPath, fmt.Sprintf("a %s value", t))}
	}
	if len(raw) > MaxVariantValueBytes {
		return field.ErrorList{field.TooLong(fldPath, "", MaxVariantValueBytes)}
	}
	if !json.Valid(raw) {
		return field.ErrorList{field.Invalid(fldPath, string(raw), "must be a JSON value")}
	}
	got := jsonKind(raw)
	var want string
	switch t {
	case flagpole.FlagTypeBoolean:
		want = "boolean"
	case flagpole.FlagTypeString:
		want = "string"
	case flagpole.FlagTypeNumber:
		want = "number"
	case flagpole.FlagTypeObject:
		// OpenFeature's object flags carry a structure: a JSON object or array.
		if got == "object" || got == "array" {
			return nil
		}
		return field.ErrorList{field.Invalid(fldPath, string(raw), fmt.Sprintf("spec.type is Object, so the value must be a JSON object or array, not a %s", got))}
	}
	if got == want {
		return nil
	}
	detail := fmt.Sprintf("spec.type is %s, so the value must be a %s, not a %s", t, want, got)
	if t == flagpole.FlagTypeString && got == "boolean" {
		detail += "; " + quoteHint
	}
	return field.ErrorList{field.Invalid(fldPath, string(raw), detail)}
}

// jsonKind names the kind of a valid JSON value by its first byte.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

func validateExpression(expr string, kind ExpressionKind, stored bool, opts Options, fldPath *field.Path) field.ErrorList {
	if len(expr) > MaxExpressionLength {
		return field.ErrorList{field.TooLong(fldPath, "", MaxExpressionLength)}
	}
	if opts.CompileExpression == nil {
		return nil
	}
	return opts.CompileExpression(fldPath, expr, kind, stored)
}

func validateMaxLength(s string, max int, fldPath *field.Path) field.ErrorList {
	if len(s) > max {
		return field.ErrorList{field.TooLong(fldPath, "", max)}
	}
	return nil
}

// ValidateSegment validates a segment on create.
func ValidateSegment(s *flagpole.Segment, opts Options) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMeta(&s.ObjectMeta, true, apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	allErrs = append(allErrs, validateSegmentSpec(&s.Spec, nil, opts, field.NewPath("spec"))...)
	return allErrs
}

// ValidateSegmentUpdate validates a segment on update.
func ValidateSegmentUpdate(s, old *flagpole.Segment, opts Options) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateSegmentSpec(&s.Spec, &old.Spec, opts, field.NewPath("spec"))...)
	return allErrs
}

func validateSegmentSpec(spec, old *flagpole.SegmentSpec, opts Options, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateMaxLength(spec.Description, MaxDescriptionLength, fldPath.Child("description"))...)
	if spec.When != "" {
		stored := old != nil && old.When == spec.When
		allErrs = append(allErrs, validateExpression(spec.When, ExpressionSegmentWhen, stored, opts, fldPath.Child("when"))...)
	}
	if n := len(spec.Include) + len(spec.Exclude); n > MaxSegmentKeys {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("include"), n, fmt.Sprintf("include and exclude together may list at most %d targeting keys", MaxSegmentKeys)))
	}
	allErrs = append(allErrs, validateTargetingKeys(spec.Include, fldPath.Child("include"))...)
	allErrs = append(allErrs, validateTargetingKeys(spec.Exclude, fldPath.Child("exclude"))...)
	return allErrs
}

func validateTargetingKeys(keys []string, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	seen := sets.New[string]()
	for i, k := range keys {
		switch {
		case k == "":
			allErrs = append(allErrs, field.Required(fldPath.Index(i), "a targeting key"))
		case len(k) > MaxTargetingKeyLength:
			allErrs = append(allErrs, field.TooLong(fldPath.Index(i), "", MaxTargetingKeyLength))
		case seen.Has(k):
			allErrs = append(allErrs, field.Duplicate(fldPath.Index(i), k))
		}
		seen.Insert(k)
	}
	return allErrs
}
