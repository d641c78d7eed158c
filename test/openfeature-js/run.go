// Package openfeaturejs runs the unmodified OpenFeature JavaScript SDKs and
// OFREP providers in this directory (installed by npm from the committed
// package-lock.json) against a running Flagpole, for the integration and e2e
// tests.
package openfeaturejs

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/flagpole-dev/flagpole/test/tools"
)

// Env is what the JavaScript tests read (see env.mjs).
type Env struct {
	BaseURL        string   // https://<flagpole>/namespaces/<namespace>
	CAFiles        []string // CAs of Flagpole's serving certificate (and APIServer's)
	AppToken       string   // may evaluate in the namespace
	DeniedToken    string   // authenticated, may not evaluate
	NoTokenStatus  int      // what a request without credentials gets (401, or 403 when delegated)
	ExpectedSplits string   // JSON {"<targetingKey>": "<variant>"} from the Go engine
	APIServer      string   // where the web test patches flags (admin certificate)
	AdminCert      string
	AdminKey       string
	// UsageFlag and UsageEvaluations are what usage.test.mjs evaluates:
	// the flag, and how many times for each of its two contexts.
	UsageFlag        string
	UsageEvaluations int
}

// dir is this package's directory, where package.json lives.
func dir(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate test/openfeature-js")
	}
	return filepath.Dir(file)
}

// Run runs the named test files (server.test.mjs, web.test.mjs, usage.test.mjs) with node's
// test runner and fails t with their output if any test fails.
func Run(t testing.TB, env Env, files ...string) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: the OpenFeature JavaScript SDK tests need Node.js 20 or later (docs/testing.md)")
	}
	d := dir(t)
	tools.NPMCI(t, d)
	var bundle []byte
	for _, f := range env.CAFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(append(bundle, pem...), '\n')
	}
	caFile := filepath.Join(t.TempDir(), "ca-bundle.crt")
	if err := os.WriteFile(caFile, bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--test", "--test-reporter=spec", "--test-concurrency=1"}, files...)
	cmd := exec.Command("node", args...)
	cmd.Dir = d
	cmd.Env = append(os.Environ(),
		"NODE_EXTRA_CA_CERTS="+caFile,
		"FLAGPOLE_OFREP_BASE_URL="+env.BaseURL,
		"FLAGPOLE_APP_TOKEN="+env.AppToken,
		"FLAGPOLE_DENIED_TOKEN="+env.DeniedToken,
		"FLAGPOLE_NO_TOKEN_STATUS="+strconv.Itoa(env.NoTokenStatus),
		"FLAGPOLE_EXPECTED_SPLITS="+env.ExpectedSplits,
		"FLAGPOLE_API_SERVER="+env.APIServer,
		"FLAGPOLE_ADMIN_CERT="+env.AdminCert,
		"FLAGPOLE_ADMIN_KEY="+env.AdminKey,
		"FLAGPOLE_USAGE_FLAG="+env.UsageFlag,
		"FLAGPOLE_USAGE_EVALUATIONS="+strconv.Itoa(env.UsageEvaluations),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("node %s:\n%s", strings.Join(files, " "), out)
}
