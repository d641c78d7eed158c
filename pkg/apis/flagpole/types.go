package flagpole

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FlagType is the type every variant value of a flag has.
type FlagType string

const (
	FlagTypeBoolean FlagType = "Boolean"
	FlagTypeString  FlagType = "String"
	FlagTypeNumber  FlagType = "Number"
	FlagTypeObject  FlagType = "Object"
)

// FlagState switches a flag on or off as a whole; Disabled is the kill switch.
type FlagState string

const (
	FlagStateEnabled  FlagState = "Enabled"
	FlagStateDisabled FlagState = "Disabled"
)

// Condition types a Flag's status carries.
const (
	// FlagConditionReady is True when every reference resolves and every expression compiles.
	FlagConditionReady = "Ready"
	// FlagConditionStale is True once the flag is past spec.expiresAt.
	FlagConditionStale = "Stale"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Flag is a feature flag. Its name is the flag key clients ask for.
type Flag struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   FlagSpec
	Status FlagStatus
}

// FlagSpec is the desired behaviour of a flag.
type FlagSpec struct {
	Description    string
	Type           FlagType
	State          FlagState
	Variants       []Variant
	DefaultVariant string
	Rules          []Rule
	Owner          string
	ExpiresAt      *metav1.Time
}

// Variant is one named value a flag can resolve to.
type Variant struct {
	Name  string
	Value JSON
}

// JSON holds an arbitrary JSON value, kept as raw bytes so that the types stay
// protobuf-friendly (no interface{} fields).
type JSON struct {
	Raw []byte
}

// Rule selects a variant, or a rollout between variants, for matching contexts.
type Rule struct {
	Name     string
	Segments []string
	When     string
	Variant  string
	Rollout  *Rollout
}

// Rollout is a sticky percentage split between variants.
type Rollout struct {
	BucketBy     string
	Distribution []WeightedVariant
	Bucketing    RolloutBucketing
}

// RolloutBucketing names the algorithm that maps a hashed key onto a
// rollout's weights; empty means RolloutBucketingFlagdV2.
type RolloutBucketing string

const (
	RolloutBucketingFlagdV2 RolloutBucketing = "FlagdV2"
	RolloutBucketingFlagdV1 RolloutBucketing = "FlagdV1"
)

// WeightedVariant is one slice of a rollout.
type WeightedVariant struct {
	Variant string
	Weight  int32
}

// FlagStatus is the observed state of a flag.
type FlagStatus struct {
	ObservedGeneration int64
	Conditions         []metav1.Condition
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagList is a list of Flags.
type FlagList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []Flag
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Segment is a reusable audience: a CEL predicate plus explicit include and
// exclude lists of targeting keys.
type Segment struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec SegmentSpec
}

// SegmentSpec describes who belongs to a segment.
type SegmentSpec struct {
	Description string
	When        string
	Include     []string
	Exclude     []string
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// SegmentList is a list of Segments.
type SegmentList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []Segment
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagOverride temporarily forces a flag to a variant.
type FlagOverride struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   FlagOverrideSpec
	Status FlagOverrideStatus
}

// FlagOverrideSpec is the desired override.
type FlagOverrideSpec struct {
	Flag          string
	Variant       string
	TargetingKeys []string
	TTL           *metav1.Duration
}

// FlagOverrideStatus is the observed state of an override.
type FlagOverrideStatus struct {
	ExpiresAt *metav1.Time
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagOverrideList is a list of FlagOverrides.
type FlagOverrideList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []FlagOverride
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EvaluationRequest is the body of flags/evaluate.
type EvaluationRequest struct {
	metav1.TypeMeta

	Context JSON
	Type    FlagType
}

// FlagEvaluation is the OpenFeature result of evaluating one flag.
type FlagEvaluation struct {
	Key          string
	Value        *JSON
	Variant      string
	Reason       string
	ErrorCode    string
	ErrorMessage string
	Metadata     EvaluationMetadata
}

// EvaluationMetadata traces an evaluation to a flag revision.
type EvaluationMetadata struct {
	ResourceVersion string
	Generation      int64
	Rule            string
	Override        string
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EvaluationResult is the answer of flags/evaluate.
type EvaluationResult struct {
	metav1.TypeMeta

	FlagEvaluation
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Evaluation is a create-only bulk evaluation.
type Evaluation struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec   EvaluationSpec
	Status EvaluationStatus
}

// EvaluationSpec selects what to evaluate, and for whom.
type EvaluationSpec struct {
	Context  JSON
	Flags    []string
	Selector *metav1.LabelSelector
}

// EvaluationStatus holds the results of a bulk evaluation.
type EvaluationStatus struct {
	Results []FlagEvaluation
}
