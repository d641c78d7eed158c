package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/fairness"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/openfeature"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
	openfeaturejs "github.com/flagpole-dev/flagpole/test/openfeature-js"
)

// createOFREPFlags creates the flags and waits until evaluation answers
// from them, so that no change event or new ETag is still to come when a
// test compares answers.
func createOFREPFlags(t *testing.T, client clientset.Interface, namespace string) {
	t.Helper()
	for _, f := range openfeaturejs.Flags() {
		createFlag(t, client, namespace, f)
	}
}

// tokenConfig authenticates with a bearer token instead of the admin certificate.
func tokenConfig(admin *rest.Config, token string) *rest.Config {
	return &rest.Config{Host: admin.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: admin.CAFile}, QPS: -1, Burst: -1}
}

// ofrep posts an OFREP request and returns the status and decoded body.
func ofrep(t *testing.T, cfg *rest.Config, path string, context any) (int, map[string]any) {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ofrepWith(t, client, cfg.Host, path, context)
}

// ofrepWith is ofrep on an HTTP client the caller keeps, for many requests.
func ofrepWith(t *testing.T, client *http.Client, host, path string, context any) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"context": context})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(host+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	code := resp.StatusCode
	var m map[string]any
	if len(out) > 0 && out[0] == '{' {
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("%s: %d %s: %v", path, code, out, err)
		}
	}
	return code, m
}

// TestOpenFeatureJavaScriptSDKs drives the unmodified OpenFeature server and
// web SDKs with their OFREP providers from npm against standalone Flagpole.
func TestOpenFeatureJavaScriptSDKs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// An operator-provided token file: the application, and a user that is
	// authenticated but may not evaluate.
	if err := os.WriteFile(filepath.Join(dir, standalone.TokensFile), []byte(
		"app-token-0123456789,web-app,web-app,\""+standalone.EvaluatorsGroup+"\"\n"+
			"denied-token-0123456789,mallory,mallory\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerIn(t, dir)
	const ns = "ofrep-js"
	createOFREPFlags(t, s.Client, ns)
	rollout, err := s.Client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "rollout-flag", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	splits, err := openfeaturejs.ExpectedSplits(rollout, 100)
	if err != nil {
		t.Fatal(err)
	}
	openfeaturejs.Run(t, openfeaturejs.Env{
		BaseURL:        s.AdminConfig.Host + "/namespaces/" + ns,
		CAFiles:        []string{s.AdminConfig.CAFile},
		AppToken:       "app-token-0123456789",
		DeniedToken:    "denied-token-0123456789",
		NoTokenStatus:  http.StatusUnauthorized,
		ExpectedSplits: splits,
		APIServer:      s.AdminConfig.Host,
		AdminCert:      s.AdminConfig.CertFile,
		AdminKey:       s.AdminConfig.KeyFile,
	}, "server.test.mjs", "web.test.mjs")
}

// TestOFREP checks the protocol's status codes and bodies, and that the
// application token written on first start may evaluate and nothing else.
func TestOFREP(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const ns = "ofrep"
	createOFREPFlags(t, s.Client, ns)
	token, err := os.ReadFile(filepath.Join(s.DataDir, standalone.AppTokenFile))
	if err != nil {
		t.Fatalf("standalone mode writes an application token on first start: %v", err)
	}
	app := tokenConfig(s.AdminConfig, strings.TrimSpace(string(token)))
	base := "/namespaces/" + ns + "/ofrep/v1/evaluate/flags"

	code, body := ofrep(t, app, base+"/bool-flag", map[string]any{"targetingKey": "u", "plan": "vip"})
	if code != http.StatusOK || body["value"] != true || body["reason"] != "TARGETING_MATCH" || body["variant"] != "on" || body["key"] != "bool-flag" {
		t.Errorf("single evaluation: %d %v", code, body)
	}
	if md, _ := body["metadata"].(map[string]any); md["rule"] != "vip" || md["resourceVersion"] == "" {
		t.Errorf("metadata %v does not trace the answer to the flag revision and rule", body["metadata"])
	}
	for _, tc := range []struct {
		path    string
		context any
		code    int
		errCode string
	}{
		{base + "/no-such-flag", map[string]any{}, http.StatusNotFound, "FLAG_NOT_FOUND"},
		{base + "/rollout-flag", map[string]any{}, http.StatusBadRequest, "TARGETING_KEY_MISSING"},
		{base + "/bool-flag", []int{1}, http.StatusBadRequest, "INVALID_CONTEXT"},
		{base + "/bool-flag", nil, http.StatusBadRequest, "INVALID_CONTEXT"},
		{base + "/bool-flag", map[string]any{"targetingKey": 1}, http.StatusBadRequest, "INVALID_CONTEXT"},
	} {
		code, body := ofrep(t, app, tc.path, tc.context)
		if code != tc.code || body["errorCode"] != tc.errCode {
			t.Errorf("%s %v: %d %v, want %d %s", tc.path, tc.context, code, body, tc.code, tc.errCode)
		}
	}
	if code, body := ofrep(t, app, base+"/disabled-flag", map[string]any{}); code != http.StatusOK || body["reason"] != "DISABLED" {
		t.Errorf("disabled flag: %d %v, want 200 DISABLED", code, body)
	}

	// Bulk: every flag, an ETag, 304 for the same answer.
	code, out := do(t, app, "POST", base, "application/json", []byte(`{"context":{"targetingKey":"u"}}`))
	var bulk struct {
		Flags []map[string]any `json:"flags"`
	}
	if err := json.Unmarshal(out, &bulk); code != http.StatusOK || err != nil || len(bulk.Flags) != len(openfeaturejs.Flags()) {
		t.Fatalf("bulk: %d %s", code, out)
	}
	etag := bulkETag(t, app, base, `{"context":{"targetingKey":"u"}}`, "")
	if code, _ := do(t, app, "POST", base, "application/json", []byte(`{"context":{"targetingKey":"u"}}`), "If-None-Match", etag); code != http.StatusNotModified {
		t.Errorf("bulk with a matching If-None-Match: %d, want 304", code)
	}
	if other := bulkETag(t, app, base, `{"context":{"targetingKey":"someone-else","plan":"vip"}}`, etag); other == etag {
		t.Error("a context that evaluates differently got the same ETag")
	}

	// The token may evaluate, nothing else; no token is 401.
	if code, _ := do(t, app, "GET", "/apis/flagpole.dev/v1beta1/namespaces/"+ns+"/flags", "", nil); code != http.StatusForbidden {
		t.Errorf("application token listing flags: %d, want 403", code)
	}
	anonymous := tokenConfig(s.AdminConfig, "")
	if code, _ := ofrep(t, anonymous, base+"/bool-flag", nil); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := ofrep(t, tokenConfig(s.AdminConfig, "not-a-token"), base+"/bool-flag", nil); code != http.StatusUnauthorized {
		t.Errorf("unknown token: %d, want 401", code)
	}
}

func bulkETag(t *testing.T, cfg *rest.Config, path, body, ifNoneMatch string) string {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", cfg.Host+path, strings.NewReader(body))
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bulk: %d", resp.StatusCode)
	}
	return resp.Header.Get("ETag")
}

// TestGoProviderMatchesOFREP evaluates 1,000 contexts through the in-process
// Go provider and through the server's OFREP endpoint, and requires the same
// answers; then it stops the server and requires the provider to report
// PROVIDER_STALE and to keep answering from its last state.
func TestGoProviderMatchesOFREP(t *testing.T) {
	t.Parallel()
	s := framework.StartServer(t, t.TempDir())
	const ns = "provider"
	createOFREPFlags(t, s.Client, ns)
	p, err := openfeature.NewProvider(s.AdminConfig, ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown()

	httpClient, err := rest.HTTPClientFor(s.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	plans := []string{"vip", "free", ""}
	for i := range 1000 {
		ctx := map[string]any{"targetingKey": fmt.Sprintf("user-%d", i)}
		if plan := plans[i%len(plans)]; plan != "" {
			ctx["plan"] = plan
		}
		for _, key := range []string{"bool-flag", "rollout-flag"} {
			local, _ := p.Evaluate(context.Background(), key, v1beta1.FlagTypeBoolean, of.FlattenedContext(ctx))
			code, remote := ofrepWith(t, httpClient, s.AdminConfig.Host, "/namespaces/"+ns+"/ofrep/v1/evaluate/flags/"+key, ctx)
			var localValue any
			if local.Value != nil {
				_ = json.Unmarshal(local.Value.Raw, &localValue)
			}
			if code != http.StatusOK || remote["variant"] != local.Variant || remote["reason"] != local.Reason || remote["value"] != localValue {
				t.Fatalf("%s %v: provider %s/%s/%v, OFREP %d %v", key, ctx, local.Variant, local.Reason, localValue, code, remote)
			}
		}
	}

	s.Stop(t)
	deadline := time.After(30 * time.Second)
	for stale := false; !stale; {
		select {
		case ev := <-p.EventChannel():
			stale = ev.EventType == of.ProviderStale
		case <-deadline:
			t.Fatal("no PROVIDER_STALE after the server stopped")
		}
	}
	if d := p.BooleanEvaluation(context.Background(), "bool-flag", false, of.FlattenedContext{"targetingKey": "u", "plan": "vip"}); !d.Value || d.Reason != of.TargetingMatchReason {
		t.Errorf("with the server gone the provider answered %+v, want its last state", d)
	}
}

// TestOFREPFlowControl: OFREP requests go through the server's flow control
// like any create. Under priority and fairness (the default, standalone
// too: pkg/fairness) they are classified as evaluations, into Flagpole's
// level queued by user, apart from the API's writes; under max-in-flight a
// burst past the seats is answered 429 with Retry-After (what OFREP
// providers back off on), and never with a 5xx.
func TestOFREPFlowControl(t *testing.T) {
	t.Parallel()
	t.Run("priority and fairness", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		const ns = "ofrep-fairness"
		createFlag(t, s.Client, ns, openfeaturejs.Flags()[0])
		token, err := os.ReadFile(filepath.Join(s.DataDir, standalone.AppTokenFile))
		if err != nil {
			t.Fatal(err)
		}
		client, err := rest.HTTPClientFor(tokenConfig(s.AdminConfig, strings.TrimSpace(string(token))))
		if err != nil {
			t.Fatal(err)
		}
		dispatched := func() int {
			// The in-process servers share the process's metrics: count
			// this test's requests as a difference.
			metrics, err := s.Client.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			series := `apiserver_flowcontrol_dispatched_requests_total{flow_schema="` + fairness.EvaluationName + `",priority_level="` + fairness.EvaluationName + `"} `
			for _, line := range strings.Split(string(metrics), "\n") {
				if v, ok := strings.CutPrefix(line, series); ok {
					n, _ := strconv.Atoi(v)
					return n
				}
			}
			return 0
		}
		before := dispatched()
		for _, path := range []string{"/evaluate/flags/bool-flag", "/evaluate/flags"} {
			resp, err := client.Post(s.AdminConfig.Host+"/namespaces/"+ns+"/ofrep/v1"+path, "application/json", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("OFREP %s: %d", path, resp.StatusCode)
			}
		}
		if got := dispatched() - before; got < 2 {
			t.Errorf("%d OFREP requests dispatched by the %s priority level, want the 2 sent", got, fairness.EvaluationName)
		}
	})
	t.Run("max-in-flight", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, "--enable-priority-and-fairness=false", "--max-requests-inflight", "1", "--max-mutating-requests-inflight", "1")
		ofrepBursts(t, s, 200)
	})
}

func ofrepBursts(t *testing.T, s *framework.Server, burstSize int) {
	const ns = "ofrep-limits"
	createFlag(t, s.Client, ns, openfeaturejs.Flags()[0])
	// The application's token: system:masters (the admin) is exempt from
	// flow control, as upstream exempts it.
	token, err := os.ReadFile(filepath.Join(s.DataDir, standalone.AppTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	// A connection carries at most 100 streams at once: a client (a
	// connection of its own) per 100 requests of the burst.
	var clients []*http.Client
	for range (burstSize + 99) / 100 {
		cfg := tokenConfig(s.AdminConfig, strings.TrimSpace(string(token)))
		cfg.Dial = (&net.Dialer{}).DialContext // a transport of its own
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, client)
	}
	url := s.AdminConfig.Host + "/namespaces/" + ns + "/ofrep/v1/evaluate/flags/bool-flag"
	// A burst of concurrent requests against the seats; a few bursts at
	// most, since whether requests overlap is up to the scheduler.
	for burst := 0; burst < 5; burst++ {
		type answer struct {
			code       int
			retryAfter string
		}
		answers := make(chan answer, burstSize)
		for i := range cap(answers) {
			go func() {
				resp, err := clients[i%len(clients)].Post(url, "application/json", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
				if err != nil {
					answers <- answer{code: -1, retryAfter: err.Error()}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answers <- answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
			}()
		}
		throttled := 0
		for range cap(answers) {
			a := <-answers
			switch {
			case a.code == http.StatusTooManyRequests && a.retryAfter != "":
				throttled++
			case a.code == http.StatusOK:
			default:
				t.Fatalf("burst answer %d (%s), want 200 or 429 with Retry-After", a.code, a.retryAfter)
			}
		}
		if throttled > 0 {
			return
		}
	}
	t.Errorf("no OFREP request was throttled in five bursts of %d", burstSize)
}
