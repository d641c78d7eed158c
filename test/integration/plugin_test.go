package integration

import (
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/pluginsuite"
)

// TestPlugin runs every kubectl-flagpole command against the standalone
// server: the admin kubeconfig it writes, and the application token (which
// may evaluate, not read or write flags) as the user who is refused.
func TestPlugin(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	layout := standalone.Layout{DataDir: s.DataDir}
	pluginsuite.Run(t, pluginsuite.Env{
		Plugin:     pluginsuite.Build(t, repoRoot(t)),
		Admin:      layout.Kubeconfig(),
		Denied:     tokenKubeconfig(t, layout),
		Namespaces: [3]string{"plugin", "imported", "imported-v1"},
		Client:     s.Client,
		RepoRoot:   repoRoot(t),
	})
}

// tokenKubeconfig writes a kubeconfig for the standalone server's
// application token.
func tokenKubeconfig(t *testing.T, layout standalone.Layout) string {
	t.Helper()
	admin, err := clientcmd.LoadFromFile(layout.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(layout.AppTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["flagpole"] = cluster
	cfg.AuthInfos["app"] = &clientcmdapi.AuthInfo{Token: strings.TrimSpace(string(token))}
	cfg.Contexts["app"] = &clientcmdapi.Context{Cluster: "flagpole", AuthInfo: "app"}
	cfg.CurrentContext = "app"
	path := t.TempDir() + "/app.kubeconfig"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}
