package integration

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// With protobuf storage the pinned kubectl still reads flags as YAML, and
// the rewrite docs/operations.md gives for objects stored as JSON before the
// upgrade (`kubectl get -A -o json | kubectl replace -f -`) works: afterwards
// every key holds protobuf, and the objects are unchanged.
func TestProtobufKubectlReadsAndRewritesJSONStoredFlags(t *testing.T) {
	t.Parallel()
	kubectl := pinnedKubectl(t)
	dir := shortTempDir(t)
	const ns = "kubectl-proto"

	old := startServerIn(t, dir, "--storage-media-type", "application/json")
	for _, name := range []string{"a", "b"} {
		f := boolFlag(name)
		f.Spec.Type = v1beta1.FlagTypeObject
		f.Spec.Variants[0].Value = raw(map[string]any{"colour": "teal", "sizes": []any{1, 2}})
		f.Spec.Variants[1].Value = raw(map[string]any{})
		createFlag(t, old.Client, ns, f)
	}
	old.Stop(t)

	s := startServerIn(t, dir)
	run := func(stdin []byte, args ...string) string {
		t.Helper()
		args = append([]string{"--kubeconfig", standalone.Layout{DataDir: dir}.Kubeconfig(), "--cache-dir", filepath.Join(dir, "kubectl-cache")}, args...)
		cmd := exec.Command(kubectl, args...)
		cmd.Stdin = bytes.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return string(out)
	}

	out := run(nil, "get", "flags", "-n", ns, "-o", "yaml")
	for _, want := range []string{"kind: List", "name: a", "name: b", "colour: teal", "- 1", "type: Object"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get flags -o yaml lacks %q:\n%s", want, out)
		}
	}
	cli := etcdSocketClient(t, dir)
	before, err := s.Client.FlagpoleV1beta1().Flags(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range before.Items {
		if v, key := storedValue(t, cli, "flags", ns, f.Name); v[0] != '{' {
			t.Fatalf("%s is not JSON before the rewrite: %q", key, v[:min(len(v), 40)])
		}
	}

	// As docs/operations.md says, one object at a time: kubectl replace of a
	// List needs the core v1 API, which a standalone Flagpole does not serve.
	rows := strings.Fields(run(nil, "get", "flags", "-A", "--no-headers", "-o", "custom-columns=NS:.metadata.namespace,NAME:.metadata.name"))
	if len(rows) != 4 {
		t.Fatalf("custom columns: %q", rows)
	}
	// a: kubectl replace of the object as read.
	out = run([]byte(run(nil, "get", "flag", "-n", rows[0], rows[1], "-o", "json")), "replace", "-f", "-")
	if !strings.Contains(out, "flag.flagpole.dev/a replaced") {
		t.Errorf("kubectl replace: %s", out)
	}
	// b: an empty merge patch.
	out = run(nil, "patch", "flag", "-n", rows[2], rows[3], "--type=merge", "-p", "{}")
	if !strings.Contains(out, "flag.flagpole.dev/b patched") {
		t.Errorf("kubectl patch: %s", out)
	}
	for _, f := range before.Items {
		if v, key := storedValue(t, cli, "flags", ns, f.Name); !bytes.HasPrefix(v, protobufMagic) {
			t.Errorf("%s after kubectl replace: %q", key, v[:min(len(v), 40)])
		}
		got, err := s.Client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), f.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Generation != f.Generation || string(got.Spec.Variants[0].Value.Raw) != string(f.Spec.Variants[0].Value.Raw) || got.Status.ObservedGeneration != f.Status.ObservedGeneration {
			t.Errorf("%s changed: generation %d → %d, value %s → %s", f.Name, f.Generation, got.Generation, f.Spec.Variants[0].Value.Raw, got.Spec.Variants[0].Value.Raw)
		}
	}
}
