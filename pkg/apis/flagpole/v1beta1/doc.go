// +k8s:openapi-gen=true
// +k8s:deepcopy-gen=package
// +k8s:conversion-gen=github.com/flagpole-dev/flagpole/pkg/apis/flagpole
// +k8s:defaulter-gen=TypeMeta
// +groupName=flagpole.dev
// +k8s:openapi-model-package=dev.flagpole.v1beta1

// Package v1beta1 is the v1beta1 version of the flagpole.dev API: the
// preferred version and the storage version.
package v1beta1
