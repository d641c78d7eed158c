package flagpole

// Field selectors each kind supports beyond metadata.name and
// metadata.namespace: the registry's selectable fields and the versioned
// API's field label conversions both use these.
const (
	// FlagFieldState selects flags by spec.state (the kill switch).
	FlagFieldState = "spec.state"
	// FlagFieldType selects flags by spec.type.
	FlagFieldType = "spec.type"
	// FlagOverrideFieldFlag selects the overrides of one flag.
	FlagOverrideFieldFlag = "spec.flag"
)

// FlagTypes are the types a Flag may have, in the order messages list them.
var FlagTypes = []FlagType{FlagTypeBoolean, FlagTypeString, FlagTypeNumber, FlagTypeObject}

// MaxTargetingKeyLength caps a targeting key: in an evaluation context (the
// engine refuses longer ones) and in a Segment's include and exclude lists
// (validation refuses them), and the CEL cost estimator assumes it.
const MaxTargetingKeyLength = 256
