package flagpole

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	// FlagConditionStale is True when the flag is due for clean-up: past
	// spec.expiresAt, unevaluated, serving one variant to everyone, or older
	// than its lifecycle kind's expected lifetime.
	FlagConditionStale = "Stale"
)

// FlagLifecycleKind says what a flag is for, and so how long it is expected
// to live.
type FlagLifecycleKind string

const (
	FlagLifecycleRelease     FlagLifecycleKind = "Release"
	FlagLifecycleExperiment  FlagLifecycleKind = "Experiment"
	FlagLifecycleOperational FlagLifecycleKind = "Operational"
	FlagLifecycleKillSwitch  FlagLifecycleKind = "KillSwitch"
	FlagLifecyclePermission  FlagLifecycleKind = "Permission"
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
	Lifecycle      *FlagLifecycle
}

// FlagLifecycle says what kind of flag this is.
type FlagLifecycle struct {
	Kind FlagLifecycleKind
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
	// Plan moves the rollout in steps (v1beta1.RolloutPlan).
	Plan *RolloutPlan
}

// RolloutPlan is a rollout in steps: the variant rolled out and its steps.
type RolloutPlan struct {
	Variant string
	Steps   []RolloutStep
}

// RolloutStep is one step: the variant's percentage and what ends it.
type RolloutStep struct {
	Weight   int32
	Duration *metav1.Duration
	Approval bool
	Guard    *RolloutGuard
}

// RolloutGuard is a Prometheus query a step must keep within bounds.
type RolloutGuard struct {
	Query      string
	AbortAbove *resource.Quantity
	AbortBelow *resource.Quantity
}

// RolloutPhase is where a plan is.
type RolloutPhase string

const (
	RolloutPhaseProgressing RolloutPhase = "Progressing"
	RolloutPhasePaused      RolloutPhase = "Paused"
	RolloutPhaseWaiting     RolloutPhase = "Waiting"
	RolloutPhaseCompleted   RolloutPhase = "Completed"
	RolloutPhaseAborted     RolloutPhase = "Aborted"
)

// RolloutStatus is where one rule's plan is (v1beta1.RolloutStatus).
type RolloutStatus struct {
	Rule          string
	Plan          string
	Phase         RolloutPhase
	Step          int32
	Weight        int32
	StepStartedAt *metav1.Time
	NextStepAt    *metav1.Time
	Remaining     *metav1.Duration
	Reason        string
	Message       string
	Steps         []RolloutStepStatus
}

// RolloutStepStatus records when a step began.
type RolloutStepStatus struct {
	Step      int32
	StartedAt metav1.Time
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
	LastChange         *FlagChange
	Usage              *FlagUsage
	Rollouts           []RolloutStatus
}

// FlagChange records who changed a flag's spec, when, to which generation.
type FlagChange struct {
	User       string
	Time       metav1.Time
	Generation int64
}

// FlagUsage is what real traffic did with a flag, merged on read from every
// replica's counts and the reports of in-process providers. It is never
// stored in the Flag.
type FlagUsage struct {
	LastEvaluated  *metav1.Time
	FirstEvaluated *metav1.Time
	CountingSince  *metav1.Time
	Variants       []VariantUsage
	Windows        []UsageWindow
}

// VariantUsage is when a variant was last served.
type VariantUsage struct {
	Name       string
	LastServed metav1.Time
}

// UsageWindow counts the evaluations of a recent span of time.
type UsageWindow struct {
	Window      string
	Since       metav1.Time
	Evaluations int64
	Errors      int64
	Variants    []VariantCount
	Reasons     []ReasonCount
}

// VariantCount is how often a variant was served.
type VariantCount struct {
	Name  string
	Count int64
}

// ReasonCount is how often an OpenFeature reason was answered.
type ReasonCount struct {
	Reason string
	Count  int64
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

// FlagRevision is one generation of a flag's spec, kept for its history.
type FlagRevision struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Flag   FlagReference
	Change FlagChange
	Diff   []string
	Spec   FlagSpec
}

// FlagReference names a flag, and which one of that name.
type FlagReference struct {
	Name string
	UID  types.UID
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagRevisionList is a list of FlagRevisions.
type FlagRevisionList struct {
	metav1.TypeMeta
	metav1.ListMeta

	Items []FlagRevision
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// UsageReport carries the evaluation counts of an in-process provider.
type UsageReport struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Spec UsageReportSpec
}

// UsageReportSpec is what a provider evaluated since its last report.
type UsageReportSpec struct {
	Flags []FlagUsageReport
}

// FlagUsageReport counts one flag's evaluations.
type FlagUsageReport struct {
	Name     string
	UID      types.UID
	Reasons  []ReasonCount
	Variants []VariantCount
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RolloutAction is the body of flags/rollout: a plan moved by hand.
type RolloutAction struct {
	metav1.TypeMeta
	Rule    string
	Action  RolloutActionType
	Message string
}

// RolloutActionType is what a RolloutAction does.
type RolloutActionType string

const (
	RolloutActionPause   RolloutActionType = "Pause"
	RolloutActionResume  RolloutActionType = "Resume"
	RolloutActionPromote RolloutActionType = "Promote"
	RolloutActionApprove RolloutActionType = "Approve"
	RolloutActionAbort   RolloutActionType = "Abort"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// EvaluationRequest is the body of flags/evaluate.
type EvaluationRequest struct {
	metav1.TypeMeta

	Context JSON
	Type    FlagType
	Explain bool
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
	Explanation  *Explanation
}

// Decision names what decided an evaluation's answer.
type Decision string

// RuleOutcome is what trying one rule came to.
type RuleOutcome string

// Explanation says how an evaluation's answer came about.
type Explanation struct {
	Decision Decision
	Rules    []RuleExplanation
}

// RuleExplanation is what trying one rule came to, and why.
type RuleExplanation struct {
	Name    string
	Outcome RuleOutcome
	Segment string
	Message string
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
	Explain  bool
}

// EvaluationStatus holds the results of a bulk evaluation.
type EvaluationStatus struct {
	Results []FlagEvaluation
}
