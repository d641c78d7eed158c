package ofrep

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
)

// CORS is OFREP's own cross-origin policy: which browser origins may call a
// namespace's OFREP endpoints. It is separate from upstream's
// --cors-allowed-origins, which covers the whole API, allows credentials
// and exposes only Date: an OFREP client needs ETag (conditional bulk
// requests) and Retry-After (429), and sends a bearer token, not cookies.
// Nothing else is widened: no credentials mode, only OFREP's paths, methods
// and request headers.
type CORS struct {
	// everywhere are origins allowed in every namespace; anyOrigin is "*".
	everywhere  sets.Set[string]
	anyOrigin   bool
	byNamespace map[string]sets.Set[string]
}

// CORS headers OFREP allows and exposes.
const (
	corsAllowHeaders  = "Authorization, Content-Type, If-None-Match, Last-Event-ID"
	corsExposeHeaders = "ETag, Retry-After"
	// corsMaxAge lets a browser reuse a preflight's answer for 10 minutes.
	corsMaxAge = "600"
)

// ParseCORS reads --ofrep-cors-allowed-origins entries: "ORIGIN" allows it
// in every namespace, "NAMESPACE=ORIGIN" in that namespace only; an origin
// is scheme://host[:port] exactly as browsers send it, or "*" for any.
// No entries: no cross-origin access (nil policy).
func ParseCORS(entries []string) (*CORS, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	c := &CORS{everywhere: sets.New[string](), byNamespace: map[string]sets.Set[string]{}}
	for _, e := range entries {
		namespace, origin, scoped := strings.Cut(e, "=")
		if !scoped {
			namespace, origin = "", e
		}
		if scoped && namespace == "" {
			return nil, fmt.Errorf("%q: empty namespace before =", e)
		}
		if origin != "*" {
			if err := validOrigin(origin); err != nil {
				return nil, fmt.Errorf("%q: %w", e, err)
			}
		}
		switch {
		case !scoped && origin == "*":
			c.anyOrigin = true
		case !scoped:
			c.everywhere.Insert(origin)
		default:
			if c.byNamespace[namespace] == nil {
				c.byNamespace[namespace] = sets.New[string]()
			}
			c.byNamespace[namespace].Insert(origin)
		}
	}
	return c, nil
}

// validOrigin accepts what a browser sends as Origin: a scheme, a host and
// an optional port, nothing more.
func validOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil ||
		origin != u.Scheme+"://"+u.Host {
		return fmt.Errorf("not an origin: write scheme://host[:port], e.g. https://shop.example.com")
	}
	if origin != strings.ToLower(origin) {
		return fmt.Errorf("write the origin in lower case, as browsers send it")
	}
	return nil
}

// allows reports whether origin may call namespace's OFREP endpoints.
func (c *CORS) allows(namespace, origin string) bool {
	if c == nil {
		return false
	}
	return c.anyOrigin || c.everywhere.Has(origin) || c.byNamespace[namespace].Has(origin)
}

// WithCORS applies the policy to OFREP paths and hands everything else to
// next untouched. It goes outside the whole filter chain: a preflight
// carries no credentials, so it is answered here, before authentication
// would refuse it. An allowed origin's requests get the policy's headers,
// and their Origin is removed before next sees them, so that upstream's CORS
// filter does not replace the headers. A refused origin's preflight is 403
// without CORS headers; its other requests go on without them (the browser
// then withholds the answer from the page).
func WithCORS(next http.Handler, c *CORS) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		origin := req.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, req)
			return
		}
		rt := parsePath(req.URL.Path)
		if rt.endpoint == endpointNone {
			next.ServeHTTP(w, req)
			return
		}
		req.Header.Del(allowedOriginHeader)
		preflight := req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != ""
		h := w.Header()
		h.Add("Vary", "Origin")
		if !c.allows(rt.namespace, origin) {
			if preflight {
				http.Error(w, "origin not allowed to call OFREP in this namespace", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, req)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		if preflight {
			h.Set("Access-Control-Allow-Methods", rt.method())
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		req = req.Clone(req.Context())
		req.Header.Del("Origin")
		req.Header.Set(allowedOriginHeader, origin)
		next.ServeHTTP(w, req)
	})
}

// allowedOriginHeader tells the handler, behind the filter chain, that the
// request came from a browser origin the policy allows: it then gives the
// bulk answer an event stream a browser can open, with a ticket (see
// tickets.go). A client that sends it itself gets what a browser gets: a
// ticket for its own identity, nothing more.
const allowedOriginHeader = "X-Flagpole-Ofrep-Origin"

// method is the one HTTP method the endpoint answers.
func (r route) method() string {
	if r.endpoint == endpointEvents {
		return http.MethodGet
	}
	return http.MethodPost
}
