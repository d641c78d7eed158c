// Package deploy checks the kustomize output of artifacts/deploy and its
// overlays against testdata, so that every change to what a cluster receives
// is seen in review. It needs the kubectl v1.37.2 that hack/build-tools.sh
// builds (test/tools): under hack/test.sh a missing one fails the test,
// outside it the test skips. Regenerate the golden files with
//
//	go test ./test/deploy/ -update
//
// test/e2e/deploy_test.go applies the same output to a real kube-apiserver
// with --dry-run=server. chart_test.go checks that the Helm chart
// (artifacts/chart/flagpole) renders the same objects, and runs helm lint; it
// needs the helm that hack/build-tools.sh helm builds (test/tools).
package deploy

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flagpole-dev/flagpole/test/tools"
)

var update = flag.Bool("update", os.Getenv("UPDATE_GOLDEN") != "", "rewrite testdata from the current kustomize output")

// Kustomizations maps each directory under artifacts/deploy to its golden file.
var Kustomizations = map[string]string{
	"":             "base.yaml",
	"cert-manager": "cert-manager.yaml",
	"etcd-ha":      "etcd-ha.yaml",
	// Certificates from files (hack/deploy-certs.sh) instead of Flagpole's own.
	"certificate-files": "certificate-files.yaml",
	// Both components at once.
	"cert-manager-etcd-ha": "cert-manager-etcd-ha.yaml",
}

const kubectlVersion = "v1.37.2"

func TestKustomizeGolden(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kubectl := tools.Bin(t, "kubectl")
	out, err := exec.Command(kubectl, "version", "--client").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", kubectl, err, out)
	}
	if !strings.Contains(string(out), kubectlVersion) {
		tools.Missing(t, "%s is not %s (%s): its kustomize may print differently; not comparing", kubectl, kubectlVersion, strings.TrimSpace(string(out)))
	}
	for dir, golden := range Kustomizations {
		t.Run(golden, func(t *testing.T) {
			cmd := exec.Command(kubectl, "kustomize", filepath.Join("artifacts", "deploy", dir))
			cmd.Dir = root
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			got, err := cmd.Output()
			if err != nil {
				t.Fatalf("kubectl kustomize artifacts/deploy/%s: %v\n%s", dir, err, stderr.String())
			}
			checkInvariants(t, string(got))
			path := filepath.Join("testdata", golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./test/deploy/ -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("kubectl kustomize artifacts/deploy/%s differs from %s; if intended, run go test ./test/deploy/ -update and review the diff\n%s", dir, path, diffLines(string(want), string(got)))
			}
		})
	}
}

// checkInvariants holds for every kustomization, golden file or not.
func checkInvariants(t *testing.T, manifests string) {
	t.Helper()
	for _, forbidden := range []string{"insecureSkipTLSVerify", "privileged: true", "allowPrivilegeEscalation: true", "runAsNonRoot: false", "readOnlyRootFilesystem: false"} {
		if strings.Contains(manifests, forbidden) {
			t.Errorf("output contains %q", forbidden)
		}
	}
	for _, required := range []string{"kind: APIService", "name: v1beta1.flagpole.dev", "kind: PodDisruptionBudget", "replicas: 2", "maxUnavailable: 0", "--shutdown-delay-duration=", "--serving-cert-mode=", "flagpole-serving-cert", "namespace: kube-system"} {
		if !strings.Contains(manifests, required) {
			t.Errorf("output lacks %q", required)
		}
	}
}

// diffLines shows the first lines that differ, enough to see what changed.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n- " + wl + "\n+ " + gl + "\n")
			if shown++; shown == 10 {
				b.WriteString("...\n")
				break
			}
		}
	}
	return b.String()
}
