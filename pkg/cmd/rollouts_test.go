package cmd

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRolloutOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		o    RolloutOptions
		want string
	}{
		{"defaults", defaultRolloutOptions(), ""},
		{"not a URL", RolloutOptions{PrometheusURL: "prometheus:9090", GuardInterval: time.Second, PrometheusTimeout: time.Second}, "an http or https URL"},
		{"a token without a URL", RolloutOptions{PrometheusBearerTokenFile: "/t", GuardInterval: time.Second, PrometheusTimeout: time.Second}, "need --rollout-prometheus-url"},
		{"too often", RolloutOptions{GuardInterval: 100 * time.Millisecond, PrometheusTimeout: time.Second}, "--rollout-guard-interval 100ms: at least 1s"},
		{"no time", RolloutOptions{GuardInterval: time.Second}, "--rollout-prometheus-timeout 0s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			errs := c.o.validate()
			got := fmt.Sprint(errs)
			if (c.want == "") != (len(errs) == 0) || !strings.Contains(got, c.want) {
				t.Errorf("%v, want %q", errs, c.want)
			}
		})
	}
}

// The token file is read for every query, so a rotated token is sent at
// once; a CA file without a certificate is refused at start.
func TestRolloutPrometheusClient(t *testing.T) {
	var seen []string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"status":"success","data":{"resultType":"scalar","result":[1700000000,"0.5"]}}`)
	}))
	defer prom.Close()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := defaultRolloutOptions()
	o.PrometheusURL, o.PrometheusBearerTokenFile = prom.URL, token
	cfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	for _, next := range []string{"second", ""} {
		v, err := cfg.Guards.Read(context.Background(), "up")
		if err != nil || v != 0.5 {
			t.Fatalf("read: %v %v", v, err)
		}
		if next != "" {
			if err := os.WriteFile(token, []byte(next), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(seen) != 2 || seen[0] != "Bearer first" || seen[1] != "Bearer second" {
		t.Errorf("Authorization sent: %q", seen)
	}
	bad := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	o.PrometheusCAFile = bad
	if _, err := o.config(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without a certificate: %v", err)
	}
}
