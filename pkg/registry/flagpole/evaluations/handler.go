package evaluations

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/audit"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	"k8s.io/apiserver/pkg/endpoints/metrics"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"

	requestmetrics "k8s.io/apiserver/pkg/endpoints/handlers/metrics"
)

var (
	evaluateGVR    = v1beta1.SchemeGroupVersion.WithResource("flags")
	evaluateGVK    = v1beta1.SchemeGroupVersion.WithKind("EvaluationRequest")
	evaluatePrefix = "/apis/" + v1beta1.SchemeGroupVersion.String() + "/namespaces/"
	createOptsGVK  = metav1.SchemeGroupVersion.WithKind("CreateOptions")
)

// DirectEvaluate answers the common flags/evaluate request — an
// EvaluationRequest with no query parameters, asking for a plain media type
// back (JSON, YAML, protobuf) — inside the handler chain (after
// authentication, audit, flow control and authorization) but without the
// generic create handler: no go-restful dispatch, no versioning decoder, no
// goroutine per request. Everything else about the request is the generic
// handler's: the same strict decoding, defaulting and conversion, audit of
// the request and response objects, mutating and validating admission,
// EvaluateREST.Create, the negotiated response writer and the
// apiserver_request_* metrics under the same labels. Any request it would
// not answer exactly as the generic handler does — an unsupported content
// type, a query (dryRun, fieldValidation, pretty), media type parameters in
// Accept, an unknown or duplicate field, another apiVersion or kind, a body
// over the limit, one that does not decode — goes to the generic handler
// with its body intact, so only the answer's cost differs.
type DirectEvaluate struct {
	target atomic.Pointer[directTarget]
}

type directTarget struct {
	rest    *EvaluateREST
	admit   admission.Interface
	scheme  *runtime.Scheme
	codecs  runtime.NegotiatedSerializer
	objects admission.ObjectInterfaces
	maxBody int64
}

// Serve starts answering with r: until it is called, every request goes to
// the generic handler. admit is the server's admission chain, maxBody its
// request body limit, equivalent its equivalent-resource registry (for
// webhooks' matchPolicy).
func (d *DirectEvaluate) Serve(r *EvaluateREST, admit admission.Interface, scheme *runtime.Scheme, codecs runtime.NegotiatedSerializer, equivalent runtime.EquivalentResourceMapper, maxBody int64) {
	t := &directTarget{
		rest: r, admit: admit, scheme: scheme, codecs: codecs, maxBody: maxBody,
		objects: &admission.RuntimeObjectInterfaces{
			ObjectCreater: scheme, ObjectTyper: scheme, ObjectDefaulter: scheme, ObjectConvertor: scheme,
			EquivalentResourceMapper: equivalent,
		},
	}
	d.target.Store(t)
}

// Wrap returns next with the direct path in front of it. next is the
// server's API handler (go-restful and the other muxes).
func (d *DirectEvaluate) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t := d.target.Load()
		if t == nil {
			next.ServeHTTP(w, req)
			return
		}
		info, ok := directRequest(req)
		if !ok {
			next.ServeHTTP(w, req)
			return
		}
		obj, size, ok := t.decode(req)
		if !ok {
			next.ServeHTTP(w, req)
			return
		}
		// The labels go-restful's route for flags/evaluate records under.
		metrics.InstrumentHandlerFunc(http.MethodPost, flagpole.GroupName, v1beta1.SchemeGroupVersion.Version, "flags", "evaluate",
			"resource", metrics.APIServerComponent, false, "",
			func(w http.ResponseWriter, req *http.Request) { t.evaluate(w, req, info, obj, size) })(w, req)
	})
}

// directRequest says whether req is a flags/evaluate request the direct path
// may answer; OFREP's paths carry the same request attributes, so the path
// itself is checked too.
func directRequest(req *http.Request) (*genericapirequest.RequestInfo, bool) {
	if req.Method != http.MethodPost || req.URL.RawQuery != "" || !strings.HasPrefix(req.URL.Path, evaluatePrefix) {
		return nil, false
	}
	info, ok := genericapirequest.RequestInfoFrom(req.Context())
	if !ok || !info.IsResourceRequest || info.Verb != "create" || info.APIGroup != flagpole.GroupName ||
		info.APIVersion != v1beta1.SchemeGroupVersion.Version || info.Resource != "flags" || info.Subresource != "evaluate" ||
		info.Name == "" || info.Namespace == "" || len(info.Parts) != 3 {
		return nil, false
	}
	// Media type parameters (as=Table, pretty) are where the generic
	// handler's output negotiation differs from a plain object's.
	if strings.Contains(req.Header.Get("Accept"), ";") {
		return nil, false
	}
	return info, true
}

// decode reads and decodes the body with the serializer the generic handler
// would pick, in its strict form (the default fieldValidation, Warn, decodes
// strictly and turns what strictness finds into warnings: the direct path
// leaves such bodies to it). When decode does not answer, req.Body again
// reads what the client sent.
func (t *directTarget) decode(req *http.Request) (*flagpole.EvaluationRequest, int, bool) {
	// Refusals (415, 406) are the generic handler's to word.
	info, err := negotiation.NegotiateInputSerializer(req, false, t.codecs)
	if err != nil || info.StrictSerializer == nil {
		return nil, 0, false
	}
	if _, _, err := negotiation.NegotiateOutputMediaType(req, t.codecs, negotiation.DefaultEndpointRestrictions); err != nil {
		return nil, 0, false
	}
	// As upstream's limitedReadBody: a limit of 0 or less is none.
	body := io.Reader(req.Body)
	if t.maxBody > 0 {
		body = io.LimitReader(req.Body, t.maxBody+1)
	}
	data, readErr := io.ReadAll(body)
	replay := func() {
		rest := req.Body
		if readErr != nil {
			// The generic handler meets the same error where it reads.
			rest = io.NopCloser(errReader{readErr})
		}
		req.Body = readCloser{io.MultiReader(bytes.NewReader(data), rest), req.Body}
	}
	if readErr != nil || (t.maxBody > 0 && int64(len(data)) > t.maxBody) {
		replay()
		return nil, 0, false
	}
	in := &v1beta1.EvaluationRequest{}
	decoded, gvk, err := info.StrictSerializer.Decode(data, &evaluateGVK, in)
	if err != nil || decoded != in || gvk == nil || *gvk != evaluateGVK {
		// Another kind or version, strict findings, or a body that does not
		// decode: the generic handler's errors and warnings say which.
		replay()
		return nil, 0, false
	}
	t.scheme.Default(in)
	out := &flagpole.EvaluationRequest{}
	if err := t.scheme.Convert(in, out, nil); err != nil {
		replay()
		return nil, 0, false
	}
	req.Body.Close()
	return out, len(data), true
}

// evaluate is the generic create handler's sequence for one decoded request.
func (t *directTarget) evaluate(w http.ResponseWriter, req *http.Request, info *genericapirequest.RequestInfo, obj *flagpole.EvaluationRequest, size int) {
	gv := v1beta1.SchemeGroupVersion
	ctx := genericapirequest.WithNamespace(req.Context(), info.Namespace)
	requestmetrics.RecordRequestBodySize(ctx, evaluateGVR.GroupResource(), requestmetrics.Create, size)

	admit := admission.WithAudit(t.admit)
	audit.LogRequestObject(ctx, obj, gv, evaluateGVR, info.Subresource, t.codecs)
	user, _ := genericapirequest.UserFrom(ctx)
	options := &metav1.CreateOptions{}
	options.SetGroupVersionKind(createOptsGVK)
	attrs := admission.NewAttributesRecord(obj, nil, evaluateGVK, info.Namespace, info.Name, evaluateGVR, info.Subresource, admission.Create, options, false, user)
	if m, ok := admit.(admission.MutationInterface); ok && m.Handles(admission.Create) {
		if err := m.Admit(ctx, attrs, t.objects); err != nil {
			responsewriters.ErrorNegotiated(err, t.codecs, gv, w, req)
			return
		}
	}
	result, err := t.rest.Create(ctx, info.Name, obj, rest.AdmissionToValidateObjectFunc(admit, attrs, t.objects), options)
	if err != nil {
		responsewriters.ErrorNegotiated(err, t.codecs, gv, w, req)
		return
	}
	responsewriters.WriteObjectNegotiated(t.codecs, negotiation.DefaultEndpointRestrictions, gv, w, req, http.StatusCreated, result, false)
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readCloser reads the replayed body and closes the original.
type readCloser struct {
	io.Reader
	io.Closer
}
