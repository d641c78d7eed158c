package apiserver

import (
	"net/http"

	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/klog/v2"
)

// healthPaths are the health endpoints anyone authenticated may ask
// (upstream's AlwaysAllowPaths).
var healthPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true}

// withHealthDetail keeps the list of a health endpoint's internal checks
// (?verbose) for those allowed to see it: anyone may ask whether the server
// is healthy, live or ready — probes, load balancers, applications — but
// which checks pass, which fail and why describes the server's insides
// (its datastore, its informers, its post-start hooks). Seeing them needs
// `get` on the non-resource path <endpoint>/verbose (the admin has it in
// standalone mode; in a cluster, whoever RBAC grants it, cluster-admin
// among them); anyone else gets the answer without ?verbose. The individual
// checks (/readyz/<check>) are not in AlwaysAllowPaths and are authorized as
// any path is.
func withHealthDetail(handler http.Handler, authz authorizer.Authorizer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !healthPaths[req.URL.Path] || !req.URL.Query().Has("verbose") || authz == nil {
			handler.ServeHTTP(w, req)
			return
		}
		u, _ := genericapirequest.UserFrom(req.Context())
		decision, _, err := authz.Authorize(req.Context(), authorizer.AttributesRecord{
			User: u, Verb: "get", Path: req.URL.Path + "/verbose", ResourceRequest: false,
		})
		if err != nil {
			klog.V(2).InfoS("Authorizing a verbose health check", "path", req.URL.Path, "err", err)
		}
		if decision != authorizer.DecisionAllow {
			q := req.URL.Query()
			q.Del("verbose")
			r := req.Clone(req.Context())
			r.URL.RawQuery = q.Encode()
			req = r
		}
		handler.ServeHTTP(w, req)
	})
}
