package ofrep

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// MaxRequestBytes caps an OFREP request body: the context cap plus room for
// the envelope. A larger body is refused with 413 before it is parsed.
const MaxRequestBytes = evaluation.MaxContextBytes + 1024

// Evaluator answers evaluations from the server's in-memory flag state.
type Evaluator interface {
	// Evaluate answers one flag; found is false when the namespace has no such flag.
	Evaluate(ctx context.Context, namespace, key string, c *evaluation.Context) (res v1beta1.FlagEvaluation, found bool)
	// EvaluateAll answers every flag of the namespace, ordered by key.
	EvaluateAll(ctx context.Context, namespace string, c *evaluation.Context) []v1beta1.FlagEvaluation
}

// Handler serves every namespace's OFREP endpoints. Mount it at PathPrefix
// on the generic server's non-go-restful mux, behind the filter chain.
type Handler struct {
	evaluator Evaluator
	changes   *Changes
	// NotFound answers paths under PathPrefix that are not OFREP's.
	NotFound http.Handler
	// bulk lets identical bulk evaluations in flight at once (every
	// listener re-fetching after the same change event) share one.
	bulk singleflight.Group
	// Tickets, when set, gives browser origins an event stream they can
	// open (tickets.go).
	Tickets *StreamTickets
}

// NewHandler returns the OFREP handler. changes feeds the event stream and
// may be nil, in which case no event stream is advertised.
func NewHandler(e Evaluator, changes *Changes, notFound http.Handler) *Handler {
	return &Handler{evaluator: e, changes: changes, NotFound: notFound}
}

// evaluationRequest is OFREP's request body for both evaluation endpoints.
type evaluationRequest struct {
	Context json.RawMessage `json:"context"`
}

// success is one successful evaluation. value is omitted when the flag
// serves no variant (DEFAULT or DISABLED without a default), which tells the
// provider to use the code default (OFREP ADR-0006).
type success struct {
	Key      string          `json:"key"`
	Value    json.RawMessage `json:"value,omitempty"`
	Reason   string          `json:"reason"`
	Variant  string          `json:"variant,omitempty"`
	Metadata metadata        `json:"metadata"`
}

// metadata traces an answer to a flag revision. OFREP metadata values are
// booleans, strings or numbers only. flagSetId and version are the names
// OpenFeature SDKs' telemetry hooks read into feature_flag.set.id and
// feature_flag.version (strings both): the namespace, and the generation.
type metadata struct {
	FlagSetID       string `json:"flagSetId,omitempty"`
	Version         string `json:"version,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Generation      int64  `json:"generation,omitempty"`
	Rule            string `json:"rule,omitempty"`
	Override        string `json:"override,omitempty"`
}

// failure is one failed evaluation, or (without key) a failed request.
type failure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails,omitempty"`
}

// eventStream advertises the SSE change stream (OFREP ADR-0008). The endpoint
// form lets the provider resolve it against the base URL's origin.
type eventStream struct {
	Type     string              `json:"type"`
	Endpoint eventStreamEndpoint `json:"endpoint"`
}

type eventStreamEndpoint struct {
	RequestURI string `json:"requestUri"`
}

type bulkResponse struct {
	Flags        []any         `json:"flags"`
	EventStreams []eventStream `json:"eventStreams,omitempty"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rt := parsePath(req.URL.Path)
	switch rt.endpoint {
	case endpointFlag:
		if allow(w, req, http.MethodPost) {
			h.serveFlag(w, req, rt)
		}
	case endpointFlags:
		if allow(w, req, http.MethodPost) {
			h.serveFlags(w, req, rt)
		}
	case endpointEvents:
		if h.changes == nil {
			h.NotFound.ServeHTTP(w, req)
			return
		}
		if allow(w, req, http.MethodGet) {
			h.changes.serveEvents(w, req, rt)
		}
	default:
		h.NotFound.ServeHTTP(w, req)
	}
}

func allow(w http.ResponseWriter, req *http.Request, method string) bool {
	if req.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	writeJSON(w, http.StatusMethodNotAllowed, failure{ErrorCode: evaluation.ErrorGeneral,
		ErrorDetails: fmt.Sprintf("%s is not allowed here; use %s", req.Method, method)})
	return false
}

// readContext reads and parses the request's evaluation context. A failure
// has been answered when ok is false. raw is the context as sent.
func readContext(w http.ResponseWriter, req *http.Request, key string) (c *evaluation.Context, raw []byte, ok bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxRequestBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, failure{Key: key, ErrorCode: evaluation.ErrorInvalidContext,
				ErrorDetails: fmt.Sprintf("the request body is larger than %d bytes", MaxRequestBytes)})
			return nil, nil, false
		}
		writeJSON(w, http.StatusBadRequest, failure{Key: key, ErrorCode: evaluation.ErrorParse, ErrorDetails: err.Error()})
		return nil, nil, false
	}
	var er evaluationRequest
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &er); err != nil {
			writeJSON(w, http.StatusBadRequest, failure{Key: key, ErrorCode: evaluation.ErrorParse,
				ErrorDetails: "the request body must be a JSON object {\"context\": {...}}: " + err.Error()})
			return nil, nil, false
		}
	}
	// An absent context is an empty one; anything sent must be an object.
	if er.Context == nil {
		return &evaluation.Context{Attributes: map[string]any{}}, nil, true
	}
	c, err = evaluation.ParseContext(er.Context)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, failure{Key: key, ErrorCode: evaluation.ErrorInvalidContext, ErrorDetails: err.Error()})
		return nil, nil, false
	}
	return c, er.Context, true
}

func (h *Handler) serveFlag(w http.ResponseWriter, req *http.Request, rt route) {
	c, _, ok := readContext(w, req, rt.key)
	if !ok {
		return
	}
	res, found := h.evaluator.Evaluate(req.Context(), rt.namespace, rt.key, c)
	switch {
	case !found:
		writeJSON(w, http.StatusNotFound, failure{Key: rt.key, ErrorCode: evaluation.ErrorFlagNotFound,
			ErrorDetails: fmt.Sprintf("flag %q not found in namespace %q", rt.key, rt.namespace)})
	case res.ErrorCode != "":
		writeJSON(w, http.StatusBadRequest, toFailure(res))
	default:
		writeJSON(w, http.StatusOK, toSuccess(rt.namespace, res))
	}
}

// bulkAnswer is an encoded bulk evaluation, as sent and gzipped.
type bulkAnswer struct {
	// resp is what body encodes, for answers that differ by requester
	// (a browser's ticket); shared, so never modified.
	resp          bulkResponse
	body, gzipped []byte
	etag          string
}

// gzipMinBytes is the smallest answer worth compressing.
const gzipMinBytes = 1024

func (h *Handler) serveFlags(w http.ResponseWriter, req *http.Request, rt route) {
	c, raw, ok := readContext(w, req, "")
	if !ok {
		return
	}
	// Requests in flight at once for the same namespace and context bytes
	// get the same answer: evaluated once, encoded once, compressed once.
	// Only concurrent requests share (nothing is cached): each request was
	// authorized by itself, and the answer is the state of that moment for
	// all of them. The evaluation does not stop with the first requester's
	// connection, which would fail the others; CEL is bounded by
	// evaluation.RequestTimeLimit regardless.
	key := rt.namespace + "\x00" + string(raw)
	v, err, shared := h.bulk.Do(key, func() (any, error) {
		return h.evaluateAll(context.WithoutCancel(req.Context()), rt, c)
	})
	if shared {
		ofrepMetrics.sharedBulk.Inc()
	}
	if err != nil {
		klog.ErrorS(err, "Encoding an OFREP bulk evaluation", "namespace", rt.namespace)
		writeJSON(w, http.StatusInternalServerError, failure{ErrorCode: evaluation.ErrorGeneral, ErrorDetails: "encoding the response failed"})
		return
	}
	a := v.(*bulkAnswer)
	if h.Tickets != nil && h.changes != nil && req.Header.Get(allowedOriginHeader) != "" {
		h.serveBrowserFlags(w, req, rt, a.resp, a.etag)
		return
	}
	body, etag := a.body, a.etag
	w.Header().Add("Vary", "Accept-Encoding")
	if a.gzipped != nil && acceptsGzip(req.Header.Get("Accept-Encoding")) {
		// Another representation, another entity tag (RFC 9110 8.8.3).
		body, etag = a.gzipped, gzipETag(a.etag)
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("ETag", etag)
	if ifNoneMatch(req.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// evaluateAll evaluates and encodes a bulk answer.
func (h *Handler) evaluateAll(ctx context.Context, rt route, c *evaluation.Context) (*bulkAnswer, error) {
	results := h.evaluator.EvaluateAll(ctx, rt.namespace, c)
	resp := bulkResponse{Flags: make([]any, 0, len(results))}
	for _, res := range results {
		if res.ErrorCode != "" {
			resp.Flags = append(resp.Flags, toFailure(res))
		} else {
			resp.Flags = append(resp.Flags, toSuccess(rt.namespace, res))
		}
	}
	if h.changes != nil {
		resp.EventStreams = []eventStream{{Type: "sse", Endpoint: eventStreamEndpoint{RequestURI: rt.eventsPath()}}}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, err
	}
	// The ETag is a digest of the answer itself: every flag's value, variant,
	// reason and revision for this context. It changes exactly when the
	// answer would, whatever caused it (a flag, segment or override change, an
	// override expiring, a rule reading `now`), and never matches an answer
	// that differs (unlike a digest of configuration alone).
	a := &bulkAnswer{resp: resp, body: body, etag: bodyETag(body)}
	if len(body) >= gzipMinBytes {
		var buf bytes.Buffer
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(&buf)
		if _, err := zw.Write(body); err == nil && zw.Close() == nil {
			a.gzipped = buf.Bytes()
		}
		gzipWriters.Put(zw)
	}
	return a, nil
}

var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// gzipETag is the entity tag of the gzipped representation of the answer
// tagged etag.
func gzipETag(etag string) string {
	return strings.TrimSuffix(etag, `"`) + `-gzip"`
}

func bodyETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// ifNoneMatch reports whether the If-None-Match header names etag or its
// gzipped representation's (weak comparison, RFC 9110 13.1.2), or is "*".
func ifNoneMatch(header, etag string) bool {
	gz := gzipETag(etag)
	for _, candidate := range strings.Split(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag || candidate == gz {
			return true
		}
	}
	return false
}

func toSuccess(namespace string, res v1beta1.FlagEvaluation) success {
	s := success{
		Key:     res.Key,
		Reason:  res.Reason,
		Variant: res.Variant,
		Metadata: metadata{
			FlagSetID:       namespace,
			Version:         strconv.FormatInt(res.Metadata.Generation, 10),
			ResourceVersion: res.Metadata.ResourceVersion,
			Generation:      res.Metadata.Generation,
			Rule:            res.Metadata.Rule,
			Override:        res.Metadata.Override,
		},
	}
	if res.Value != nil {
		s.Value = res.Value.Raw
	}
	return s
}

func toFailure(res v1beta1.FlagEvaluation) failure {
	return failure{Key: res.Key, ErrorCode: res.ErrorCode, ErrorDetails: res.ErrorMessage}
}

// encodingFailed is the body of a response whose own encoding failed: a
// failure with no key, encoded once, when the package loads.
var encodingFailed = func() []byte {
	body, err := json.Marshal(failure{ErrorCode: evaluation.ErrorGeneral})
	if err != nil {
		panic(err)
	}
	return body
}()

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		klog.ErrorS(err, "Encoding an OFREP response")
		code, body = http.StatusInternalServerError, encodingFailed
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
