// Package tools finds the pinned binaries hack/build-tools.sh builds
// (kube-apiserver, kube-controller-manager, kubectl and etcd, from the pins
// in hack/tools/go.mod) for the tests that drive them.
package tools

import (
	"os"
	"path/filepath"
	"runtime"
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
	if Required() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
