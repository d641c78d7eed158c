// Package ofrep serves the OpenFeature Remote Evaluation Protocol (OFREP)
// for one namespace at a time under /namespaces/{namespace}/ofrep/v1/, so that
// every OpenFeature SDK's OFREP provider, given the base URL
// https://<flagpole>/namespaces/<namespace>, evaluates Flagpole flags.
//
// The handler runs behind the generic server's whole filter chain. The
// RequestInfoResolver below gives each OFREP path the attributes of the
// Kubernetes API it mirrors — a single evaluation is `create` on
// `flags/evaluate` for that flag, a bulk evaluation (and its event stream) is
// `create` on `evaluations` — so authentication, authorization, audit, flow
// control and metrics apply unchanged and one RBAC Role covers both APIs.
package ofrep

import (
	"net/http"
	"strings"

	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// PathPrefix is where every namespace's OFREP base URL starts.
const PathPrefix = "/namespaces/"

const (
	ofrepSegment = "ofrep"
	ofrepVersion = "v1"
)

type endpoint int

const (
	endpointNone endpoint = iota
	// endpointFlag is POST …/ofrep/v1/evaluate/flags/{key}.
	endpointFlag
	// endpointFlags is POST …/ofrep/v1/evaluate/flags (bulk).
	endpointFlags
	// endpointEvents is GET …/ofrep/v1/events, the SSE change stream.
	endpointEvents
)

// route is a parsed OFREP path.
type route struct {
	endpoint  endpoint
	namespace string
	key       string
}

// parsePath recognises /namespaces/{ns}/ofrep/v1/{evaluate/flags[/{key}]|events}.
// It does not validate the names: it runs several times per request (request
// attributes, the long-running check of several filters, the handler), and a
// name that is not valid simply finds no flag. RequestInfoResolver validates.
func parsePath(path string) route {
	rest, ok := strings.CutPrefix(path, PathPrefix)
	if !ok {
		return route{}
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 4 || parts[1] != ofrepSegment || parts[2] != ofrepVersion {
		return route{}
	}
	r := route{namespace: parts[0]}
	switch tail := parts[3:]; {
	case len(tail) == 1 && tail[0] == "events":
		r.endpoint = endpointEvents
	case len(tail) == 2 && tail[0] == "evaluate" && tail[1] == "flags":
		r.endpoint = endpointFlags
	case len(tail) == 3 && tail[0] == "evaluate" && tail[1] == "flags" && tail[2] != "":
		r.key = tail[2]
		r.endpoint = endpointFlag
	default:
		return route{}
	}
	return r
}

func (r route) eventsPath() string {
	return PathPrefix + r.namespace + "/" + ofrepSegment + "/" + ofrepVersion + "/events"
}

// RequestInfoResolver gives OFREP paths the request attributes of the
// flagpole.dev resources they mirror and leaves every other path to next.
type RequestInfoResolver struct {
	Next genericapirequest.RequestInfoResolver
}

var _ genericapirequest.RequestInfoResolver = RequestInfoResolver{}

// NewRequestInfo implements genericapirequest.RequestInfoResolver.
func (r RequestInfoResolver) NewRequestInfo(req *http.Request) (*genericapirequest.RequestInfo, error) {
	rt := parsePath(req.URL.Path)
	// Only valid names get a resource's attributes; anything else is an
	// ordinary non-resource path to authorize (and the handler finds nothing).
	if rt.endpoint == endpointNone || len(apimachineryvalidation.ValidateNamespaceName(rt.namespace, false)) > 0 ||
		(rt.endpoint == endpointFlag && len(apimachineryvalidation.NameIsDNSSubdomain(rt.key, false)) > 0) {
		return r.Next.NewRequestInfo(req)
	}
	info := &genericapirequest.RequestInfo{
		IsResourceRequest: true,
		Path:              req.URL.Path,
		// Whatever the HTTP method, an OFREP call is an evaluation: the
		// permission asked for is to create one. A wrong method is answered
		// 405 by the handler, after authorization.
		Verb:       "create",
		APIPrefix:  "apis",
		APIGroup:   v1beta1.GroupName,
		APIVersion: v1beta1.SchemeGroupVersion.Version,
		Namespace:  rt.namespace,
		Parts:      []string{"evaluations"},
		Resource:   "evaluations",
	}
	if rt.endpoint == endpointFlag {
		info.Resource, info.Subresource, info.Name = "flags", "evaluate", rt.key
		info.Parts = []string{"flags", rt.key, "evaluate"}
	}
	return info, nil
}

// IsLongRunning reports the OFREP event stream, which must escape the
// request timeout and must not hold a flow-control seat for its lifetime.
func IsLongRunning(req *http.Request) bool {
	// Several filters ask for every request: answer most with one suffix test.
	return strings.HasSuffix(req.URL.Path, "/events") && parsePath(req.URL.Path).endpoint == endpointEvents
}
