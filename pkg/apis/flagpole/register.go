package flagpole

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group every Flagpole kind belongs to.
const GroupName = "flagpole.dev"

// SchemeGroupVersion is the internal version, used to register the hub types.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: runtime.APIVersionInternal}

var (
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	AddToScheme   = SchemeBuilder.AddToScheme
)

// Kind takes an unqualified kind and returns a group-qualified GroupKind.
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// Resource takes an unqualified resource and returns a group-qualified GroupResource.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Flag{},
		&FlagList{},
		&Segment{},
		&SegmentList{},
		&FlagOverride{},
		&FlagOverrideList{},
		&EvaluationRequest{},
		&RolloutAction{},
		&EvaluationResult{},
		&Evaluation{},
		&FlagRevision{},
		&FlagRevisionList{},
		&UsageReport{},
	)
	return nil
}
