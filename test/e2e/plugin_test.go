//go:build e2e

package e2e

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/test/browser"
	"github.com/flagpole-dev/flagpole/test/pluginsuite"
)

// TestPlugin runs every kubectl-flagpole command through kube-apiserver, as
// a cluster's users do: the admin, and bob, whose Role reads flags and
// changes nothing; FeatureFlags are imported from the cluster, where a CRD
// of the OpenFeature Operator's FeatureFlag serves them.
func TestPlugin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	namespaces := [3]string{"plugin", "plugin-imported", "plugin-imported-v1"}
	for _, ns := range namespaces {
		if err := createReaderNamespace(ctx, kube, ns); err != nil {
			t.Fatal(err)
		}
	}
	const featureFlagsNamespace = "openfeature"
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: featureFlagsNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	installFeatureFlags(ctx, t, featureFlagsNamespace)
	pluginsuite.Run(t, pluginsuite.Env{
		Plugin:              pluginsuite.Build(t, repoRoot),
		Admin:               e2e.Kubeconfig(userAdmin),
		Denied:              e2e.Kubeconfig(userReader),
		DeniedReads:         true,
		Namespaces:          namespaces,
		Client:              clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)),
		RepoRoot:            repoRoot,
		ClusterFeatureFlags: featureFlagsNamespace,
	})
}

// installFeatureFlags serves the OpenFeature Operator's FeatureFlag kind
// (a CRD of the same group, kind and shape) and creates one in namespace.
func installFeatureFlags(ctx context.Context, t *testing.T, namespace string) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "featureflags.core.openfeature.dev"},
		"spec": map[string]any{
			"group": "core.openfeature.dev", "scope": "Namespaced",
			"names": map[string]any{"kind": "FeatureFlag", "plural": "featureflags", "singular": "featureflag", "listKind": "FeatureFlagList"},
			"versions": []any{map[string]any{"name": "v1beta1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}},
		},
	}}
	if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	featureFlags := dyn.Resource(schema.GroupVersionResource{Group: "core.openfeature.dev", Version: "v1beta1", Resource: "featureflags"}).Namespace(namespace)
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "core.openfeature.dev/v1beta1", "kind": "FeatureFlag",
		"metadata": map[string]any{"name": "shop-flags"},
		"spec": map[string]any{"flagSpec": map[string]any{
			"flags": map[string]any{"new-welcome-banner": map[string]any{
				"state": "ENABLED", "variants": map[string]any{"true": true, "false": false}, "defaultVariant": "false",
				"targeting": map[string]any{"in": []any{"@example.com", map[string]any{"var": "email"}}},
			}},
		}},
	}}
	// The CRD serves once it is established.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := featureFlags.Create(ctx, obj, metav1.CreateOptions{})
		return err == nil, nil
	}); err != nil {
		t.Fatalf("creating a FeatureFlag: %v", err)
	}
}

// TestConsoleBrowser drives the console through kube-apiserver in Chromium:
// the admin's console, and bob's, whose Role reads flags only: his controls
// are disabled and the API refuses what he sends anyway. With
// FLAGPOLE_SCREENSHOT_DIR set, the pages are saved there (docs/console.md's
// screenshots).
func TestConsoleBrowser(t *testing.T) {
	browser.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns = "console"
	if err := createReaderNamespace(ctx, kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin)), ns); err != nil {
		t.Fatal(err)
	}
	admin := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	pluginsuite.Fixtures(t, admin, ns)
	plugin := pluginsuite.Build(t, repoRoot)
	cfg := e2e.RestConfig(userAdmin)
	browser.Run(t, map[string]string{
		"FLAGPOLE_CONSOLE_URL":        browser.StartConsole(t, plugin, e2e.Kubeconfig(userAdmin), ns),
		"FLAGPOLE_READER_CONSOLE_URL": browser.StartConsole(t, plugin, e2e.Kubeconfig(userReader), ns),
		"FLAGPOLE_FOREIGN_PAGE":       browser.ServePages(t) + "/foreign.html",
		"FLAGPOLE_NAMESPACE":          ns,
		"FLAGPOLE_API_SERVER":         cfg.Host,
		"FLAGPOLE_API_CA":             cfg.CAFile,
		"FLAGPOLE_API_CERT":           cfg.CertFile,
		"FLAGPOLE_API_KEY":            cfg.KeyFile,
	}, "console.test.mjs")
}
