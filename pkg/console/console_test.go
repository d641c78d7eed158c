package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// upstream is the cluster's API as the console's proxy sees it: it records
// what reached it.
type upstream struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(context.Background()))
	u.mu.Unlock()
	if r.URL.Query().Get("watch") == "1" {
		// A watch: one event now, the next only when the client has seen it.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"type":"ADDED","object":{"metadata":{"name":"a"}}}`)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
}

func (u *upstream) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return nil
	}
	return u.seen[len(u.seen)-1]
}

func start(t *testing.T) (*Server, *upstream, string) {
	t.Helper()
	up := &upstream{}
	srv, host := startWith(t, up)
	return srv, up, host
}

// startWith starts a console in front of api.
func startWith(t *testing.T, handler http.Handler) (*Server, string) {
	t.Helper()
	api := httptest.NewTLSServer(handler)
	t.Cleanup(api.Close)
	cfg := &rest.Config{Host: api.URL, BearerToken: "the-users-token", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	srv, err := New(Config{REST: cfg, Namespace: "shop", Context: "kind-dev"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, strings.TrimPrefix(srv.BaseURL(), "http://")
}

func do(t *testing.T, srv *Server, method, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.BaseURL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestConsoleGuard(t *testing.T) {
	srv, up, host := start(t)
	_, port, _ := net.SplitHostPort(host)
	secret := srv.Secret()
	flags := "/k8s/apis/flagpole.dev/v1beta1/namespaces/shop/flags"
	for _, tc := range []struct {
		name, method, path string
		header             []string
		code               int
		body               string
		reachesAPI         bool
	}{
		{"the page", "GET", "/", nil, 200, `<script type="module" src="app.js">`, false},
		{"an asset", "GET", "/app.js", nil, 200, "", false},
		{"the page opened from a file (a cross-site navigation)", "GET", "/", []string{"Sec-Fetch-Site", "cross-site"}, 200, "", false},
		{"the page under another name (DNS rebinding)", "GET", "/", []string{"Host", "evil.example:" + port}, 403, "answers only to", false},
		{"another port's name", "GET", "/", []string{"Host", "127.0.0.1:1"}, 403, "", false},
		{"localhost is the console too", "GET", "/", []string{"Host", "localhost:" + port}, 200, "", false},
		{"the API without the secret", "GET", flags, nil, 401, "carries this run's secret", false},
		{"the API with a wrong secret", "GET", flags, []string{SecretHeader, secret + "x"}, 401, "", false},
		{"the API with the secret", "GET", flags, []string{SecretHeader, secret}, 200, `"/apis/flagpole.dev/v1beta1/namespaces/shop/flags"`, true},
		{"the API from the console's own origin", "PATCH", flags + "/f", []string{SecretHeader, secret, "Origin", "http://" + host, "Sec-Fetch-Site", "same-origin"}, 200, "", true},
		{"the API from another origin", "POST", flags, []string{SecretHeader, secret, "Origin", "http://evil.example"}, 403, "another origin", false},
		{"the API from another port of this host", "POST", flags, []string{SecretHeader, secret, "Origin", "http://127.0.0.1:1"}, 403, "", false},
		{"a cross-site request without Origin", "GET", flags, []string{SecretHeader, secret, "Sec-Fetch-Site", "cross-site"}, 403, "another site", false},
		{"a same-site one (another port)", "GET", flags, []string{SecretHeader, secret, "Sec-Fetch-Site", "same-site"}, 403, "", false},
		{"a path outside Flagpole's API", "GET", "/k8s/api/v1/namespaces/shop/secrets", []string{SecretHeader, secret}, 403, "Forbidden", false},
		{"pods/exec", "POST", "/k8s/api/v1/namespaces/shop/pods/p/exec", []string{SecretHeader, secret}, 403, "", false},
		{"a preflight", "OPTIONS", flags, []string{SecretHeader, secret}, 403, "", false},
		{"access reviews", "POST", "/k8s/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", []string{SecretHeader, secret}, 200, "", true},
		{"the session without the secret", "GET", "/session", nil, 401, "", false},
		{"the session", "GET", "/session", []string{SecretHeader, secret}, 200, `"namespace":"shop","context":"kind-dev"`, false},
		{"a write to the page", "POST", "/", nil, 405, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.last()
			resp, body := do(t, srv, tc.method, tc.path, tc.header...)
			if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
				t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.body)
			}
			if reached := up.last() != before; reached != tc.reachesAPI {
				t.Errorf("reached the API: %v, want %v", reached, tc.reachesAPI)
			}
			if resp.StatusCode == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("no content security policy: %q", resp.Header.Get("Content-Security-Policy"))
			}
		})
	}
}

// The page's own credentials never reach the cluster: the user's do.
func TestConsoleForwardsOnlyTheUsersCredentials(t *testing.T) {
	srv, up, _ := start(t)
	do(t, srv, "GET", "/k8s/apis/flagpole.dev/v1beta1/namespaces/shop/flags", SecretHeader, srv.Secret(),
		"Authorization", "Bearer someone-elses-token", "Impersonate-User", "admin", "Impersonate-Group", "system:masters",
		"Impersonate-Extra-Scopes", "x", "Cookie", "a=b")
	got := up.last()
	if got == nil {
		t.Fatal("nothing reached the API")
	}
	if a := got.Header.Get("Authorization"); a != "Bearer the-users-token" {
		t.Errorf("Authorization %q, want the user's own", a)
	}
	for _, h := range []string{SecretHeader, "Impersonate-User", "Impersonate-Group", "Impersonate-Extra-Scopes", "Cookie", "Origin"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("%s reached the API: %q", h, v)
		}
	}
}

// A watch streams through the proxy: the first event arrives while the
// response is still open.
func TestConsoleStreamsWatches(t *testing.T) {
	srv, _, _ := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.BaseURL()+"/k8s/apis/flagpole.dev/v1beta1/namespaces/shop/flags?watch=1", nil)
	req.Header.Set(SecretHeader, srv.Secret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatalf("no event before the stream ended: %v", err)
	}
	var ev struct{ Type string }
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type != "ADDED" {
		t.Errorf("event %q: %v", line, err)
	}
}

func TestConsoleListensOnLoopbackOnly(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"}
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", "[::1]:0", "localhost:0", "nonsense"} {
		if _, err := New(Config{REST: cfg, Address: addr}); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
	srv, err := New(Config{REST: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.listener.Close()
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") || !strings.Contains(srv.URL(), "/#secret="+srv.Secret()) || len(srv.Secret()) < 40 {
		t.Errorf("URL %s", srv.URL())
	}
}
