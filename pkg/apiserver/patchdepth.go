package apiserver

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// MaxPatchDepth bounds how deeply a PATCH body of a Flagpole object may nest:
// an object's own structure (at most six levels around a variant value, a
// JSON patch's operation list adds two) plus MaxJSONDepth for the value.
// Upstream's merge-patch code takes time quadratic in the depth (a 20 KB
// body nested 10,000 levels costs seconds of CPU) before anything of ours
// sees the result, so the body is measured first; a POST or PUT of the same
// value is refused by validation in milliseconds.
const MaxPatchDepth = flagpole.MaxJSONDepth + 16

// withPatchDepthLimit answers 422 for a JSON PATCH body of a flagpole.dev
// resource that nests deeper than MaxPatchDepth. It runs after
// authentication and authorization, so only authorized writers' bodies are
// read; the body is read at most up to the server's request size limit.
func withPatchDepthLimit(handler http.Handler, maxBodyBytes int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		info, ok := genericapirequest.RequestInfoFrom(req.Context())
		if !ok || req.Method != http.MethodPatch || !info.IsResourceRequest || info.APIGroup != flagpole.GroupName ||
			!strings.Contains(req.Header.Get("Content-Type"), "json") {
			handler.ServeHTTP(w, req)
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxBodyBytes+1))
		req.Body.Close()
		if err != nil {
			responsewriters.ErrorNegotiated(apierrors.NewBadRequest(err.Error()), Codecs, schema.GroupVersion{}, w, req)
			return
		}
		// Too large or not JSON: upstream answers those itself.
		d, err := flagpole.ScanJSONValue(body)
		if err != nil {
			responsewriters.ErrorNegotiated(apierrors.NewBadRequest("the patch holds a "+err.Error()), Codecs, schema.GroupVersion{}, w, req)
			return
		}
		if d.Depth > MaxPatchDepth {
			status := apierrors.NewInvalid(schema.GroupKind{Group: flagpole.GroupName, Kind: "Patch"}, info.Name, nil)
			status.ErrStatus.Message = fmt.Sprintf("the patch nests %d levels deep; at most %d are allowed (values at most %d)", d.Depth, MaxPatchDepth, flagpole.MaxJSONDepth)
			responsewriters.ErrorNegotiated(status, Codecs, schema.GroupVersion{}, w, req)
			return
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		handler.ServeHTTP(w, req)
	})
}
