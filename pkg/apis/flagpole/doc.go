// +k8s:deepcopy-gen=package
// +groupName=flagpole.dev

// Package flagpole is the internal version of the flagpole.dev API. Every
// served version converts through it; registry, validation and the engine
// work on these types only.
package flagpole
