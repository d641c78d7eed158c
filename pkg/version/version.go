// Package version is Flagpole's own version: what /version serves and
// `flagpole-apiserver --version` prints. It is not the version of the
// Kubernetes libraries Flagpole is built on (the kube component, whose
// emulation version /version reports separately).
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"

	utilversion "k8s.io/apimachinery/pkg/util/version"
	apimachineryversion "k8s.io/apimachinery/pkg/version"
)

// Base is the release this source tree is heading for; bump it after each
// release. An unstamped build reports Base-dev, with the commit when the Go
// toolchain recorded one.
const Base = "v0.1.0"

// Set by release builds, for example
//
//	-ldflags "-X github.com/flagpole-dev/flagpole/pkg/version.gitVersion=v0.1.0
//	          -X github.com/flagpole-dev/flagpole/pkg/version.gitCommit=$(git rev-parse HEAD)"
//
// Stamp these, never k8s.io/component-base/version: the API machinery derives
// its own (kube) version from that one.
var (
	gitVersion   string
	gitCommit    string
	gitTreeState string // "clean" or "dirty"
	buildDate    string // RFC 3339
)

// Get returns Flagpole's version. GitVersion always parses as a semantic
// version, so clients such as `kubectl version` can compare it.
var Get = sync.OnceValue(func() apimachineryversion.Info {
	return get(gitVersion, gitCommit, gitTreeState, buildDate, readBuildInfo())
})

func readBuildInfo() *debug.BuildInfo {
	info, _ := debug.ReadBuildInfo()
	return info
}

// get fills what was not stamped from the build info the Go toolchain
// embeds: the module version of a `go install …@vX.Y.Z` build, the VCS
// revision and whether the tree was modified.
func get(stampedVersion, commit, treeState, date string, build *debug.BuildInfo) apimachineryversion.Info {
	v := stampedVersion
	if build != nil {
		for _, s := range build.Settings {
			switch {
			case s.Key == "vcs.revision" && commit == "":
				commit = s.Value
			case s.Key == "vcs.modified" && treeState == "":
				treeState = map[string]string{"true": "dirty", "false": "clean"}[s.Value]
			}
		}
		// A module version without pre-release is a release; untagged trees
		// get pseudo-versions (v0.0.0-<time>-<commit>), which say less than Base.
		if mv, err := utilversion.ParseSemantic(build.Main.Version); v == "" && err == nil && mv.PreRelease() == "" {
			v = build.Main.Version
		}
	}
	parsed, err := utilversion.ParseSemantic(v)
	if err != nil {
		v = Base + "-dev"
		if len(commit) >= 12 {
			v += "+" + commit[:12]
			if treeState == "dirty" {
				v += ".dirty"
			}
		}
		parsed = utilversion.MustParseSemantic(v)
	}
	return apimachineryversion.Info{
		Major:        fmt.Sprint(parsed.Major()),
		Minor:        fmt.Sprint(parsed.Minor()),
		GitVersion:   v,
		GitCommit:    commit,
		GitTreeState: treeState,
		BuildDate:    date,
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
}
