package v1beta1

import "k8s.io/apimachinery/pkg/runtime"

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}

// SetDefaults_FlagSpec fills in what an omitted field means.
func SetDefaults_FlagSpec(obj *FlagSpec) {
	if obj.State == "" {
		obj.State = FlagStateEnabled
	}
}
