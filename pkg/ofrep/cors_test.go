package ofrep

import (
	"net/http"
	"strings"
	"testing"
)

func TestParseCORS(t *testing.T) {
	c, err := ParseCORS([]string{"https://shop.example.com", "dev=http://localhost:3000", "dev=http://127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		namespace, origin string
		want              bool
	}{
		{"any", "https://shop.example.com", true},
		{"dev", "https://shop.example.com", true},
		{"dev", "http://localhost:3000", true},
		{"prod", "http://localhost:3000", false},
		{"dev", "http://localhost:3001", false},
		{"dev", "https://shop.example.com.evil.org", false},
		{"dev", "null", false},
	} {
		if got := c.allows(tc.namespace, tc.origin); got != tc.want {
			t.Errorf("allows(%q, %q) = %v, want %v", tc.namespace, tc.origin, got, tc.want)
		}
	}
	any, err := ParseCORS([]string{"*"})
	if err != nil || !any.allows("x", "https://anything.test") {
		t.Errorf("* allows every origin: %v", err)
	}
	if c, err := ParseCORS(nil); c != nil || err != nil {
		t.Errorf("no entries: %v %v, want no policy", c, err)
	}
	for _, bad := range []string{"shop.example.com", "https://shop.example.com/", "https://shop.example.com/path", "ftp://x", "=https://x", "https://u@x", "https://x?q", "https://X"} {
		if _, err := ParseCORS([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWithCORS(t *testing.T) {
	c, err := ParseCORS([]string{"apps=https://app.example"})
	if err != nil {
		t.Fatal(err)
	}
	// next records what reached the chain behind the policy.
	var reached *http.Request
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = r
		w.Header().Set("ETag", `"x"`)
		w.WriteHeader(http.StatusUnauthorized) // as authentication would, for a preflight
	})
	h := WithCORS(next, c)
	bulk := "/namespaces/apps/ofrep/v1/evaluate/flags"
	events := "/namespaces/apps/ofrep/v1/events"

	for _, tc := range []struct {
		name, method, path, origin string
		preflight                  bool
		code                       int
		allowOrigin, methods       string
		reachesChain               bool
	}{
		{"allowed preflight, answered before authentication", "OPTIONS", bulk, "https://app.example", true, 204, "https://app.example", "POST", false},
		{"allowed preflight of the event stream", "OPTIONS", events, "https://app.example", true, 204, "https://app.example", "GET", false},
		{"preflight from another origin", "OPTIONS", bulk, "https://evil.example", true, 403, "", "", false},
		{"preflight for another namespace", "OPTIONS", "/namespaces/other/ofrep/v1/evaluate/flags", "https://app.example", true, 403, "", "", false},
		{"allowed request", "POST", bulk, "https://app.example", false, 401, "https://app.example", "", true},
		{"refused origin's request: no CORS headers", "POST", bulk, "https://evil.example", false, 401, "", "", true},
		{"not OFREP: untouched", "OPTIONS", "/apis/flagpole.dev/v1beta1", "https://app.example", true, 401, "", "", true},
		{"no Origin: untouched", "POST", bulk, "", false, 401, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached = nil
			header := []string{}
			if tc.origin != "" {
				header = append(header, "Origin", tc.origin)
			}
			if tc.preflight {
				header = append(header, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type, if-none-match")
			}
			rec := serve(t, h, tc.method, tc.path, "", header...)
			if rec.Code != tc.code {
				t.Errorf("status %d, want %d", rec.Code, tc.code)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			if got := rec.Header().Get("Access-Control-Allow-Methods"); got != tc.methods {
				t.Errorf("Access-Control-Allow-Methods %q, want %q", got, tc.methods)
			}
			if rec.Header().Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials mode allowed: OFREP clients send a bearer token, not cookies")
			}
			if (reached != nil) != tc.reachesChain {
				t.Fatalf("reached the chain: %v, want %v", reached != nil, tc.reachesChain)
			}
			if tc.preflight && tc.code == 204 {
				for _, h := range []string{"Authorization", "If-None-Match", "Content-Type"} {
					if !strings.Contains(rec.Header().Get("Access-Control-Allow-Headers"), h) {
						t.Errorf("preflight does not allow %s: %q", h, rec.Header().Get("Access-Control-Allow-Headers"))
					}
				}
			}
			if tc.allowOrigin != "" && !tc.preflight {
				if got := rec.Header().Get("Access-Control-Expose-Headers"); got != "ETag, Retry-After" {
					t.Errorf("Access-Control-Expose-Headers %q, want ETag, Retry-After", got)
				}
				// Upstream's CORS filter must not see the Origin (it would
				// replace the headers); the handler learns it was allowed.
				if reached.Header.Get("Origin") != "" || reached.Header.Get(allowedOriginHeader) != tc.origin {
					t.Errorf("behind the policy: Origin %q, %s %q", reached.Header.Get("Origin"), allowedOriginHeader, reached.Header.Get(allowedOriginHeader))
				}
			}
			if reached != nil && tc.allowOrigin == "" && reached.Header.Get(allowedOriginHeader) != "" {
				t.Errorf("a refused origin's request is marked allowed")
			}
		})
	}

	// A client cannot mark its own request allowed by a refused origin.
	reached = nil
	serve(t, h, "POST", bulk, "", "Origin", "https://evil.example", allowedOriginHeader, "https://app.example")
	if reached == nil || reached.Header.Get(allowedOriginHeader) != "" {
		t.Errorf("a forged %s reached the handler", allowedOriginHeader)
	}
}
