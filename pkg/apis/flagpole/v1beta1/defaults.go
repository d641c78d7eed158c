package v1beta1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}

// SetDefaults_FlagSpec fills in what an omitted field means.
func SetDefaults_FlagSpec(obj *FlagSpec) {
	if obj.State == "" {
		obj.State = FlagStateEnabled
	}
}

// DefaultOverrideTTL is how long an override lasts when spec.ttl is omitted.
const DefaultOverrideTTL = time.Hour

// SetDefaults_FlagOverrideSpec fills in the default lifetime.
func SetDefaults_FlagOverrideSpec(obj *FlagOverrideSpec) {
	if obj.TTL == nil {
		obj.TTL = &metav1.Duration{Duration: DefaultOverrideTTL}
	}
}
