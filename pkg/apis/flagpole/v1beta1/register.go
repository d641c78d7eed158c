package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group every Flagpole kind belongs to.
const GroupName = "flagpole.dev"

// SchemeGroupVersion is the group version of this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1beta1"}

var (
	// SchemeBuilder holds the hand-written registrations; the generated
	// conversion and defaulting functions add themselves to localSchemeBuilder.
	SchemeBuilder      runtime.SchemeBuilder
	localSchemeBuilder = &SchemeBuilder
	AddToScheme        = localSchemeBuilder.AddToScheme
)

func init() {
	localSchemeBuilder.Register(addKnownTypes, addDefaultingFuncs)
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
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
