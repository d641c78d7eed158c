package flagpole

// Field selectors each kind supports beyond metadata.name and
// metadata.namespace: the registry's selectable fields and the versioned
// API's field label conversions both use these.
const (
	// FlagFieldState selects flags by spec.state (the kill switch).
	FlagFieldState = "spec.state"
	// FlagFieldType selects flags by spec.type.
	FlagFieldType = "spec.type"
	// FlagFieldStale selects flags by their Stale condition: "true" or
	// "false" (a flag without the condition yet is "false").
	FlagFieldStale = "status.stale"
	// FlagOverrideFieldFlag selects the overrides of one flag.
	FlagOverrideFieldFlag = "spec.flag"
	// FlagRevisionFieldFlag selects the revisions of one flag (a field, not
	// a label: a flag's name may be longer than a label value).
	FlagRevisionFieldFlag = "flag.name"
)

// FlagTypes are the types a Flag may have, in the order messages list them.
var FlagTypes = []FlagType{FlagTypeBoolean, FlagTypeString, FlagTypeNumber, FlagTypeObject}

// MaxTargetingKeyLength caps a targeting key: in an evaluation context (the
// engine refuses longer ones) and in a Segment's include and exclude lists
// (validation refuses them), and the CEL cost estimator assumes it.
const MaxTargetingKeyLength = 256

// FlagLifecycleKinds are the kinds spec.lifecycle.kind may name, in the
// order messages list them.
var FlagLifecycleKinds = []FlagLifecycleKind{FlagLifecycleRelease, FlagLifecycleExperiment, FlagLifecycleOperational, FlagLifecycleKillSwitch, FlagLifecyclePermission}

// OpenFeature's resolution reasons, the ones Flagpole answers.
const (
	ReasonStatic         = "STATIC"
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonSplit          = "SPLIT"
	ReasonDefault        = "DEFAULT"
	ReasonDisabled       = "DISABLED"
	ReasonError          = "ERROR"
)

// Reasons are every reason an evaluation answers, in the order usage lists
// them.
var Reasons = []string{ReasonStatic, ReasonTargetingMatch, ReasonSplit, ReasonDefault, ReasonDisabled, ReasonError}
