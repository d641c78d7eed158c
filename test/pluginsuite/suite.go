// Package pluginsuite runs every kubectl-flagpole command, as a user runs
// it (the built binary, a kubeconfig, exit codes), against a real Flagpole:
// the standalone server (test/integration) and Flagpole behind
// kube-apiserver (test/e2e) run the same suite, each with its own users.
package pluginsuite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/test/tools"
)

// Env is where the suite runs.
type Env struct {
	// Plugin is the kubectl-flagpole binary (Build).
	Plugin string
	// Admin is a kubeconfig that may do everything.
	Admin string
	// Denied is a kubeconfig of a user who may not change flags; with
	// DeniedReads the user may read them (a reader Role), without, not even
	// that (an application that may only evaluate).
	Denied      string
	DeniedReads bool
	// Namespaces are three namespaces the suite may fill: its flags, and
	// two for imports (fractional v2 and v1).
	Namespaces [3]string
	// Client is the admin's clientset, to set up and check.
	Client clientset.Interface
	// RepoRoot finds pkg/flagd's test data.
	RepoRoot string
	// ClusterFeatureFlags is a namespace holding OpenFeature Operator
	// FeatureFlags (the cluster serves their CRD); empty where the cluster
	// has none (standalone Flagpole serves only flagpole.dev).
	ClusterFeatureFlags string
}

// Build builds kubectl-flagpole (with -race when the test has it).
func Build(t testing.TB, root string) string {
	t.Helper()
	return tools.GoBuild(t, root, "./cmd/kubectl-flagpole", t.TempDir())
}

// Result is one run of the plugin.
type Result struct {
	Stdout, Stderr string
	Code           exit.Code
}

// Plugin runs kubectl-flagpole as one user.
type Plugin struct {
	Bin, Kubeconfig, Home string
	Namespace             string
}

// Run runs the plugin with args (and stdin, if given) and returns what it printed and its exit code.
func (p Plugin) Run(t testing.TB, stdin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"--kubeconfig", p.Kubeconfig, "--cache-dir", filepath.Join(p.Home, "cache")}, args...)
	if p.Namespace != "" && !hasNamespace(args) {
		full = append(full, "-n", p.Namespace)
	}
	cmd := exec.CommandContext(ctx, p.Bin, full...)
	cmd.Env = append(tools.ShortLivedRaceEnv(), "HOME="+p.Home, "KUBECONFIG=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := Result{Stdout: out.String(), Stderr: errOut.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.Code = exit.Code(exitErr.ExitCode())
	case err != nil:
		t.Fatalf("kubectl-flagpole %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(res.Stderr, "DATA RACE") || strings.Contains(res.Stderr, "panic:") {
		t.Fatalf("kubectl-flagpole %s:\n%s", strings.Join(args, " "), res.Stderr)
	}
	return res
}

func hasNamespace(args []string) bool {
	for _, a := range args {
		if a == "-n" || a == "-A" || strings.HasPrefix(a, "--namespace") || a == "--all-namespaces" {
			return true
		}
	}
	return false
}

// Must runs the plugin and wants exit 0.
func (p Plugin) Must(t testing.TB, args ...string) string {
	t.Helper()
	res := p.Run(t, "", args...)
	if res.Code != exit.OK {
		t.Fatalf("kubectl-flagpole %s: exit %d\n%s%s", strings.Join(args, " "), res.Code, res.Stdout, res.Stderr)
	}
	return res.Stdout
}

// Fails runs the plugin and wants exit code, with an error containing every
// one of wants on stderr; it returns the result.
func (p Plugin) Fails(t testing.TB, code exit.Code, args []string, wants ...string) Result {
	t.Helper()
	res := p.Run(t, "", args...)
	if res.Code != code {
		t.Errorf("kubectl-flagpole %s: exit %d, want %d\n%s%s", strings.Join(args, " "), res.Code, code, res.Stdout, res.Stderr)
	}
	if !strings.HasPrefix(res.Stderr, "error: ") {
		t.Errorf("kubectl-flagpole %s: stderr does not start with \"error: \":\n%s", strings.Join(args, " "), res.Stderr)
	}
	for _, w := range wants {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("kubectl-flagpole %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, res.Stderr)
		}
	}
	return res
}

func raw(v any) v1beta1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return v1beta1.JSON{Raw: b}
}

// Fixtures creates the flags the suite (and the console's browser test)
// work on in namespace: checkout (a segment rule, a when rule and a
// rollout), banner-color (no rules) and the segment employees, and waits
// until the server has derived checkout's status.
func Fixtures(t testing.TB, client clientset.Interface, namespace string) {
	t.Helper()
	ctx := context.Background()
	fp := client.FlagpoleV1beta1()
	if _, err := fp.Segments(namespace).Create(ctx, employees(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*v1beta1.Flag{checkoutFlag(), colorFlag()} {
		if _, err := fp.Flags(namespace).Create(ctx, f, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFlag(t, client, namespace, "checkout", "status written", func(f *v1beta1.Flag) bool { return len(f.Status.Conditions) == 2 })
}

// checkoutFlag is the suite's main flag: a segment rule, a when rule and a
// rollout.
func checkoutFlag() *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout"},
		Spec: v1beta1.FlagSpec{
			Description:    "New checkout flow",
			Type:           v1beta1.FlagTypeBoolean,
			Variants:       []v1beta1.Variant{{Name: "on", Value: raw(true)}, {Name: "off", Value: raw(false)}},
			DefaultVariant: "off",
			Owner:          "team-checkout",
			Rules: []v1beta1.Rule{
				{Name: "staff", Segments: []string{"employees"}, Variant: "on"},
				{Name: "vip", When: `context.plan == "vip"`, Variant: "on"},
				{Name: "gradual", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 10}, {Variant: "off", Weight: 90}}}},
			},
		},
	}
}

func employees() *v1beta1.Segment {
	return &v1beta1.Segment{
		ObjectMeta: metav1.ObjectMeta{Name: "employees"},
		Spec:       v1beta1.SegmentSpec{When: `context.email.endsWith("@example.com")`, Exclude: []string{"intern-1"}},
	}
}

func colorFlag() *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "banner-color"},
		Spec: v1beta1.FlagSpec{
			Type:           v1beta1.FlagTypeString,
			Variants:       []v1beta1.Variant{{Name: "red", Value: raw("#f00")}, {Name: "blue", Value: raw("#00f")}},
			DefaultVariant: "red",
		},
	}
}

// waitFlag polls the flag until done holds.
func waitFlag(t testing.TB, client clientset.Interface, namespace, name, what string, done func(*v1beta1.Flag) bool) *v1beta1.Flag {
	t.Helper()
	var last *v1beta1.Flag
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		f, err := client.FlagpoleV1beta1().Flags(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = f
		return done(f), nil
	})
	if err != nil {
		t.Fatalf("flag %s/%s: %s: %v (last %+v)", namespace, name, what, err, last)
	}
	return last
}

// waitAnswer polls the plugin's evaluate until its output contains want:
// evaluation answers from the server's watch-fed memory, a moment after a
// write.
func waitAnswer(t testing.TB, p Plugin, want string, args ...string) string {
	t.Helper()
	var out string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		res := p.Run(t, "", args...)
		out = res.Stdout + res.Stderr
		return res.Code == exit.OK && strings.Contains(res.Stdout, want), nil
	})
	if err != nil {
		t.Fatalf("kubectl-flagpole %s never printed %q; last:\n%s", strings.Join(args, " "), want, out)
	}
	return out
}
