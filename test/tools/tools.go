// Package tools finds the pinned binaries hack/build-tools.sh builds
// (kube-apiserver, kube-controller-manager, kubectl and etcd, from the pins
// in hack/tools/go.mod) for the tests that drive them, and decides for
// those and for the tests that need root whether a missing one skips or
// fails the test.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// EnvBinDir names the directory hack/test.sh (the README's test command and
// CI) has built the tools into. When it is set the tools are required: a
// test that needs a missing one fails. Without it — a plain `go test ./...`
// while editing — such a test skips and says how to build them.
const EnvBinDir = "FLAGPOLE_TOOLS_BIN"

// Required reports whether the tools must be there (EnvBinDir is set).
func Required() bool {
	_, set := os.LookupEnv(EnvBinDir)
	return set
}

// Dir is where the tools are: EnvBinDir, or _output/tools/bin in the
// repository.
func Dir() string {
	if dir, set := os.LookupEnv(EnvBinDir); set {
		return dir
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "_output", "tools", "bin")
}

// Bin returns the path of the pinned tool name. When it is missing the test
// fails if the tools are required, and skips otherwise.
func Bin(t testing.TB, name string) string {
	t.Helper()
	bin := filepath.Join(Dir(), name)
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "the pinned %s is not built (%v): run hack/build-tools.sh, or hack/test.sh which builds it first", name, err)
	}
	return bin
}

// Missing ends a test that cannot run without a pinned tool: it fails when
// the tools are required (EnvBinDir set, as in CI), and skips otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	end(t, Required(), format, args...)
}

// EnvPrivileged, when set (hack/test.sh sets it), makes a test that needs
// root — to mount a file system of its own — fail instead of skip when it
// does not run as root or lacks a command it needs.
const EnvPrivileged = "FLAGPOLE_REQUIRE_PRIVILEGED_TESTS"

// PrivilegedRequired reports whether EnvPrivileged is set.
func PrivilegedRequired() bool {
	_, set := os.LookupEnv(EnvPrivileged)
	return set
}

// RequirePrivileged ends the test unless it runs as root and every command
// is on PATH: it fails when PrivilegedRequired, and skips otherwise, saying
// what is missing either way.
func RequirePrivileged(t testing.TB, commands ...string) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		end(t, PrivilegedRequired(), "this test needs %s; under hack/test.sh (%s set) it must run", strings.Join(missing, ", "), EnvPrivileged)
	}
}

// end fails the test when required, and skips it otherwise.
func end(t testing.TB, required bool, format string, args ...any) {
	t.Helper()
	if required {
		t.Fatal(fmt.Sprintf(format, args...))
		return
	}
	t.Skip(fmt.Sprintf(format, args...))
}
