//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
)

func mustKubectl(t *testing.T, user string, args ...string) string {
	t.Helper()
	out, err := e2e.Kubectl(user, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestKubectl(t *testing.T) {
	ns := "kubectl"
	mustKubectl(t, userAdmin, "create", "namespace", ns)

	out := mustKubectl(t, userAdmin, "api-resources", "--api-group=flagpole.dev")
	for _, re := range []string{`(?m)^flags\s+fl\s+flagpole.dev/v1beta1\s+true\s+Flag$`, `(?m)^segments\s+seg\s+flagpole.dev/v1beta1\s+true\s+Segment$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("api-resources lacks %s:\n%s", re, out)
		}
	}

	out = mustKubectl(t, userAdmin, "apply", "-n", ns, "-f", "artifacts/examples/")
	if !strings.Contains(out, "flag.flagpole.dev/new-checkout created") {
		t.Errorf("apply:\n%s", out)
	}

	out = mustKubectl(t, userAdmin, "get", "flags", "-n", ns)
	if !regexp.MustCompile(`(?m)^NAME\s+TYPE\s+STATE\s+DEFAULT\s+RULES\s+LAST-EVALUATED\s+STALE\s+AGE$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^new-checkout\s+Boolean\s+Enabled\s+off\s+2\s+never\s+<none>\s+\S+$`).MatchString(out) {
		t.Errorf("get flags:\n%s", out)
	}
	if out = mustKubectl(t, userAdmin, "get", "flag", "new-checkout", "-n", ns, "-o", "yaml"); !strings.Contains(out, "kind: Flag") || !strings.Contains(out, "defaultVariant: \"off\"") {
		t.Errorf("-o yaml:\n%s", out)
	}
	if out = mustKubectl(t, userAdmin, "get", "flags", "-n", ns, "--field-selector", "spec.type=String", "-o", "name"); strings.TrimSpace(out) != "flag.flagpole.dev/banner-color" {
		t.Errorf("field selector:\n%s", out)
	}

	if out = mustKubectl(t, userAdmin, "explain", "flag.spec.rules"); !strings.Contains(out, "rollout") || !strings.Contains(out, "first that matches") {
		t.Errorf("explain flag.spec.rules:\n%s", out)
	}
	if out = mustKubectl(t, userAdmin, "describe", "flag", "new-checkout", "-n", ns); !strings.Contains(out, "Default Variant:") || !strings.Contains(out, "team-checkout") {
		t.Errorf("describe:\n%s", out)
	}

	// diff: nothing to show for the applied file, a diff for a changed one.
	if out, err := e2e.Kubectl(userAdmin, "diff", "-n", ns, "-f", "artifacts/examples/flag-banner-color.yaml"); err != nil {
		t.Errorf("diff of the applied file: %v\n%s", err, out)
	}
	changed := writeManifest(t, "changed.yaml", strings.Replace(readFile(t, "artifacts/examples/flag-banner-color.yaml"), "team-growth", "team-brand", 1))
	out, err := e2e.Kubectl(userAdmin, "diff", "-n", ns, "-f", changed)
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(out, "+  owner: team-brand") {
		t.Errorf("diff of a changed file: %v\n%s", err, out)
	}

	// Server-side apply by two field managers, with a conflict.
	ssa := func(manager, description string, extra ...string) (string, error) {
		m := writeManifest(t, manager+".yaml", `apiVersion: flagpole.dev/v1beta1
kind: Flag
metadata:
  name: ssa
spec:
  type: Boolean
  description: `+description+`
  variants:
  - {name: "on", value: true}
  - {name: "off", value: false}
`)
		return e2e.Kubectl(userAdmin, append([]string{"apply", "--server-side", "--field-manager", manager, "-n", ns, "-f", m}, extra...)...)
	}
	if out, err := ssa("platform", "by platform"); err != nil {
		t.Fatalf("first apply: %v\n%s", err, out)
	}
	out, err = ssa("oncall", "by oncall")
	if err == nil || !strings.Contains(out, "conflict") || !strings.Contains(out, `"platform"`) {
		t.Errorf("second manager changing an owned field: %v\n%s", err, out)
	}
	if out, err := ssa("oncall", "by oncall", "--force-conflicts"); err != nil {
		t.Errorf("forced apply: %v\n%s", err, out)
	}
	if out = mustKubectl(t, userAdmin, "get", "flag", "ssa", "-n", ns, "-o", "jsonpath={.spec.description}"); out != "by oncall" {
		t.Errorf("after forced apply: %q", out)
	}

	// --dry-run=server stores nothing.
	dry := writeManifest(t, "dry.yaml", strings.Replace(readFile(t, "artifacts/examples/flag-banner-color.yaml"), "name: banner-color", "name: dry-run-only", 1))
	if out = mustKubectl(t, userAdmin, "create", "-n", ns, "--dry-run=server", "-f", dry); !strings.Contains(out, "(server dry run)") {
		t.Errorf("dry run:\n%s", out)
	}
	if out, err := e2e.Kubectl(userAdmin, "get", "flag", "dry-run-only", "-n", ns); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("dry-run object exists: %v\n%s", err, out)
	}

	// The kill switch: a patch seen by a running `kubectl get -w`.
	watcher := exec.Command(filepath.Join(e2e.binDir, "kubectl"), "--kubeconfig", e2e.Kubeconfig(userAdmin),
		"get", "flag", "new-checkout", "-n", ns, "-w", "-o", `jsonpath={.spec.state}{"\n"}`)
	stdout, err := watcher.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watcher.Process.Kill(); _ = watcher.Wait() }()
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	expectLine(t, lines, "Enabled")
	mustKubectl(t, userAdmin, "patch", "flag", "new-checkout", "-n", ns, "--type=merge", "-p", `{"spec":{"state":"Disabled"}}`)
	expectLine(t, lines, "Disabled")

	out = mustKubectl(t, userAdmin, "delete", "-n", ns, "-f", "artifacts/examples/")
	if !strings.Contains(out, `flag.flagpole.dev "new-checkout" deleted`) {
		t.Errorf("delete:\n%s", out)
	}
	if out = mustKubectl(t, userAdmin, "get", "segments", "-n", ns); !strings.Contains(out, "No resources found") {
		t.Errorf("after delete:\n%s", out)
	}
}

func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("kubectl get -w ended before printing %q", want)
			}
			if strings.TrimSpace(l) == want {
				return
			}
		case <-timeout:
			t.Fatalf("kubectl get -w did not print %q within 30s", want)
		}
	}
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeManifest(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClientset uses the generated typed client through kube-apiserver.
func TestClientset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	flags := client.FlagpoleV1beta1().Flags(e2eNamespace)

	w, err := flags.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=typed"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "typed"},
		Spec: v1beta1.FlagSpec{
			Type:           v1beta1.FlagTypeString,
			Variants:       []v1beta1.Variant{{Name: "blue", Value: v1beta1.JSON{Raw: []byte(`"#00f"`)}}, {Name: "red", Value: v1beta1.JSON{Raw: []byte(`"#f00"`)}}},
			DefaultVariant: "blue",
		},
	}
	if _, err := flags.Create(ctx, f, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The in-server status controller may write status concurrently: retry on conflict.
	var updated *v1beta1.Flag
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := flags.Get(ctx, "typed", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.DefaultVariant = "red"
		updated, err = flags.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if updated.Generation != 2 {
		t.Errorf("generation = %d", updated.Generation)
	}
	list, err := flags.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) == 0 {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := flags.Delete(ctx, "typed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := flags.Get(ctx, "typed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v", err)
	}
	// ADDED first, DELETED last, and the update among the MODIFIED between.
	var seen []watch.EventType
	sawRed := false
	for len(seen) == 0 || seen[len(seen)-1] != watch.Deleted {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after events %v, before DELETED", seen)
			}
			seen = append(seen, ev.Type)
			if f, ok := ev.Object.(*v1beta1.Flag); ok && ev.Type == watch.Modified && f.Spec.DefaultVariant == "red" {
				sawRed = true
			}
		case <-ctx.Done():
			t.Fatalf("watch events so far: %v", seen)
		}
	}
	if seen[0] != watch.Added || !sawRed {
		t.Errorf("watch events %v (update seen: %v)", seen, sawRed)
	}
}
