// +k8s:deepcopy-gen=package
// +groupName=flagpole.dev

// Package flagpole is the internal version of the flagpole.dev API. Every
// served version converts through it; the registry and validation work on
// these types. The engine (pkg/evaluation) and its clients work on v1beta1,
// the version the informers and clients hold; it reads only the shared
// constants here (field names, flag types, limits).
package flagpole
