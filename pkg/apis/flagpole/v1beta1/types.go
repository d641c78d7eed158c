package v1beta1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
// +genclient:method=Rollout,verb=create,subresource=rollout,input=RolloutAction,result=Flag
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

	// lifecycle says what kind of flag this is, and so how long it is
	// expected to live: a flag older than its kind's expected lifetime is
	// Stale. Without it the flag has no expected lifetime.
	// +optional
	Lifecycle *FlagLifecycle `json:"lifecycle,omitempty" protobuf:"bytes,9,opt,name=lifecycle"`
}

// FlagLifecycle says what kind of flag this is.
type FlagLifecycle struct {
	// kind is Release (40 days), Experiment (40 days), Operational (7 days),
	// KillSwitch or Permission (both permanent: never stale by age). The
	// server's --lifecycle-lifetimes may change the lifetimes.
	// +required
	Kind FlagLifecycleKind `json:"kind" protobuf:"bytes,1,opt,name=kind,casttype=FlagLifecycleKind"`
}

// FlagLifecycleKind says what a flag is for.
// +enum
type FlagLifecycleKind string

const (
	// FlagLifecycleRelease guards code that is being released; it goes once
	// everyone has it.
	FlagLifecycleRelease FlagLifecycleKind = "Release"
	// FlagLifecycleExperiment splits traffic between variants to compare
	// them; it goes once the experiment is decided.
	FlagLifecycleExperiment FlagLifecycleKind = "Experiment"
	// FlagLifecycleOperational controls an operational aspect for a short
	// while (a migration, a rollout of infrastructure).
	FlagLifecycleOperational FlagLifecycleKind = "Operational"
	// FlagLifecycleKillSwitch turns functionality off in an emergency; it
	// is permanent.
	FlagLifecycleKillSwitch FlagLifecycleKind = "KillSwitch"
	// FlagLifecyclePermission gives functionality to some users; it is
	// permanent.
	FlagLifecyclePermission FlagLifecycleKind = "Permission"
)

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

	// plan moves the rollout in steps, run by the server: each step gives
	// the plan's variant a percentage of the rule's traffic (the other
	// variants share the rest in the distribution's proportions) until its
	// duration passes or someone approves. The distribution is what the
	// rule serves before the plan starts and after an abort; the server
	// never rewrites it. status.rollouts says where the plan is.
	// +optional
	Plan *RolloutPlan `json:"plan,omitempty" protobuf:"bytes,4,opt,name=plan"`
}

// RolloutPlan is a rollout in steps.
type RolloutPlan struct {
	// variant is the variant rolled out, one of the distribution's.
	// +required
	Variant VariantName `json:"variant" protobuf:"bytes,1,opt,name=variant,casttype=VariantName"`

	// steps in order, their weights rising.
	// +listType=atomic
	// +required
	Steps []RolloutStep `json:"steps" protobuf:"bytes,2,rep,name=steps"`
}

// RolloutStep is one step of a plan.
type RolloutStep struct {
	// weight is the percentage (1 to 100) of the rule's traffic the plan's
	// variant gets during the step.
	// +required
	Weight int32 `json:"weight" protobuf:"varint,1,opt,name=weight"`

	// duration: the step lasts this long, then the next begins.
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty" protobuf:"bytes,2,opt,name=duration"`

	// approval: the step lasts until someone approves it (flags/rollout).
	// A step has a duration or an approval; the last may have neither,
	// and the plan is complete once it is reached.
	// +optional
	Approval bool `json:"approval,omitempty" protobuf:"varint,3,opt,name=approval"`

	// guard aborts the plan when a Prometheus query crosses a threshold
	// while the step is current.
	// +optional
	Guard *RolloutGuard `json:"guard,omitempty" protobuf:"bytes,4,opt,name=guard"`
}

// RolloutGuard is a metric a step must keep within bounds.
type RolloutGuard struct {
	// query is a PromQL instant query whose answer is one number: a scalar
	// or a vector of one sample.
	// +required
	Query string `json:"query" protobuf:"bytes,1,opt,name=query"`

	// abortAbove aborts the plan when the value is above it.
	// +optional
	AbortAbove *resource.Quantity `json:"abortAbove,omitempty" protobuf:"bytes,2,opt,name=abortAbove"`

	// abortBelow aborts the plan when the value is below it.
	// +optional
	AbortBelow *resource.Quantity `json:"abortBelow,omitempty" protobuf:"bytes,3,opt,name=abortBelow"`
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
	// (past spec.expiresAt, not evaluated for a while, serving one variant
	// to every evaluation, or older than its lifecycle kind's lifetime).
	// +listType=map
	// +listMapKey=type
	// +patchMergeKey=type
	// +patchStrategy=merge
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type" protobuf:"bytes,2,rep,name=conditions"`

	// lastChange says who last changed the spec, when, and to which
	// generation. The server writes it in the same write as the change;
	// clients cannot set it.
	// +optional
	LastChange *FlagChange `json:"lastChange,omitempty" protobuf:"bytes,3,opt,name=lastChange"`

	// usage is what real traffic did with the flag, across every replica
	// and the in-process providers that report. It is computed when the
	// flag is read (get, list, and the answers of writes) and never stored:
	// watch events do not carry it, and a write ignores it.
	// +optional
	Usage *FlagUsage `json:"usage,omitempty" protobuf:"bytes,4,opt,name=usage"`

	// rollouts says where each rule's rollout plan is. The server's
	// rollout controller and the flags/rollout subresource write it;
	// evaluation reads the weight in effect from it.
	// +listType=map
	// +listMapKey=rule
	// +optional
	Rollouts []RolloutStatus `json:"rollouts,omitempty" protobuf:"bytes,5,rep,name=rollouts"`
}

// RolloutPhase is where a plan is.
// +enum
type RolloutPhase string

const (
	// RolloutPhaseProgressing: the current step ends when its duration has passed.
	RolloutPhaseProgressing RolloutPhase = "Progressing"
	// RolloutPhasePaused: held, by a person or because a guard could not be read.
	RolloutPhasePaused RolloutPhase = "Paused"
	// RolloutPhaseWaiting: the current step waits for approval.
	RolloutPhaseWaiting RolloutPhase = "Waiting"
	// RolloutPhaseCompleted: the last step is reached and over.
	RolloutPhaseCompleted RolloutPhase = "Completed"
	// RolloutPhaseAborted: stopped, everyone back on the distribution.
	RolloutPhaseAborted RolloutPhase = "Aborted"
)

// RolloutStatus is where one rule's plan is.
type RolloutStatus struct {
	// rule names the rule.
	// +required
	Rule string `json:"rule" protobuf:"bytes,1,opt,name=rule"`

	// plan identifies the plan this status is of (a hash of it): a changed
	// plan goes on from the first of its steps not below the weight in
	// effect, a plan of another variant starts again.
	// +optional
	Plan string `json:"plan,omitempty" protobuf:"bytes,2,opt,name=plan"`

	// phase is where the plan is.
	// +optional
	Phase RolloutPhase `json:"phase,omitempty" protobuf:"bytes,3,opt,name=phase,casttype=RolloutPhase"`

	// step is the index of the current step.
	// +optional
	Step int32 `json:"step" protobuf:"varint,4,opt,name=step"`

	// weight is the percentage of the rule's traffic the plan's variant
	// gets now; 0 after an abort.
	// +optional
	Weight int32 `json:"weight" protobuf:"varint,5,opt,name=weight"`

	// stepStartedAt is when the current step began.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty" protobuf:"bytes,6,opt,name=stepStartedAt"`

	// nextStepAt is when the current step ends, while it progresses.
	// +optional
	NextStepAt *metav1.Time `json:"nextStepAt,omitempty" protobuf:"bytes,7,opt,name=nextStepAt"`

	// remaining is what was left of a paused step's duration.
	// +optional
	Remaining *metav1.Duration `json:"remaining,omitempty" protobuf:"bytes,8,opt,name=remaining"`

	// reason is a CamelCase word for the last transition (Started,
	// Advanced, Approved, Promoted, Paused, Resumed, GuardUnavailable,
	// GuardTripped, Aborted, Completed).
	// +optional
	Reason string `json:"reason,omitempty" protobuf:"bytes,9,opt,name=reason"`

	// message says it for people: who, and why.
	// +optional
	Message string `json:"message,omitempty" protobuf:"bytes,10,opt,name=message"`

	// steps records when each step reached began.
	// +listType=atomic
	// +optional
	Steps []RolloutStepStatus `json:"steps,omitempty" protobuf:"bytes,11,rep,name=steps"`
}

// RolloutStepStatus records one step reached.
type RolloutStepStatus struct {
	// step is the step's index.
	Step int32 `json:"step" protobuf:"varint,1,opt,name=step"`
	// startedAt is when it began.
	StartedAt metav1.Time `json:"startedAt" protobuf:"bytes,2,opt,name=startedAt"`
}

// FlagChange records a change of a flag's spec.
type FlagChange struct {
	// user is the authenticated user who made the change (the impersonated
	// user when impersonating).
	// +optional
	User string `json:"user,omitempty" protobuf:"bytes,1,opt,name=user"`
	// time is when the change was written.
	Time metav1.Time `json:"time" protobuf:"bytes,2,opt,name=time"`
	// generation is the metadata.generation the change made.
	Generation int64 `json:"generation" protobuf:"varint,3,opt,name=generation"`
}

// FlagUsage is what real traffic did with a flag.
type FlagUsage struct {
	// lastEvaluated is when the flag was last evaluated, by any replica or
	// reporting provider. Absent: never, since countingSince.
	// +optional
	LastEvaluated *metav1.Time `json:"lastEvaluated,omitempty" protobuf:"bytes,1,opt,name=lastEvaluated"`
	// firstEvaluated is when the flag was first evaluated.
	// +optional
	FirstEvaluated *metav1.Time `json:"firstEvaluated,omitempty" protobuf:"bytes,2,opt,name=firstEvaluated"`
	// countingSince is when the server began counting evaluations: nothing
	// before it is known.
	// +optional
	CountingSince *metav1.Time `json:"countingSince,omitempty" protobuf:"bytes,3,opt,name=countingSince"`
	// variants says when each variant was last served.
	// +listType=map
	// +listMapKey=name
	// +optional
	Variants []VariantUsage `json:"variants,omitempty" protobuf:"bytes,4,rep,name=variants"`
	// windows count the evaluations of the last hour (1h), day (24h) and
	// week (7d); each counts from its since, which lies between one and one
	// and a quarter of its length ago.
	// +listType=map
	// +listMapKey=window
	// +optional
	Windows []UsageWindow `json:"windows,omitempty" protobuf:"bytes,5,rep,name=windows"`
}

// VariantUsage is when a variant was last served.
type VariantUsage struct {
	// name of the variant.
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`
	// lastServed is when an evaluation last answered it.
	LastServed metav1.Time `json:"lastServed" protobuf:"bytes,2,opt,name=lastServed"`
}

// UsageWindow counts the evaluations since a time.
type UsageWindow struct {
	// window is 1h, 24h or 7d.
	Window string `json:"window" protobuf:"bytes,1,opt,name=window"`
	// since is where the counts begin.
	Since metav1.Time `json:"since" protobuf:"bytes,2,opt,name=since"`
	// evaluations counts every evaluation, errors included.
	Evaluations int64 `json:"evaluations" protobuf:"varint,3,opt,name=evaluations"`
	// errors counts the evaluations that answered reason ERROR.
	// +optional
	Errors int64 `json:"errors,omitempty" protobuf:"varint,4,opt,name=errors"`
	// variants counts the evaluations that served each variant; the
	// remainder served none (the code default applied).
	// +listType=map
	// +listMapKey=name
	// +optional
	Variants []VariantCount `json:"variants,omitempty" protobuf:"bytes,5,rep,name=variants"`
	// reasons counts the evaluations by OpenFeature reason.
	// +listType=map
	// +listMapKey=reason
	// +optional
	Reasons []ReasonCount `json:"reasons,omitempty" protobuf:"bytes,6,rep,name=reasons"`
}

// VariantCount is how often a variant was served.
type VariantCount struct {
	// name of the variant.
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`
	// count of evaluations that served it.
	Count int64 `json:"count" protobuf:"varint,2,opt,name=count"`
}

// ReasonCount is how often a reason was answered.
type ReasonCount struct {
	// reason is an OpenFeature reason: STATIC, TARGETING_MATCH, SPLIT,
	// DEFAULT, DISABLED or ERROR.
	Reason string `json:"reason" protobuf:"bytes,1,opt,name=reason"`
	// count of evaluations that answered it.
	Count int64 `json:"count" protobuf:"varint,2,opt,name=count"`
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

// +genclient
// +genclient:onlyVerbs=get,list,watch
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagRevision is one generation of a flag's spec, kept so that a person can
// see who changed what and restore it. The server writes one for every
// generation of every flag (derived from the watch, after the change is
// stored) and removes them past the retention limits or with their flag;
// clients can only read them. Its name is <flag>.<generation>; the label
// flagpole.dev/flag names its flag.
type FlagRevision struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// flag is the flag this is a revision of.
	Flag FlagReference `json:"flag" protobuf:"bytes,2,opt,name=flag"`
	// change says who made this generation, and when.
	Change FlagChange `json:"change" protobuf:"bytes,3,opt,name=change"`
	// diff lists what changed from the previous revision kept, one line per
	// changed field ("spec.state: \"Enabled\" → \"Disabled\""); empty for
	// the first.
	// +listType=atomic
	// +optional
	Diff []string `json:"diff,omitempty" protobuf:"bytes,4,rep,name=diff"`
	// spec is the flag's spec at this generation: PUT it back (or replace
	// /spec with it in a JSON patch) to restore it.
	Spec FlagSpec `json:"spec" protobuf:"bytes,5,opt,name=spec"`
}

// FlagReference names one flag.
type FlagReference struct {
	// name of the flag.
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`
	// uid of the flag: a flag deleted and created again is another flag.
	// +optional
	UID types.UID `json:"uid,omitempty" protobuf:"bytes,2,opt,name=uid,casttype=k8s.io/apimachinery/pkg/types.UID"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// FlagRevisionList is a list of FlagRevisions.
type FlagRevisionList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	Items []FlagRevision `json:"items" protobuf:"bytes,2,rep,name=items"`
}

// +genclient
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// UsageReport is how an in-process provider (pkg/openfeature) tells the
// server what it evaluated, so that its flags' usage counts its traffic. It
// is create-only and never stored: its counts are added to the replica's
// own. Creating one needs `create` on `usagereports` in the namespace.
type UsageReport struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty" protobuf:"bytes,1,opt,name=metadata"`

	// spec holds the counts.
	Spec UsageReportSpec `json:"spec" protobuf:"bytes,2,opt,name=spec"`
}

// UsageReportSpec is what a provider evaluated since its last report.
type UsageReportSpec struct {
	// flags has one entry per flag evaluated, each a flag of the report's
	// namespace. At most 1000.
	// +listType=map
	// +listMapKey=name
	// +optional
	Flags []FlagUsageReport `json:"flags,omitempty" protobuf:"bytes,1,rep,name=flags"`
}

// FlagUsageReport counts one flag's evaluations.
type FlagUsageReport struct {
	// name of the flag.
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`
	// uid of the flag evaluated; when set it must be the flag's.
	// +optional
	UID types.UID `json:"uid,omitempty" protobuf:"bytes,2,opt,name=uid,casttype=k8s.io/apimachinery/pkg/types.UID"`
	// reasons counts the evaluations by OpenFeature reason; their sum is the
	// number of evaluations.
	// +listType=map
	// +listMapKey=reason
	Reasons []ReasonCount `json:"reasons" protobuf:"bytes,3,rep,name=reasons"`
	// variants counts the evaluations that served each variant, each one of
	// the flag's; their sum is at most the number of evaluations.
	// +listType=map
	// +listMapKey=name
	// +optional
	Variants []VariantCount `json:"variants,omitempty" protobuf:"bytes,4,rep,name=variants"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// RolloutAction is what a client POSTs to flags/rollout to move a plan by
// hand; the answer is the flag with its new status. RBAC grants it apart
// from editing the flag (create on flags/rollout).
type RolloutAction struct {
	metav1.TypeMeta `json:",inline"`

	// rule names the rule whose plan to act on; it may be left out when
	// the flag has one plan.
	// +optional
	Rule string `json:"rule,omitempty" protobuf:"bytes,1,opt,name=rule"`

	// action is Pause, Resume, Promote (end the current step now: its
	// duration or its approval), Approve (end a step that waits for
	// approval) or Abort (everyone back on the distribution).
	// +required
	Action RolloutActionType `json:"action" protobuf:"bytes,2,opt,name=action,casttype=RolloutActionType"`

	// message says why, for the plan's status and its Event.
	// +optional
	Message string `json:"message,omitempty" protobuf:"bytes,3,opt,name=message"`
}

// RolloutActionType is what a RolloutAction does.
// +enum
type RolloutActionType string

const (
	RolloutActionPause   RolloutActionType = "Pause"
	RolloutActionResume  RolloutActionType = "Resume"
	RolloutActionPromote RolloutActionType = "Promote"
	RolloutActionApprove RolloutActionType = "Approve"
	RolloutActionAbort   RolloutActionType = "Abort"
)

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

	// explain asks for result.explanation: what decided the answer and why
	// each rule before it did not match. An evaluation without it does no
	// work for explanations.
	// +optional
	Explain bool `json:"explain,omitempty" protobuf:"varint,3,opt,name=explain"`
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
	// explanation says how the answer came about; only when the request
	// asked for it (explain).
	// +optional
	Explanation *Explanation `json:"explanation,omitempty" protobuf:"bytes,8,opt,name=explanation"`
}

// Decision names what decided an evaluation's answer.
// +enum
type Decision string

const (
	// DecisionTypeMismatch: the flag is not of the type the caller expects.
	DecisionTypeMismatch Decision = "TypeMismatch"
	// DecisionDisabled: the kill switch (spec.state Disabled).
	DecisionDisabled Decision = "Disabled"
	// DecisionOverride: a live FlagOverride (metadata.override).
	DecisionOverride Decision = "Override"
	// DecisionRule: a rule, the last of explanation.rules, matched or failed.
	DecisionRule Decision = "Rule"
	// DecisionDefault: no rule matched (or there are none): spec.defaultVariant.
	DecisionDefault Decision = "Default"
)

// RuleOutcome is what trying one rule came to.
// +enum
type RuleOutcome string

const (
	// RuleOutcomeMatched: every segment contains the context and when is true.
	RuleOutcomeMatched RuleOutcome = "Matched"
	// RuleOutcomeFalse: when, or the when of the segment named, is false;
	// or the segment has no when and does not include the targeting key.
	RuleOutcomeFalse RuleOutcome = "False"
	// RuleOutcomeMissingAttribute: when (or the segment's) read a context
	// attribute the context lacks, which does not match.
	RuleOutcomeMissingAttribute RuleOutcome = "MissingAttribute"
	// RuleOutcomeExcluded: the segment named excludes the targeting key.
	RuleOutcomeExcluded RuleOutcome = "Excluded"
	// RuleOutcomeSegmentNotFound: the segment named does not exist.
	RuleOutcomeSegmentNotFound RuleOutcome = "SegmentNotFound"
	// RuleOutcomeError: an expression of the rule or its segments failed, or
	// its rollout could not bucket the context: the answer is that error.
	RuleOutcomeError RuleOutcome = "Error"
)

// Explanation says how an evaluation's answer came about.
type Explanation struct {
	// decision is what decided the answer.
	Decision Decision `json:"decision" protobuf:"bytes,1,opt,name=decision,casttype=Decision"`
	// rules are the rules tried, in order: each one that did not match, with
	// why, then the one that decided (decision Rule). Empty when the kill
	// switch or an override decided.
	// +listType=atomic
	// +optional
	Rules []RuleExplanation `json:"rules,omitempty" protobuf:"bytes,2,rep,name=rules"`
}

// RuleExplanation is what trying one rule came to, and why.
type RuleExplanation struct {
	// name is the rule's name.
	Name string `json:"name" protobuf:"bytes,1,opt,name=name"`
	// outcome is Matched, False, MissingAttribute, Excluded, SegmentNotFound or Error.
	Outcome RuleOutcome `json:"outcome" protobuf:"bytes,2,opt,name=outcome,casttype=RuleOutcome"`
	// segment names the segment the outcome is about; empty when it is about
	// the rule's own when (or rollout).
	// +optional
	Segment string `json:"segment,omitempty" protobuf:"bytes,3,opt,name=segment"`
	// message says more, for people: the attribute missing, the error.
	// +optional
	Message string `json:"message,omitempty" protobuf:"bytes,4,opt,name=message"`
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

	// explain asks for each result's explanation (see EvaluationRequest).
	// +optional
	Explain bool `json:"explain,omitempty" protobuf:"varint,4,opt,name=explain"`
}

// EvaluationStatus holds the results of a bulk evaluation.
type EvaluationStatus struct {
	// results has one entry per flag, ordered by key.
	// +listType=atomic
	// +optional
	Results []FlagEvaluation `json:"results,omitempty" protobuf:"bytes,1,rep,name=results"`
}
