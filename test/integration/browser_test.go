package integration

import (
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/browser"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
	"github.com/flagpole-dev/flagpole/test/pluginsuite"
)

// apiEnv tells the browser tests how "another client" reaches the API: the
// admin's client certificate.
func apiEnv(s *framework.Server) map[string]string {
	return map[string]string{
		"FLAGPOLE_API_SERVER": s.AdminConfig.Host,
		"FLAGPOLE_API_CA":     s.AdminConfig.CAFile,
		"FLAGPOLE_API_CERT":   s.AdminConfig.CertFile,
		"FLAGPOLE_API_KEY":    s.AdminConfig.KeyFile,
	}
}

// TestConsoleBrowser drives the console of `kubectl flagpole console`, run
// with the standalone server's admin kubeconfig, in Chromium
// (test/browser/console.test.mjs; the read-only user's case runs in the
// e2e suite, where there is RBAC).
func TestConsoleBrowser(t *testing.T) {
	t.Parallel()
	browser.Chromium(t)
	s := startServer(t)
	const ns = "console"
	pluginsuite.Fixtures(t, s.Client, ns)
	url := browser.StartConsole(t, pluginsuite.Build(t, repoRoot(t)), standalone.Layout{DataDir: s.DataDir}.Kubeconfig(), ns)
	env := apiEnv(s)
	env["FLAGPOLE_CONSOLE_URL"] = url
	env["FLAGPOLE_FOREIGN_PAGE"] = browser.ServePages(t) + "/foreign.html"
	env["FLAGPOLE_NAMESPACE"] = ns
	browser.Run(t, env, "console.test.mjs")
}

// TestOFREPBrowser runs the unmodified OpenFeature web SDK and OFREP web
// provider on a page of another origin in Chromium against the standalone
// server's OFREP, with that origin allowed by --ofrep-cors-allowed-origins
// for the namespace, and a second origin not allowed
// (test/browser/ofrep.test.mjs).
func TestOFREPBrowser(t *testing.T) {
	t.Parallel()
	browser.Chromium(t)
	const ns = "web"
	allowed, refused := browser.ServePages(t), browser.ServePages(t)
	s := startServer(t, "--ofrep-cors-allowed-origins", ns+"="+allowed)
	for _, f := range []*v1beta1.Flag{
		{ObjectMeta: metav1.ObjectMeta{Name: "web-banner"}, Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeString, DefaultVariant: "hi",
			Variants: []v1beta1.Variant{{Name: "hi", Value: raw("hello")}, {Name: "bye", Value: raw("bye")}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web-checkout"}, Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, DefaultVariant: "off",
			Variants: []v1beta1.Variant{{Name: "on", Value: raw(true)}, {Name: "off", Value: raw(false)}}}},
	} {
		createFlag(t, s.Client, ns, f)
	}
	token, err := os.ReadFile(standalone.Layout{DataDir: s.DataDir}.AppTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	env := apiEnv(s)
	env["FLAGPOLE_OFREP_PAGE"] = allowed + "/ofrep.html"
	env["FLAGPOLE_OFREP_DENIED_PAGE"] = refused + "/ofrep.html"
	env["FLAGPOLE_OFREP_BASE_URL"] = s.AdminConfig.Host + "/namespaces/" + ns
	env["FLAGPOLE_APP_TOKEN"] = strings.TrimSpace(string(token))
	env["FLAGPOLE_NAMESPACE"] = ns
	env["FLAGPOLE_SERVING_SPKI"] = browser.ServingSPKI(t, browser.HostPort(t, s.AdminConfig.Host))
	browser.Run(t, env, "ofrep.test.mjs")
}
