//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// Minimal stand-ins for cert-manager's CRDs: the e2e cluster has no
// cert-manager, and a dry run needs the kinds to exist. They check nothing
// inside the objects (x-kubernetes-preserve-unknown-fields), so the
// cert-manager overlay's Issuers and Certificates are checked here only for
// being well-formed objects of those kinds.
const certManagerStandInCRDs = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: certificates.cert-manager.io
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {plural: certificates, singular: certificate, kind: Certificate, listKind: CertificateList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: issuers.cert-manager.io
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {plural: issuers, singular: issuer, kind: Issuer, listKind: IssuerList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestDeployManifests: kubectl apply --dry-run=server of artifacts/deploy
// and of each overlay is accepted by kube-apiserver v1.37.2, object by
// object: schema, validation, defaulting and admission of every manifest,
// including the APIService. The e2e harness already created the namespace,
// the ServiceAccount, the Service api and the APIService, so for those the
// dry run is an update. Nothing runs: there is no kubelet here.
func TestDeployManifests(t *testing.T) {
	crds := filepath.Join(t.TempDir(), "cert-manager-crds.yaml")
	if err := os.WriteFile(crds, []byte(certManagerStandInCRDs), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, userAdmin, "apply", "-f", crds)
	t.Cleanup(func() {
		if out, err := e2e.Kubectl(userAdmin, "delete", "-f", crds, "--wait=false"); err != nil {
			t.Logf("removing the stand-in CRDs: %v\n%s", err, out)
		}
	})
	mustKubectl(t, userAdmin, "wait", "--for=condition=Established", "--timeout=60s",
		"crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io")

	for _, dir := range []string{"", "base", "cert-manager", "certificate-files", "etcd-ha", "cert-manager-etcd-ha"} {
		name := dir
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("artifacts", "deploy", dir)
			manifests := mustKubectl(t, userAdmin, "kustomize", path)
			want := objectNames(t, manifests)
			if len(want) == 0 {
				t.Fatalf("kubectl kustomize %s: no objects", path)
			}
			if dir == "cert-manager" && !strings.Contains(manifests, "cert-manager.io/inject-ca-from: flagpole-system/flagpole-serving-cert") {
				t.Errorf("the APIService of %s has no CA injection annotation", path)
			}
			if strings.Contains(manifests, "insecureSkipTLSVerify") {
				t.Errorf("%s sets insecureSkipTLSVerify", path)
			}
			// The command an operator runs, checked by the server.
			out, err := e2e.Kubectl(userAdmin, "apply", "-k", path, "--dry-run=server", "-o", "name")
			if err != nil {
				t.Fatalf("kubectl apply -k %s --dry-run=server: %v\n%s", path, err, out)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(line, "Warning:") {
					// The harness made the Service api (an ExternalName
					// to localhost) and the APIService without kubectl
					// apply: kubectl says so, and the patch to type
					// ClusterIP leaves externalName in the request, which
					// the server warns about and drops. Any other warning
					// (Pod Security, deprecations) is a finding.
					if !harnessWarning(line) {
						t.Errorf("%s: %s", path, line)
					}
					continue
				}
				got = append(got, line)
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("the server accepted\n%s\nwant every object of kubectl kustomize %s:\n%s", strings.Join(got, "\n"), path, strings.Join(want, "\n"))
			}
		})
	}

	t.Run("deploy-certs.sh", func(t *testing.T) {
		// The script's kubectl steps (the Secret, the caBundle patch) as dry
		// runs; its certificates for real.
		certs := t.TempDir()
		cmd := exec.Command("hack/deploy-certs.sh")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(),
			"KUBECTL="+filepath.Join(e2e.binDir, "kubectl"),
			"KUBECONFIG="+e2e.Kubeconfig(userAdmin),
			"CERTS_DIR="+certs,
			"DRY_RUN=server",
		)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("hack/deploy-certs.sh: %v\n%s", err, out)
		}
		for _, want := range []string{"secret/flagpole-serving-cert created (server dry run)", "apiservice.apiregistration.k8s.io/v1beta1.flagpole.dev patched"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("hack/deploy-certs.sh output lacks %q:\n%s", want, out)
			}
		}
		caPEM, err := os.ReadFile(filepath.Join(certs, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		// The dry run left the harness's APIService alone.
		live := mustKubectl(t, userAdmin, "get", "apiservice", "v1beta1.flagpole.dev", "-o", "jsonpath={.spec.caBundle}")
		if harnessCA, err := e2e.servingCA(); err != nil || live != base64.StdEncoding.EncodeToString(harnessCA) {
			t.Fatalf("the APIService's caBundle changed in a dry run (%v)", err)
		}
		pair, err := tls.LoadX509KeyPair(filepath.Join(certs, "tls.crt"), filepath.Join(certs, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caPEM) {
			t.Fatal("ca.crt holds no certificate")
		}
		// What the aggregator checks: the Service's DNS name, server auth.
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:   tcluster.FlagpoleService + "." + tcluster.FlagpoleNamespace + ".svc",
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			t.Errorf("the serving certificate does not verify against the CA: %v", err)
		}
		// Again: the CA is kept (the caBundle does not change), the
		// serving certificate is new.
		again := exec.Command("hack/deploy-certs.sh")
		again.Dir, again.Env = repoRoot, cmd.Env
		if out, err := again.CombinedOutput(); err != nil || !strings.Contains(string(out), "reusing the CA") {
			t.Fatalf("hack/deploy-certs.sh a second time: %v\n%s", err, out)
		}
		if ca2, _ := os.ReadFile(filepath.Join(certs, "ca.crt")); !bytes.Equal(ca2, caPEM) {
			t.Error("the second run replaced the CA")
		}
		if pair2, err := tls.LoadX509KeyPair(filepath.Join(certs, "tls.crt"), filepath.Join(certs, "tls.key")); err != nil || bytes.Equal(pair2.Certificate[0], pair.Certificate[0]) {
			t.Errorf("the second run did not renew the serving certificate (%v)", err)
		}
	})

	// A dry run changes nothing: the harness's APIService still points at
	// the running Flagpole and is Available.
	if err := e2e.WaitAPIService(t.Context(), true, 30*time.Second); err != nil {
		t.Errorf("after the dry runs: %v", err)
	}
}

// objectNames lists the objects of a multi-document YAML stream as
// kubectl -o name prints them (kind.group/name), sorted.
func objectNames(t *testing.T, manifests string) []string {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewBufferString(manifests), 4096)
	var names []string
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding kustomize output: %v", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gvk := u.GroupVersionKind()
		kind := strings.ToLower(gvk.Kind)
		if gvk.Group != "" {
			kind += "." + gvk.Group
		}
		names = append(names, kind+"/"+u.GetName())
	}
	sort.Strings(names)
	return names
}

func harnessWarning(line string) bool {
	return strings.Contains(line, "spec.externalName is ignored") ||
		strings.Contains(line, "resource services/api is missing the kubectl.kubernetes.io/last-applied-configuration") ||
		strings.Contains(line, "resource apiservices/v1beta1.flagpole.dev is missing the kubectl.kubernetes.io/last-applied-configuration")
}
