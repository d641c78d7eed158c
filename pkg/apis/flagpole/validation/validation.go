// Package validation checks Flagpole objects and returns every problem with
// its field path, so that a client gets a 422 that says what to fix.
package validation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Size bounds. They keep the engine's per-flag work bounded, and the totals
// keep what a spec may hold inside MaxObjectBytes; docs/api.md publishes them.
const (
	MaxDescriptionLength  = 1024
	MaxOwnerLength        = 256
	MaxVariants           = 100
	MaxVariantNameLength  = 63
	MaxVariantValueBytes  = 32 * 1024
	MaxVariantValuesBytes = 512 * 1024 // all of a flag's variant values together
	MaxRules              = 200
	MaxSegmentsPerRule    = 16
	MaxDistribution       = 100
	MaxExpressionLength   = 4096
	MaxSegmentKeys        = 10000
	MaxSegmentKeysBytes   = 512 * 1024 // a segment's include and exclude keys together
	MaxTargetingKeyLength = flagpole.MaxTargetingKeyLength
)

// Stored-size bounds. etcd refuses a request over 1.5 MiB (its default
// --max-request-bytes) and its client anything over 2 MiB, errors the store
// reports as 500s; the field limits above can each hold and still add up to
// more (100 rules of long expressions, values full of characters JSON
// escapes), so the whole object is measured as stored.
const (
	// MaxObjectBytes bounds a whole object, as stored (in the encoding of
	// --storage-media-type, protobuf by default), after a write to
	// the main resource.
	MaxObjectBytes = 1024 * 1024
	// StatusHeadroomBytes is what a status write may add beyond
	// MaxObjectBytes, so that a spec written up to the limit still gets its
	// status. The sum stays under etcd's 1.5 MiB.
	StatusHeadroomBytes = 128 * 1024
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

// CompileFunc compiles and cost-checks one CEL expression. stored is true
// when the same expression is already stored at the same path, so it may be
// checked leniently (a tightened limit must not strand old objects).
// Validation of flags and segments requires one: this package cannot import
// the engine, so the registry passes the engine's compiler in.
type CompileFunc func(fldPath *field.Path, expr string, kind ExpressionKind, stored bool) field.ErrorList

// joinNames lists the values of an enumeration for a message.
func joinNames[T ~string](values []T) string {
	names := make([]string, len(values))
	for i, v := range values {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// ValidateFlagName is the name check for flags: the flag key is a DNS subdomain.
var ValidateFlagName = apimachineryvalidation.NameIsDNSSubdomain

// ValidateFlag validates a flag on create.
func ValidateFlag(f *flagpole.Flag, compile CompileFunc) field.ErrorList {
	allErrs := validateObjectMetaOnCreate(&f.ObjectMeta, ValidateFlagName)
	allErrs = append(allErrs, validateFlagSpec(&f.Spec, nil, compile, field.NewPath("spec"))...)
	return allErrs
}

// validateObjectMetaOnCreate is upstream's metadata validation plus a check
// upstream leaves to storage, which answers a resourceVersion set on create
// with a 500.
func validateObjectMetaOnCreate(meta *metav1.ObjectMeta, nameFn apimachineryvalidation.ValidateNameFunc) field.ErrorList {
	fldPath := field.NewPath("metadata")
	allErrs := apimachineryvalidation.ValidateObjectMeta(meta, true, nameFn, fldPath)
	if meta.ResourceVersion != "" {
		allErrs = append(allErrs, field.Forbidden(fldPath.Child("resourceVersion"), "must not be set on create: the server assigns it"))
	}
	return allErrs
}

// ValidateFlagUpdate validates a flag on update of its main resource.
func ValidateFlagUpdate(f, old *flagpole.Flag, compile CompileFunc) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&f.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateFlagSpec(&f.Spec, &old.Spec, compile, field.NewPath("spec"))...)
	return allErrs
}

// ValidateFlagStatusUpdate validates a write to flags/status.
func ValidateFlagStatusUpdate(f, old *flagpole.Flag) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&f.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	fldPath := field.NewPath("status")
	allErrs = append(allErrs, apimachineryvalidation.ValidateNonnegativeField(f.Status.ObservedGeneration, fldPath.Child("observedGeneration"))...)
	allErrs = append(allErrs, metav1validation.ValidateConditions(f.Status.Conditions, fldPath.Child("conditions"))...)
	allErrs = append(allErrs, validateRolloutStatuses(f.Status.Rollouts, fldPath.Child("rollouts"))...)
	return allErrs
}

func validateFlagSpec(spec, old *flagpole.FlagSpec, compile CompileFunc, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateMaxLength(spec.Description, MaxDescriptionLength, fldPath.Child("description"))...)
	allErrs = append(allErrs, validateMaxLength(spec.Owner, MaxOwnerLength, fldPath.Child("owner"))...)

	typeValid := true
	switch {
	case spec.Type == "":
		allErrs = append(allErrs, field.Required(fldPath.Child("type"), "one of "+joinNames(flagpole.FlagTypes)))
		typeValid = false
	case !slices.Contains(flagpole.FlagTypes, spec.Type):
		allErrs = append(allErrs, field.NotSupported(fldPath.Child("type"), spec.Type, flagpole.FlagTypes))
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
	valuesBytes := 0
	for i, v := range spec.Variants {
		valuesBytes += len(v.Value.Raw)
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

	if valuesBytes > MaxVariantValuesBytes {
		allErrs = append(allErrs, field.Invalid(variantsPath, fmt.Sprintf("<values of %d bytes>", valuesBytes),
			fmt.Sprintf("the variant values together may take at most %d bytes", MaxVariantValuesBytes)))
	}

	if spec.DefaultVariant != "" {
		allErrs = append(allErrs, validateVariantRef(spec.DefaultVariant, variants, fldPath.Child("defaultVariant"))...)
	}

	allErrs = append(allErrs, validateRules(spec.Rules, oldRules(old), variants, compile, fldPath.Child("rules"))...)
	if spec.Lifecycle != nil {
		kindPath := fldPath.Child("lifecycle", "kind")
		switch k := spec.Lifecycle.Kind; {
		case k == "":
			allErrs = append(allErrs, field.Required(kindPath, "one of "+joinNames(flagpole.FlagLifecycleKinds)))
		case !slices.Contains(flagpole.FlagLifecycleKinds, k):
			allErrs = append(allErrs, field.NotSupported(kindPath, k, flagpole.FlagLifecycleKinds))
		}
	}
	return allErrs
}

func oldRules(old *flagpole.FlagSpec) []flagpole.Rule {
	if old == nil {
		return nil
	}
	return old.Rules
}

func validateRules(rules, old []flagpole.Rule, variants sets.Set[string], compile CompileFunc, fldPath *field.Path) field.ErrorList {
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
	plans := 0
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
			allErrs = append(allErrs, validateExpression(r.When, ExpressionRuleWhen, storedWhen.Has(r.Name+"\x00"+r.When), compile, idxPath.Child("when"))...)
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
				allErrs = append(allErrs, validateExpression(r.Rollout.BucketBy, ExpressionBucketBy, stored, compile, rolloutPath.Child("bucketBy"))...)
			}
			allErrs = append(allErrs, validateDistribution(r.Rollout.Distribution, variants, rolloutPath.Child("distribution"))...)
			allErrs = append(allErrs, validateBucketing(r.Rollout.Bucketing, rolloutPath.Child("bucketing"))...)
			if r.Rollout.Plan != nil {
				plans++
				if plans == MaxPlans+1 {
					allErrs = append(allErrs, field.TooMany(rolloutPath.Child("plan"), plans, MaxPlans))
				}
				allErrs = append(allErrs, validatePlan(r.Rollout.Plan, variants, compile, rolloutPath.Child("plan"))...)
			}
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

// bucketings are the values of a rollout's bucketing; empty means the first.
var bucketings = []flagpole.RolloutBucketing{flagpole.RolloutBucketingFlagdV2, flagpole.RolloutBucketingFlagdV1}

func validateBucketing(b flagpole.RolloutBucketing, fldPath *field.Path) field.ErrorList {
	if b == "" || sets.New(bucketings...).Has(b) {
		return nil
	}
	return field.ErrorList{field.NotSupported(fldPath, b, bucketings)}
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
	// Decoding refuses out-of-range numbers already; this also covers values
	// that reached the server another way, and bounds nesting, which upstream
	// allows up to 10,000 levels: 20 KB nested that deep printed as 399 MB.
	info, err := flagpole.ScanJSONValue(raw)
	if err != nil {
		return field.ErrorList{field.Invalid(fldPath, string(raw), err.Error())}
	}
	if info.Depth > flagpole.MaxJSONDepth {
		return field.ErrorList{field.Invalid(fldPath, fmt.Sprintf("<value nested %d levels deep>", info.Depth),
			fmt.Sprintf("objects and arrays may nest at most %d levels deep", flagpole.MaxJSONDepth))}
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

func validateExpression(expr string, kind ExpressionKind, stored bool, compile CompileFunc, fldPath *field.Path) field.ErrorList {
	if len(expr) > MaxExpressionLength {
		return field.ErrorList{field.TooLong(fldPath, "", MaxExpressionLength)}
	}
	return compile(fldPath, expr, kind, stored)
}

func validateMaxLength(s string, max int, fldPath *field.Path) field.ErrorList {
	if len(s) > max {
		return field.ErrorList{field.TooLong(fldPath, "", max)}
	}
	return nil
}

// ValidateSegment validates a segment on create.
func ValidateSegment(s *flagpole.Segment, compile CompileFunc) field.ErrorList {
	allErrs := validateObjectMetaOnCreate(&s.ObjectMeta, apimachineryvalidation.NameIsDNSSubdomain)
	allErrs = append(allErrs, validateSegmentSpec(&s.Spec, nil, compile, field.NewPath("spec"))...)
	return allErrs
}

// ValidateSegmentUpdate validates a segment on update.
func ValidateSegmentUpdate(s, old *flagpole.Segment, compile CompileFunc) field.ErrorList {
	allErrs := apimachineryvalidation.ValidateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta, field.NewPath("metadata"))
	allErrs = append(allErrs, validateSegmentSpec(&s.Spec, &old.Spec, compile, field.NewPath("spec"))...)
	return allErrs
}

func validateSegmentSpec(spec, old *flagpole.SegmentSpec, compile CompileFunc, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	allErrs = append(allErrs, validateMaxLength(spec.Description, MaxDescriptionLength, fldPath.Child("description"))...)
	if spec.When != "" {
		stored := old != nil && old.When == spec.When
		allErrs = append(allErrs, validateExpression(spec.When, ExpressionSegmentWhen, stored, compile, fldPath.Child("when"))...)
	}
	if n := len(spec.Include) + len(spec.Exclude); n > MaxSegmentKeys {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("include"), n, fmt.Sprintf("include and exclude together may list at most %d targeting keys", MaxSegmentKeys)))
	}
	keysBytes := 0
	for _, k := range spec.Include {
		keysBytes += len(k)
	}
	for _, k := range spec.Exclude {
		keysBytes += len(k)
	}
	if keysBytes > MaxSegmentKeysBytes {
		allErrs = append(allErrs, field.Invalid(fldPath.Child("include"), fmt.Sprintf("<keys of %d bytes>", keysBytes),
			fmt.Sprintf("the targeting keys of include and exclude together may take at most %d bytes", MaxSegmentKeysBytes)))
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
