package integration

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestKubectlSmoke drives the built flagpole-apiserver binary with the
// pinned kubectl and the kubeconfig the server writes, as a new user would.
func TestKubectlSmoke(t *testing.T) {
	t.Parallel()
	kubectl := pinnedKubectl(t)
	root := repoRoot(t)
	server := startBinary(t, buildServer(t))
	log := server.Log
	tmp := t.TempDir()

	run := func(args ...string) (string, error) {
		args = append([]string{"--kubeconfig", server.Kubeconfig, "--cache-dir", filepath.Join(tmp, "kubectl-cache")}, args...)
		cmd := exec.Command(kubectl, args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, tail(log.String()))
		}
		return out
	}

	if out := must("get", "--raw", "/readyz"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("kubectl get --raw /readyz: %q", out)
	}
	if !strings.Contains(log.String(), "kubectl --kubeconfig "+server.Kubeconfig) {
		t.Errorf("the log does not tell the user which kubectl command to try:\n%s", tail(log.String()))
	}

	out := must("apply", "-f", "artifacts/examples/")
	for _, want := range []string{"flag.flagpole.dev/new-checkout created", "flag.flagpole.dev/banner-color created", "flag.flagpole.dev/new-search created", "segment.flagpole.dev/employees created"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}

	out = must("get", "flags")
	if !regexp.MustCompile(`(?m)^NAME\s+TYPE\s+STATE\s+DEFAULT\s+RULES\s+LAST-EVALUATED\s+STALE\s+AGE$`).MatchString(out) {
		t.Errorf("printer columns missing:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^new-checkout\s+Boolean\s+Enabled\s+off\s+2\s+never\s+<none>\s+\S+$`).MatchString(out) {
		t.Errorf("new-checkout row wrong:\n%s", out)
	}
	out = must("get", "fl,seg")
	if !strings.Contains(out, "flag.flagpole.dev/banner-color") || !strings.Contains(out, "segment.flagpole.dev/employees") {
		t.Errorf("short names:\n%s", out)
	}
	if out = must("get", "flagpole", "-o", "name"); strings.Count(out, "\n") != 4 {
		t.Errorf("category flagpole lists:\n%s", out)
	}

	out = must("explain", "flag.spec")
	for _, want := range []string{"variants", "defaultVariant", "rules", "Disabled is the kill switch"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain flag.spec lacks %q:\n%s", want, out)
		}
	}

	must("patch", "flag", "new-checkout", "--type=merge", "-p", `{"spec":{"state":"Disabled"}}`)
	if out = must("get", "flag", "new-checkout", "-o", "jsonpath={.spec.state} {.metadata.generation}"); out != "Disabled 2" {
		t.Errorf("after patch: %q, want \"Disabled 2\"", out)
	}

	out, err := run("patch", "flag", "new-checkout", "--type=merge", "-p", `{"spec":{"defaultVariant":"maybe"}}`)
	if err == nil || !strings.Contains(out, "spec.defaultVariant") {
		t.Errorf("invalid patch: %v\n%s", err, out)
	}

	must("delete", "-f", "artifacts/examples/")
	if out = must("get", "flags"); !strings.Contains(out, "No resources found") {
		t.Errorf("after delete:\n%s", out)
	}

	// SIGTERM drains and stops etcd last; the process exits cleanly.
	if err := server.stop(t); err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, tail(log.String()))
	}
	if !strings.Contains(log.String(), "Embedded etcd stopped") {
		t.Errorf("embedded etcd was not closed:\n%s", tail(log.String()))
	}
}
