package cmd

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
	basecompatibility "k8s.io/component-base/compatibility"
	baseversion "k8s.io/component-base/version"

	"github.com/flagpole-dev/flagpole/pkg/version"
)

// kubeEffectiveVersion is the version of the Kubernetes API machinery Flagpole
// is built on: the release its k8s.io modules belong to, with the usual three
// emulatable minor versions below it. It is pinned rather than derived from a
// stamped k8s.io/component-base git version, as upstream's default is, so
// that stamping a build can never turn it into Flagpole's own v0.x and fail
// emulation-version validation.
func kubeEffectiveVersion() basecompatibility.MutableEffectiveVersion {
	binary := utilversion.MustParse(baseversion.DefaultKubeBinaryVersion)
	floor := binary.SubtractMinor(3)
	return basecompatibility.NewEffectiveVersion(binary, false, floor, floor)
}

// servedVersion is the kube component's effective version — it still decides
// API emulation and feature gates — except that /version answers with
// Flagpole's own version (and the kube emulation and compatibility versions).
type servedVersion struct {
	basecompatibility.EffectiveVersion
}

func (v servedVersion) Info() *apimachineryversion.Info {
	info := version.Get()
	if kube := v.EffectiveVersion.Info(); kube != nil {
		info.EmulationMajor, info.EmulationMinor = kube.EmulationMajor, kube.EmulationMinor
		info.MinCompatibilityMajor, info.MinCompatibilityMinor = kube.MinCompatibilityMajor, kube.MinCompatibilityMinor
	}
	return &info
}

// versionFlag is --version: "true" prints Flagpole's version, "raw" every
// field, as upstream's --version does (whose output would be the kube one).
type versionFlag string

func (f *versionFlag) String() string { return string(*f) }
func (f *versionFlag) Type() string   { return "version" }
func (f *versionFlag) Set(s string) error {
	switch s {
	case "true", "false", "raw":
		*f = versionFlag(s)
		return nil
	}
	return fmt.Errorf("--version: %q is not true, false or raw", s)
}

func addVersionFlag(fs *pflag.FlagSet, f *versionFlag) {
	*f = "false"
	fs.Var(f, "version", "--version, --version=raw prints version information and quits.")
	fs.Lookup("version").NoOptDefVal = "true"
}

// print writes the version if it was asked for and reports whether it was.
func (f versionFlag) print(w io.Writer) (bool, error) {
	info := version.Get()
	switch f {
	case "true":
		_, err := fmt.Fprintf(w, "flagpole-apiserver %s\n", info.GitVersion)
		return true, err
	case "raw":
		_, err := fmt.Fprintf(w, "%#v\n", info)
		return true, err
	}
	return false, nil
}
