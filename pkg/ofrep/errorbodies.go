package ofrep

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// maxErrorBodyBytes bounds the plain-text error kept to rewrite.
const maxErrorBodyBytes = 4 << 10

// WithErrorBodies wraps the server's handler chain so that an error answered
// to an OFREP path in plain text — by a filter ahead of the OFREP handler,
// such as flow control's 429 "Too many requests", or a 408 for a body that
// did not arrive — reaches the client as an OFREP error body
// ({"errorCode":"GENERAL","errorDetails":...}) that OpenFeature providers
// read, with its status and Retry-After kept. Other paths, and errors that
// already are JSON (the API's Status objects, the OFREP handler's own), are
// passed through untouched.
func WithErrorBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.URL.Path, PathPrefix) || !strings.Contains(req.URL.Path, "/"+ofrepSegment+"/") {
			next.ServeHTTP(w, req)
			return
		}
		ew := &errorBodyWriter{ResponseWriter: w}
		next.ServeHTTP(ew, req)
		ew.finish()
	})
}

type errorBodyWriter struct {
	http.ResponseWriter
	wroteHeader bool
	// rewriting holds the status of a plain-text error being rewritten.
	rewriting int
	text      bytes.Buffer
}

func (w *errorBodyWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader = true
	if code >= http.StatusBadRequest && strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.rewriting = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorBodyWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.rewriting == 0 {
		return w.ResponseWriter.Write(p)
	}
	if room := maxErrorBodyBytes - w.text.Len(); room > 0 {
		w.text.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Flush passes through (the event stream flushes each event).
func (w *errorBodyWriter) Flush() {
	if w.rewriting != 0 {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *errorBodyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *errorBodyWriter) finish() {
	if w.rewriting == 0 {
		return
	}
	h := w.Header()
	h.Del("Content-Length")
	writeJSON(w.ResponseWriter, w.rewriting, failure{ErrorCode: evaluation.ErrorGeneral, ErrorDetails: strings.TrimSpace(w.text.String())})
}
