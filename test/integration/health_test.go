package integration

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// Anyone authenticated may ask whether the server is healthy, live and
// ready; the list of its internal checks (?verbose) is for the admin only:
// an application's token gets the plain answer.
func TestHealthDetailForAdminsOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	token, err := os.ReadFile(standalone.Layout{DataDir: s.DataDir}.AppTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	get := func(cfg *rest.Config, path string) (int, string) {
		t.Helper()
		c, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(cfg.Host + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	app := tokenConfig(s.AdminConfig, strings.TrimSpace(string(token)))
	for _, path := range []string{"/healthz", "/livez", "/readyz"} {
		code, body := get(s.AdminConfig, path+"?verbose")
		if code != http.StatusOK || !strings.Contains(body, "[+]ping ok") {
			t.Errorf("admin %s?verbose: %d %q, want the checks listed", path, code, body)
		}
		code, body = get(app, path+"?verbose")
		if code != http.StatusOK || strings.Contains(body, "[+]") || strings.TrimSpace(body) != "ok" {
			t.Errorf("application %s?verbose: %d %q, want a plain ok", path, code, body)
		}
		if code, _ := get(app, path+"/ping"); code != http.StatusForbidden {
			t.Errorf("application %s/ping: %d, want 403", path, code)
		}
	}
}
