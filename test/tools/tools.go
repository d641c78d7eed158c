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
	"runtime/debug"
	"strings"
	"sync"
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

// RaceEnabled reports whether the running test binary was built with
// -race: the binaries a test builds and starts are then built with it too,
// so that a data race in them fails the test that reads their output.
func RaceEnabled() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// ShortLivedRaceEnv is the environment for a short-lived binary GoBuild
// built with -race: the race runtime otherwise waits a second at exit (for
// other goroutines' reports), a second per command a test runs.
func ShortLivedRaceEnv() []string {
	env := os.Environ()
	if RaceEnabled() {
		env = append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	return env
}

// GoBuild builds the main package pkg (./cmd/...) of the repository at root
// into dir, with -race when the test binary has it, and returns the binary.
func GoBuild(t testing.TB, root, pkg, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if RaceEnabled() {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, pkg)...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

var npmOnce sync.Map // directory → *sync.Once

// NPMCI runs `npm ci` in dir (a directory with a committed
// package-lock.json) once per process, when its node_modules is missing or
// older than the lockfile, so that a fresh clone's `go test` installs what
// the lockfile pins.
func NPMCI(t testing.TB, dir string) {
	t.Helper()
	once, _ := npmOnce.LoadOrStore(dir, &sync.Once{})
	once.(*sync.Once).Do(func() {
		lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
		if err != nil {
			t.Fatal(err)
		}
		if installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && !installed.ModTime().Before(lock.ModTime()) {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	})
}
