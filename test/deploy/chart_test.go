package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/flagpole-dev/flagpole/test/tools"
)

// chartDir is the Helm chart, relative to the repository.
const chartDir = "artifacts/chart/flagpole"

// chartCases: helm template with these values renders the same objects as
// the kustomization beside it.
var chartCases = []struct {
	name string
	set  []string
	dir  string // under artifacts/deploy
}{
	{"defaults", nil, ""},
	{"three etcd members", []string{"etcd.members=3"}, "etcd-ha"},
	{"script", []string{"certificates.mode=script"}, "certificate-files"},
	{"cert-manager", []string{"certificates.mode=cert-manager"}, "cert-manager"},
	{"cert-manager and three etcd members", []string{"certificates.mode=cert-manager", "etcd.members=3"}, "cert-manager-etcd-ha"},
}

// tool finds a binary that hack/build-tools.sh builds: the path in the
// environment variable if set (then it must exist), else _output/tools/bin,
// else the test skips.
func run(t *testing.T, dir, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func TestChartRendersTheKustomizations(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	helm := tools.Bin(t, "helm")
	kubectl := tools.Bin(t, "kubectl")
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"template", "flagpole", chartDir}
			lint := []string{"lint", "--strict", chartDir}
			for _, s := range c.set {
				args = append(args, "--set", s)
				lint = append(lint, "--set", s)
			}
			run(t, root, helm, lint...)
			rendered := run(t, root, helm, args...)
			checkInvariants(t, string(rendered))
			want := objects(t, run(t, root, kubectl, "kustomize", filepath.Join("artifacts", "deploy", c.dir)))
			got := objects(t, rendered)
			compareObjects(t, want, got, "kubectl kustomize artifacts/deploy/"+c.dir, "helm template "+strings.Join(c.set, " "))
		})
	}
}

// The values a user sets reach the objects.
func TestChartValues(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	helm := tools.Bin(t, "helm")
	got := objects(t, run(t, root, helm, "template", "flagpole", chartDir,
		"--set", "replicas=3",
		"--set", "image.repository=registry.example.com/flagpole/flagpole-apiserver",
		"--set", "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"--set", "resources.limits.memory=2Gi",
		"--set", "etcd.storage=10Gi", "--set", "etcd.storageClassName=fast",
		"--set", "namespace=flags"))
	dep := got["apps/v1/Deployment/flags/flagpole-apiserver"]
	if dep == nil {
		t.Fatalf("no Deployment in namespace flags; objects: %v", keys(got))
	}
	spec := dep["spec"].(map[string]any)
	container := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	checks := map[string][2]any{
		"replicas":     {spec["replicas"], float64(3)},
		"image":        {container["image"], "registry.example.com/flagpole/flagpole-apiserver@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		"memory limit": {container["resources"].(map[string]any)["limits"].(map[string]any)["memory"], "2Gi"},
		"etcd servers": {container["env"].([]any)[0].(map[string]any)["value"], "http://etcd-client.flags.svc:2379"},
	}
	claim := got["apps/v1/StatefulSet/flags/etcd"]["spec"].(map[string]any)["volumeClaimTemplates"].([]any)[0].(map[string]any)["spec"].(map[string]any)
	checks["etcd storage"] = [2]any{claim["resources"].(map[string]any)["requests"].(map[string]any)["storage"], "10Gi"}
	checks["etcd storage class"] = [2]any{claim["storageClassName"], "fast"}
	checks["APIService Service namespace"] = [2]any{got["apiregistration.k8s.io/v1/APIService//v1beta1.flagpole.dev"]["spec"].(map[string]any)["service"].(map[string]any)["namespace"], "flags"}
	for what, c := range checks {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("%s: %v, want %v", what, c[0], c[1])
		}
	}

	cmd := exec.Command(helm, "template", "flagpole", chartDir, "--set", "certificates.mode=self-signed")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `certificates.mode "self-signed": want self-managed, script or cert-manager`) {
		t.Errorf("an unknown certificates.mode: %v\n%s", err, out)
	}
}

// objects parses manifests into objects keyed by apiVersion/kind/namespace/name.
func objects(t *testing.T, manifests []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatal(err)
		}
		if obj == nil {
			continue
		}
		meta, _ := obj["metadata"].(map[string]any)
		key := fmt.Sprintf("%v/%v/%v/%v", obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
		if meta["namespace"] == nil {
			key = fmt.Sprintf("%v/%v//%v", obj["apiVersion"], obj["kind"], meta["name"])
		}
		if _, dup := out[key]; dup {
			t.Fatalf("%s twice", key)
		}
		out[key] = normalise(obj).(map[string]any)
	}
}

// normalise orders lists whose items all have a name (env, ports, volumes,
// containers) by name: their order is not what an object means, and
// kustomize's strategic merge patches move the entries they patch.
func normalise(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalise(e)
		}
		return v
	case []any:
		named := len(v) > 0
		for i, e := range v {
			v[i] = normalise(e)
			if m, ok := e.(map[string]any); !ok || m["name"] == nil {
				named = false
			}
		}
		if named {
			sort.SliceStable(v, func(i, j int) bool {
				return fmt.Sprint(v[i].(map[string]any)["name"]) < fmt.Sprint(v[j].(map[string]any)["name"])
			})
		}
		return v
	}
	return v
}

func keys(m map[string]map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func compareObjects(t *testing.T, want, got map[string]map[string]any, wantName, gotName string) {
	t.Helper()
	for _, k := range keys(want) {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s lacks %s", gotName, k)
			continue
		}
		if !reflect.DeepEqual(want[k], g) {
			w, _ := json.MarshalIndent(want[k], "", "  ")
			gj, _ := json.MarshalIndent(g, "", "  ")
			t.Errorf("%s differs:\n%s", k, diffLines(string(w), string(gj)))
		}
	}
	for _, k := range keys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("%s has %s, which %s does not", gotName, k, wantName)
		}
	}
}
