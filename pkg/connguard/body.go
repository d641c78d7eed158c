package connguard

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"time"

	"k8s.io/klog/v2"
)

// preRead reads a request's body before next runs, when it is at most
// PreReadBodyBytes: next (the filter chain, flow control included) then
// never waits on the client while it holds a seat, and a client that sends
// its body slowly holds a goroutine and its stream, not a seat. A body that
// does not arrive within BodyReadTimeout is a 408. A larger body is left to
// the handler, with the same read deadline.
func (g *Guard) preRead(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0 {
			next.ServeHTTP(w, req)
			return
		}
		rc := http.NewResponseController(w)
		if d := g.limits.BodyReadTimeout; d > 0 {
			// Not every writer supports deadlines (a test's recorder does
			// not); the body is then read without one.
			if err := rc.SetReadDeadline(g.clock.Now().Add(d)); err == nil {
				defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
			}
		}
		max := g.limits.PreReadBodyBytes
		if max <= 0 || req.ContentLength > max {
			next.ServeHTTP(w, req)
			return
		}
		var buf bytes.Buffer
		if req.ContentLength > 0 {
			buf.Grow(int(req.ContentLength))
		}
		n, err := buf.ReadFrom(io.LimitReader(req.Body, max+1))
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			g.metrics.slowBodies.Inc()
			klog.V(2).InfoS("Refused a request whose body did not arrive in time", "address", req.RemoteAddr, "timeout", g.limits.BodyReadTimeout, "read", n)
			w.Header().Set("Connection", "close")
			http.Error(w, "the request body did not arrive within "+g.limits.BodyReadTimeout.String(), http.StatusRequestTimeout)
			return
		case err != nil:
			// The client went away or broke the stream: nobody to answer.
			return
		case n > max:
			// Longer than announced (chunked): the handler reads the rest,
			// under the deadline, and upstream's size limit applies.
			req.Body = readCloser{io.MultiReader(&buf, req.Body), req.Body}
		default:
			req.Body.Close()
			req.Body = io.NopCloser(&buf)
		}
		next.ServeHTTP(w, req)
	})
}

type readCloser struct {
	io.Reader
	io.Closer
}
