package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FlagType is the type every variant value of a flag has.
// +enum
type FlagType string

const (
	FlagTypeBoolean FlagType = "Boolean"
	FlagTypeString  FlagType = "String"
	FlagTypeNumber  FlagType = "Number"
	FlagTypeObject  FlagType = "Object"
)

// FlagState switches a flag on or off as a whole.
// +enum
type FlagState string

const (
	// FlagStateEnabled evaluates the flag's overrides, rules and default.
	FlagStateEnabled FlagState = "Enabled"
	// FlagStateDisabled is the kill switch: every evaluation answers DISABLED.
	FlagStateDisabled FlagState = "Disabled"
)

// +genclient
// +genclient:method=Evaluate,verb=create,subresource=evaluate,input=EvaluationRequest,result=EvaluationResult
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Flag is a feature flag. Its metadata.name is the flag key clients ask for;
// its namespace is the flag set (environment) it belongs to.
type Flag struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// spec is the desired behaviour of the flag.
	Spec FlagSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`

	// status is the observed state of the flag, written by the server.
	// +optional
	Status FlagStatus `json:"status,omitempty" protobuf:"bytes,3,opt,name=status"`
}

// FlagSpec is the desired behaviour of a flag.
type FlagSpec struct {
	// description says what the flag is for, for people.
	// +optional
	Description string `json:"description,omitempty" protobuf:"bytes,1,opt,name=description"`

	// type is the type every variant value has: Boolean, String, Number or Object.
	// +required
	Type FlagType `json:"type" protobuf:"bytes,2,opt,name=type,casttype=FlagType"`

	// state is Enabled or Disabled; Disabled is the kill switch. Defaults to Enabled.
	// +optional
	// +default="Enabled"
	State FlagState `json:"state,omitempty" protobuf:"bytes,3,opt,name=state,casttype=FlagState"`

	// variants are the named values the flag can resolve to.
	// Quote variant names such as "on", "off", "yes" and "no" in YAML:
	// YAML 1.1 reads them unquoted as booleans.
	// +listType=map
	// +listMapKey=name
	// +patchMergeKey=name
	// +patchStrategy=merge
	// +required
	Variants []Variant `json:"variants" patchStrategy:"merge" patchMergeKey:"name" protobuf:"bytes,4,rep,name=variants"`

	// defaultVariant names the variant served when no rule matches. When it is
	// empty, evaluation answers reason DEFAULT with no value and the caller's
	// code default applies.
	// +optional
	DefaultVariant VariantName `json:"defaultVariant,omitempty" protobuf:"bytes,5,opt,name=defaultVariant,casttype=VariantName"`

	// rules are tried in order; the first that matches decides the variant.
	// Order is meaning, so the list is replaced as a whole, never merged.
	// +listType=atomic
	// +optional
	Rules []Rule `json:"rules,omitempty" protobuf:"bytes,6,rep,name=rules"`

	// owner names the team or person responsible for the flag.
	// +optional
	Owner string `json:"owner,omitempty" protobuf:"bytes,7,opt,name=owner"`

	// expiresAt is when the flag should have been cleaned up; after it the
	// flag's Stale condition becomes True. Evaluation is not affected.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty" protobuf:"bytes,8,opt,name=expiresAt"`
}

// VariantName names a variant. It is a string; a JSON boolean sent in its
// place (what YAML 1.1 makes of an unquoted on/off/yes/no) is kept apart from
// every real name so that validation can reject it with a hint to quote it.
type VariantName string

// Variant is one named value a flag can resolve to.
type Variant struct {
	// name identifies the variant within the flag.
	// +required
	Name VariantName `json:"name" protobuf:"bytes,1,opt,name=name,casttype=VariantName"`

	// value is the variant's value, any JSON value matching the flag's type.
	// +required
	Value JSON `json:"value" protobuf:"bytes,2,opt,name=value"`
}

// JSON holds an arbitrary JSON value. It is kept as raw bytes so that the
// type has a protobuf encoding: a message with the value's JSON text in
// field 1. Its protobuf methods are hand-written (marshal_proto.go) so that
// decoding protobuf applies the checks decoding JSON does.
// +protobuf=true
// +protobuf.options.marshal=false
// +protobuf.options.(gogoproto.goproto_stringer)=false
type JSON struct {
	Raw []byte `json:"-" protobuf:"bytes,1,opt,name=raw"`
}

// Rule selects a variant, or a rollout between variants, for the contexts it matches.
type Rule struct {
	// name identifies the rule in evaluation results; unique within the flag.
	// +required
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`

	// segments names Segments in the flag's namespace; a context must belong to all of them.
	// +listType=atomic
	// +optional
	Segments []string `json:"segments,omitempty" protobuf:"bytes,2,rep,name=segments"`

	// when is a CEL expression that must evaluate to true for the rule to match.
	// +optional
	When string `json:"when,omitempty" protobuf:"bytes,3,opt,name=when"`

	// variant is served when the rule matches. Exactly one of variant and rollout is set.
	// +optional
	Variant VariantName `json:"variant,omitempty" protobuf:"bytes,4,opt,name=variant,casttype=VariantName"`

	// rollout splits matching contexts between variants by sticky percentage.
	// Exactly one of variant and rollout is set.
	// +optional
	Rollout *Rollout `json:"rollout,omitempty" protobuf:"bytes,5,opt,name=rollout"`
}

// Rollout is a sticky percentage split between variants.
type Rollout struct {
	// bucketBy is a CEL string expression whose value is hashed to pick a
	// bucket. Empty means flagKey + targetingKey.
	// +optional
	BucketBy string `json:"bucketBy,omitempty" protobuf:"bytes,1,opt,name=bucketBy"`

	// distribution lists variants with integer weights; buckets are assigned
	// in list order, so the order is part of the meaning.
	// +listType=atomic
	// +required
	Distribution []WeightedVariant `json:"distribution" protobuf:"bytes,2,rep,name=distribution"`

	// bucketing is the algorithm that maps the hashed key onto the
	// distribution: FlagdV2 (the default when empty) is flagd's fractional
	// operator since 2026, FlagdV1 the one it used before, for flags taken
	// from an older flagd whose users must keep their buckets.
	// +optional
	Bucketing RolloutBucketing `json:"bucketing,omitempty" protobuf:"bytes,3,opt,name=bucketing,casttype=RolloutBucketing"`
}

// RolloutBucketing names a bucketing algorithm: how a key's murmur3 hash is
// mapped onto a rollout's weights.
// +enum
type RolloutBucketing string

const (
	// RolloutBucketingFlagdV2 is flagd's fractional bucketing since 2026:
	// bucket = (hash × total weight) >> 32, in integers.
	RolloutBucketingFlagdV2 RolloutBucketing = "FlagdV2"
	// RolloutBucketingFlagdV1 is flagd's fractional bucketing before 2026:
	// |int32(hash)| / (2³¹−1) × 100 against the running sum of the
	// variants' percentages, in floating point.
	RolloutBucketingFlagdV1 RolloutBucketing = "FlagdV1"
)

// WeightedVariant is one slice of a rollout.
type WeightedVariant struct {
	// variant names one of the flag's variants.
	// +required
	Variant VariantName `json:"variant" protobuf:"bytes,1,opt,name=variant,casttype=VariantName"`

	// weight is this variant's share relative to the sum of all weights.
	// +required
	// +k8s:minimum=0
	Weight int32 `json:"weight" protobuf:"varint,2,opt,name=weight"`
}

// FlagStatus is the observed state of a flag.
type FlagStatus struct {
	// observedGeneration is the metadata.generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty" protobuf:"varint,1,opt,name=observedGeneration"`

	// conditions: Ready (references resolve, expressions compile) and Stale
	// (past spec.expiresAt).
	// +listType=map
	// +listMapKey=type
	// +patchMergeKey=type
	// +patchStrategy=merge
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type" protobuf:"bytes,2,rep,name=conditions"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagList is a list of Flags.
type FlagList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	Items []Flag `json:"items" protobuf:"bytes,2,rep,name=items"`
}

// +genclient
// +genclient:noStatus
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Segment is a reusable audience that flag rules name: a CEL predicate plus
// explicit include and exclude lists of targeting keys.
type Segment struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// spec describes who belongs to the segment.
	Spec SegmentSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`
}

// SegmentSpec describes who belongs to a segment. A context belongs when its
// targeting key is in include, or when it is not in exclude and when matches.
type SegmentSpec struct {
	// description says who the segment is, for people.
	// +optional
	Description string `json:"description,omitempty" protobuf:"bytes,1,opt,name=description"`

	// when is a CEL predicate over the evaluation context.
	// +optional
	When string `json:"when,omitempty" protobuf:"bytes,2,opt,name=when"`

	// include lists targeting keys that always belong.
	// +listType=set
	// +optional
	Include []string `json:"include,omitempty" protobuf:"bytes,3,rep,name=include"`

	// exclude lists targeting keys that never belong (unless also included).
	// +listType=set
	// +optional
	Exclude []string `json:"exclude,omitempty" protobuf:"bytes,4,rep,name=exclude"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SegmentList is a list of Segments.
type SegmentList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	Items []Segment `json:"items" protobuf:"bytes,2,rep,name=items"`
}

// +genclient
// +genclient:noStatus
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagOverride temporarily forces a flag to a variant, for everyone or for
// listed targeting keys. It expires: after status.expiresAt evaluation
// ignores it, and the server deletes it soon after.
type FlagOverride struct {
	metav1.TypeMeta `json:",inline"`
	// Standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// spec says which flag is forced to which variant, for whom, for how long.
	Spec FlagOverrideSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`

	// status is written by the server.
	// +optional
	Status FlagOverrideStatus `json:"status,omitempty" protobuf:"bytes,3,opt,name=status"`
}

// FlagOverrideSpec is the desired override.
type FlagOverrideSpec struct {
	// flag is the name of a Flag in the same namespace.
	// +required
	Flag string `json:"flag" protobuf:"bytes,1,opt,name=flag"`

	// variant names one of the flag's variants.
	// +required
	Variant VariantName `json:"variant" protobuf:"bytes,2,opt,name=variant,casttype=VariantName"`

	// targetingKeys limits the override to these targeting keys; empty means everyone.
	// +listType=set
	// +optional
	TargetingKeys []string `json:"targetingKeys,omitempty" protobuf:"bytes,3,rep,name=targetingKeys"`

	// ttl is how long the override lasts from creation: 10s to 7d, default 1h.
	// It cannot be changed after creation.
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty" protobuf:"bytes,4,opt,name=ttl"`
}

// FlagOverrideStatus is the observed state of an override.
type FlagOverrideStatus struct {
	// expiresAt is creation time plus ttl, set by the server on create and
	// immutable afterwards.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty" protobuf:"bytes,1,opt,name=expiresAt"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagOverrideList is a list of FlagOverrides.
type FlagOverrideList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	Items []FlagOverride `json:"items" protobuf:"bytes,2,rep,name=items"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EvaluationRequest is what a client POSTs to flags/evaluate. It has no
// object metadata: it is never stored.
type EvaluationRequest struct {
	metav1.TypeMeta `json:",inline"`

	// context is the OpenFeature evaluation context, a JSON object; its
	// member targetingKey, a string, is the targeting key. At most 16 KiB.
	// +optional
	Context JSON `json:"context,omitempty,omitzero" protobuf:"bytes,1,opt,name=context"`

	// type is the type the caller expects; a different flag type is a
	// TYPE_MISMATCH error. Empty accepts any type.
	// +optional
	Type FlagType `json:"type,omitempty" protobuf:"bytes,2,opt,name=type,casttype=FlagType"`
}

// FlagEvaluation is the OpenFeature result of evaluating one flag.
type FlagEvaluation struct {
	// key is the flag key (the Flag's name).
	Key string `json:"key" protobuf:"bytes,1,opt,name=key"`
	// value is the resolved value; absent when the caller's code default applies.
	// +optional
	Value *JSON `json:"value,omitempty" protobuf:"bytes,2,opt,name=value"`
	// variant is the name of the resolved variant.
	// +optional
	Variant string `json:"variant,omitempty" protobuf:"bytes,3,opt,name=variant"`
	// reason is STATIC, TARGETING_MATCH, SPLIT, DEFAULT, DISABLED or ERROR.
	Reason string `json:"reason" protobuf:"bytes,4,opt,name=reason"`
	// errorCode is set with reason ERROR: FLAG_NOT_FOUND, TYPE_MISMATCH,
	// PARSE_ERROR, TARGETING_KEY_MISSING, INVALID_CONTEXT or GENERAL.
	// +optional
	ErrorCode string `json:"errorCode,omitempty" protobuf:"bytes,5,opt,name=errorCode"`
	// errorMessage explains errorCode.
	// +optional
	ErrorMessage string `json:"errorMessage,omitempty" protobuf:"bytes,6,opt,name=errorMessage"`
	// metadata traces the answer to a flag revision.
	// +optional
	Metadata EvaluationMetadata `json:"metadata,omitempty" protobuf:"bytes,7,opt,name=metadata"`
}

// EvaluationMetadata traces an evaluation to the flag revision and the rule
// or override that decided it.
type EvaluationMetadata struct {
	// resourceVersion of the Flag evaluated.
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty" protobuf:"bytes,1,opt,name=resourceVersion"`
	// generation of the Flag evaluated.
	// +optional
	Generation int64 `json:"generation,omitempty" protobuf:"varint,2,opt,name=generation"`
	// rule is the name of the rule that matched.
	// +optional
	Rule string `json:"rule,omitempty" protobuf:"bytes,3,opt,name=rule"`
	// override is the name of the FlagOverride that decided.
	// +optional
	Override string `json:"override,omitempty" protobuf:"bytes,4,opt,name=override"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EvaluationResult is the answer of flags/evaluate.
type EvaluationResult struct {
	metav1.TypeMeta `json:",inline"`

	FlagEvaluation `json:",inline" protobuf:"bytes,1,opt,name=flagEvaluation"`
}

// +genclient
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Evaluation evaluates every flag of a namespace (or a selection) for one
// context in one call. It is create-only and never stored, like
// SelfSubjectAccessReview; creating one needs `create` on `evaluations` in
// the namespace, a namespace-wide permission distinct from `flags/evaluate`.
type Evaluation struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// spec is the context and the flags to evaluate.
	Spec EvaluationSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`

	// status holds one result per flag evaluated, ordered by key.
	// +optional
	Status EvaluationStatus `json:"status,omitempty" protobuf:"bytes,3,opt,name=status"`
}

// EvaluationSpec selects what to evaluate, and for whom.
type EvaluationSpec struct {
	// context is the OpenFeature evaluation context, as in EvaluationRequest.
	// +optional
	Context JSON `json:"context,omitempty,omitzero" protobuf:"bytes,1,opt,name=context"`

	// flags lists flag keys to evaluate; a key with no flag answers FLAG_NOT_FOUND.
	// +listType=set
	// +optional
	Flags []string `json:"flags,omitempty" protobuf:"bytes,2,rep,name=flags"`

	// selector selects flags by label. With neither flags nor selector, every
	// flag in the namespace is evaluated.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty" protobuf:"bytes,3,opt,name=selector"`
}

// EvaluationStatus holds the results of a bulk evaluation.
type EvaluationStatus struct {
	// results has one entry per flag, ordered by key.
	// +listType=atomic
	// +optional
	Results []FlagEvaluation `json:"results,omitempty" protobuf:"bytes,1,rep,name=results"`
}
