package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// TestOFREPCORSAndStreamTickets checks OFREP's own CORS policy and the
// browsers' stream tickets against the real filter chain: preflights
// answered before authentication, CORS headers on every answer to an
// allowed origin (a 401 too), ETag exposed even with upstream's
// --cors-allowed-origins set, and a ticket that opens one stream of one
// namespace once.
func TestOFREPCORSAndStreamTickets(t *testing.T) {
	t.Parallel()
	const app = "https://app.example"
	s := startServer(t, "--ofrep-cors-allowed-origins", "cors="+app, "--cors-allowed-origins", "https://app\\.example")
	createOFREPFlags(t, s.Client, "cors")
	token, err := os.ReadFile(standalone.Layout{DataDir: s.DataDir}.AppTokenFile())
	if err != nil {
		t.Fatal(err)
	}
	anonymous, err := rest.HTTPClientFor(&rest.Config{Host: s.AdminConfig.Host, TLSClientConfig: rest.TLSClientConfig{CAFile: s.AdminConfig.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, origin, bearer, body string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.AdminConfig.Host+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := anonymous.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	bulk := "/namespaces/cors/ofrep/v1/evaluate/flags"
	appToken := strings.TrimSpace(string(token))

	// Preflights carry no credentials: answered before authentication.
	resp, _ := send("OPTIONS", bulk, app, "", "", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization,content-type,if-none-match")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "If-None-Match") {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	for _, tc := range []struct{ name, path, origin string }{
		{"another origin", bulk, "https://evil.example"},
		{"another namespace", "/namespaces/other/ofrep/v1/evaluate/flags", app},
	} {
		resp, _ := send("OPTIONS", tc.path, tc.origin, "", "", "Access-Control-Request-Method", "POST")
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: %d %v", tc.name, resp.StatusCode, resp.Header)
		}
	}
	// The API's paths keep upstream's policy (which the server also has).
	if resp, _ := send("GET", "/apis/flagpole.dev/v1beta1/namespaces/cors/flags", app, "", ""); resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Errorf("upstream's CORS on the API paths: %v", resp.Header)
	}

	// An allowed origin's 401 can be read by the page: it says what happened.
	resp, _ = send("POST", bulk, app, "", `{}`)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != app {
		t.Errorf("unauthenticated request from the allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	// Authenticated: OFREP's headers, not upstream's (which exposes only Date).
	resp, body := send("POST", bulk, app, appToken, `{"context":{"targetingKey":"u"}}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Expose-Headers") != "ETag, Retry-After" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "" || resp.Header.Get("ETag") == "" {
		t.Fatalf("bulk from the allowed origin: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	var answer struct {
		EventStreams []struct {
			Endpoint struct {
				RequestURI string `json:"requestUri"`
			} `json:"endpoint"`
		} `json:"eventStreams"`
	}
	if err := json.Unmarshal([]byte(body), &answer); err != nil || len(answer.EventStreams) != 1 {
		t.Fatalf("bulk answer: %v %s", err, body)
	}
	stream := answer.EventStreams[0].Endpoint.RequestURI
	ticket, ok := strings.CutPrefix(stream, "/namespaces/cors/ofrep/v1/events?ticket=")
	if !ok || ticket == "" || strings.Contains(stream, appToken) {
		t.Fatalf("advertised stream %q: want a ticket, and not the token", stream)
	}
	// A ticket opens only its own namespace's stream (and is used up).
	if resp, _ := send("GET", "/namespaces/other/ofrep/v1/events?ticket="+ticket, app, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a ticket on another namespace's stream: %d", resp.StatusCode)
	}
	_, body = send("POST", bulk, app, appToken, `{"context":{"targetingKey":"u"}}`)
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatal(err)
	}
	stream = answer.EventStreams[0].Endpoint.RequestURI

	// The stream opens without a token, as the ticket's user; once.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.AdminConfig.Host+stream, nil)
	req.Header.Set("Origin", app)
	open, err := anonymous.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if open.StatusCode != http.StatusOK || open.Header.Get("Content-Type") != "text/event-stream" || open.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("the ticket's stream: %d %v", open.StatusCode, open.Header)
	}
	if resp, _ := send("GET", stream, app, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the ticket used a second time: %d, want 401", resp.StatusCode)
	}
	cancel()
	open.Body.Close()

	// Clients that are no browser get what they always got.
	resp, body = send("POST", bulk, "", appToken, `{"context":{"targetingKey":"u"}}`)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"requestUri":"/namespaces/cors/ofrep/v1/events"}`) || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("a client without Origin: %d %s", resp.StatusCode, body)
	}
}
