package cmd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	cliflag "k8s.io/component-base/cli/flag"

	flagpoleapiserver "github.com/flagpole-dev/flagpole/pkg/apiserver"
	rolloutplancontroller "github.com/flagpole-dev/flagpole/pkg/controllers/rolloutplan"
	"github.com/flagpole-dev/flagpole/pkg/rolloutplan"
)

// RolloutOptions are the flags of rollout plans: where their guards read.
type RolloutOptions struct {
	PrometheusURL             string
	PrometheusCAFile          string
	PrometheusBearerTokenFile string
	PrometheusTimeout         time.Duration
	GuardInterval             time.Duration
}

func defaultRolloutOptions() RolloutOptions {
	return RolloutOptions{PrometheusTimeout: 5 * time.Second, GuardInterval: rolloutplancontroller.DefaultGuardInterval}
}

func (r *RolloutOptions) addFlags(fss *cliflag.NamedFlagSets) {
	fs := fss.FlagSet("rollout plans")
	fs.StringVar(&r.PrometheusURL, "rollout-prometheus-url", r.PrometheusURL,
		"The Prometheus (its HTTP API, e.g. http://prometheus.monitoring:9090) that rollout plan guards query. Without it a plan reaching a step with a guard pauses there.")
	fs.StringVar(&r.PrometheusCAFile, "rollout-prometheus-ca-file", r.PrometheusCAFile,
		"CA bundle that verifies an https --rollout-prometheus-url (default: the system's).")
	fs.StringVar(&r.PrometheusBearerTokenFile, "rollout-prometheus-bearer-token-file", r.PrometheusBearerTokenFile,
		"A file whose content is sent as a bearer token to Prometheus, read for every query (so a rotated token is used at once).")
	fs.DurationVar(&r.PrometheusTimeout, "rollout-prometheus-timeout", r.PrometheusTimeout,
		"How long a guard's query may take; longer, and the guard is unavailable (its plan pauses).")
	fs.DurationVar(&r.GuardInterval, "rollout-guard-interval", r.GuardInterval,
		"How often the guard of each plan's current step is read. At least 1s.")
}

func (r RolloutOptions) validate() []error {
	var errs []error
	if r.PrometheusURL != "" {
		u, err := url.Parse(r.PrometheusURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--rollout-prometheus-url %q: an http or https URL", r.PrometheusURL))
		}
	} else if r.PrometheusCAFile != "" || r.PrometheusBearerTokenFile != "" {
		errs = append(errs, errors.New("--rollout-prometheus-ca-file and --rollout-prometheus-bearer-token-file need --rollout-prometheus-url"))
	}
	if r.GuardInterval < time.Second {
		errs = append(errs, fmt.Errorf("--rollout-guard-interval %s: at least 1s", r.GuardInterval))
	}
	if r.PrometheusTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--rollout-prometheus-timeout %s: more than 0", r.PrometheusTimeout))
	}
	return errs
}

// config is the server's RolloutsConfig: a Prometheus reader when there
// is a URL.
func (r RolloutOptions) config() (flagpoleapiserver.RolloutsConfig, error) {
	cfg := flagpoleapiserver.RolloutsConfig{GuardInterval: r.GuardInterval}
	if r.PrometheusURL == "" {
		return cfg, nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if r.PrometheusCAFile != "" {
		pem, err := os.ReadFile(r.PrometheusCAFile)
		if err != nil {
			return cfg, fmt.Errorf("--rollout-prometheus-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return cfg, fmt.Errorf("--rollout-prometheus-ca-file %s: no PEM certificate in it", r.PrometheusCAFile)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	var rt http.RoundTripper = transport
	if r.PrometheusBearerTokenFile != "" {
		rt = tokenFile{path: r.PrometheusBearerTokenFile, next: transport}
	}
	p, err := rolloutplan.NewPrometheus(r.PrometheusURL, &http.Client{Transport: rt}, r.PrometheusTimeout)
	if err != nil {
		return cfg, fmt.Errorf("--rollout-prometheus-url: %w", err)
	}
	cfg.Guards = p
	return cfg, nil
}

// tokenFile sends the file's content as a bearer token, read per request.
type tokenFile struct {
	path string
	next http.RoundTripper
}

func (t tokenFile) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := os.ReadFile(t.path)
	if err != nil {
		return nil, fmt.Errorf("--rollout-prometheus-bearer-token-file: %w", err)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(b)))
	return t.next.RoundTrip(req)
}
