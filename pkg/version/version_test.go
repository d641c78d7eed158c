package version

import (
	"runtime/debug"
	"strconv"
	"testing"

	utilversion "k8s.io/apimachinery/pkg/util/version"
)

func TestGet(t *testing.T) {
	rev := "0123456789abcdef0123456789abcdef01234567"
	vcs := func(modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	for _, tc := range []struct {
		name                   string
		stamped                string
		build                  *debug.BuildInfo
		wantVersion, wantState string
		wantCommit             string
	}{
		{"no build info (go test)", "", nil, Base + "-dev", "", ""},
		{"go build in a clean checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20260101120000-0123456789ab"}, Settings: vcs("false")},
			Base + "-dev+0123456789ab", "clean", rev},
		{"go build in a modified checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs("true")},
			Base + "-dev+0123456789ab.dirty", "dirty", rev},
		{"go install @v0.3.1", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}}, "v0.3.1", "", ""},
		{"stamped", "v0.2.0", &debug.BuildInfo{Main: debug.Module{Version: "v0.3.1"}, Settings: vcs("false")}, "v0.2.0", "clean", rev},
		{"stamped garbage", "master", nil, Base + "-dev", "", ""},
	} {
		got := get(tc.stamped, "", "", "", tc.build)
		if got.GitVersion != tc.wantVersion || got.GitTreeState != tc.wantState || got.GitCommit != tc.wantCommit {
			t.Errorf("%s: %s %q %q, want %s %q %q", tc.name, got.GitVersion, got.GitTreeState, got.GitCommit, tc.wantVersion, tc.wantState, tc.wantCommit)
		}
		v, err := utilversion.ParseSemantic(got.GitVersion)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got.Major != strconv.Itoa(int(v.Major())) || got.Minor != strconv.Itoa(int(v.Minor())) {
			t.Errorf("%s: major.minor %s.%s, want those of %s", tc.name, got.Major, got.Minor, got.GitVersion)
		}
	}
	if _, err := utilversion.ParseSemantic(Get().GitVersion); err != nil {
		t.Errorf("Get(): %v", err)
	}
}
