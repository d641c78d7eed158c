package connguard

import (
	"net/http"
	"runtime"
	"time"

	"k8s.io/klog/v2"
)

// resetBucket is a token bucket of stream resets: a connection may reset
// ResetBurst streams at once and ResetsPerSecond more each second.
type resetBucket struct {
	tokens float64
	last   time.Time
	// over is set once the connection ran out: it is being sent away.
	over bool
}

func newResetBucket(l Limits, now time.Time) resetBucket {
	return resetBucket{tokens: float64(l.ResetBurst), last: now}
}

// take spends a token for a reset; false when there was none left.
func (b *resetBucket) take(l Limits, now time.Time) bool {
	if l.ResetBurst <= 0 {
		return true
	}
	b.tokens += now.Sub(b.last).Seconds() * l.ResetsPerSecond
	if max := float64(l.ResetBurst); b.tokens > max {
		b.tokens = max
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Handler wraps the server's whole handler chain (it must run first, before
// authentication): it tells the guard that a connection started a request,
// and does not serve, but counts, a request whose stream was reset before
// it started. A
// connection that resets streams faster than the limits allow is sent
// GOAWAY ("Connection: close", which Go's HTTP/2 server turns into GOAWAY)
// and its further requests are answered 429 without being served, so that
// a client resetting streams as fast as it opens them (CVE-2023-44487)
// costs the server little more than reading its frames.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if g.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		c := g.conn(req.RemoteAddr)
		if c == nil {
			next.ServeHTTP(w, req)
			return
		}
		if c.overLimit {
			g.metrics.refusedConnections.Inc()
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many connections from this address (--max-connections-per-client-address); reuse a connection or retry", http.StatusTooManyRequests)
			return
		}
		if g.sentAway(c) {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "this connection reset too many streams; open a new connection", http.StatusTooManyRequests)
			return
		}
		// Yield once: a stream opened and reset at once (its RST_STREAM
		// right behind its HEADERS) is then most often seen reset here,
		// instead of in the middle of the chain, where its cancellation
		// costs work and log lines.
		runtime.Gosched()
		if req.Context().Err() != nil {
			// Reset before it started: nothing to serve, nobody to answer.
			g.reset(c, w)
			return
		}
		// A stream reset while it is served is not counted: Go's HTTP/2
		// server cancels a request's context when its stream closes, in
		// the normal course too, so the two cannot be told apart here.
		g.preRead(next).ServeHTTP(w, req)
	})
}

func (g *Guard) sentAway(c *trackedConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return c.resets.over
}

// reset counts a reset stream of c; once c is out of resets it is sent
// away, on this stream's answer (Go's HTTP/2 server starts the GOAWAY when
// a handler's answer says "Connection: close", even for a reset stream).
func (g *Guard) reset(c *trackedConn, w http.ResponseWriter) {
	g.metrics.resetStreams.Inc()
	g.mu.Lock()
	now := g.clock.Now()
	ok := c.resets.take(g.limits, now)
	first := !ok && !c.resets.over
	if first {
		g.sendAwayLocked(c, now)
	}
	g.mu.Unlock()
	if ok {
		return
	}
	if first {
		g.metrics.goAways.Inc()
		klog.InfoS("Sending GOAWAY to a connection that resets streams too fast", "address", c.addr,
			"burst", g.limits.ResetBurst, "perSecond", g.limits.ResetsPerSecond)
	}
	w.Header().Set("Connection", "close")
}
