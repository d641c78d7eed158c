// Package connguard defends the server's connections against peers that
// hold them without using them, or use them only to make the server work:
//
//   - listener.go: at most so many connections per client address (past
//     MaxConnectionsPerAddress a connection's first request is answered
//     429 and the connection closed; past twice that it is closed as it is
//     accepted), and a
//     connection that has not started a request within FirstRequestTimeout
//     of being accepted is closed (HTTP/1.1 headers are cut at 32 s
//     upstream; an HTTP/2 connection left with half a frame would otherwise
//     be held for the HTTP/2 idle timeout, 90 s);
//   - resets.go: a connection that resets streams faster than a bound gets
//     GOAWAY, and a request whose stream was reset before it started is not
//     served at all;
//   - body.go: a small request body is read before the request takes a
//     flow-control seat, within a deadline, so that a client that sends its
//     body slowly holds no seat that others need;
//   - drain.go: once shutdown starts, every answer tells its client to
//     leave the connection.
//
// Connections are told apart by their remote address (IP and port), which
// is what an http.Request carries.
package connguard

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Limits bound what one peer may hold.
type Limits struct {
	// MaxConnectionsPerAddress is the most connections one client IP address
	// may have open at once and use; 0 means no limit. A connection past it
	// has its first request answered 429 (with Retry-After, so clients back
	// off) and is closed; past twice it, a connection is closed as it is
	// accepted, before its TLS handshake costs anything.
	MaxConnectionsPerAddress int
	// FirstRequestTimeout closes a connection that has started no request
	// this long after it was accepted; 0 means no limit.
	FirstRequestTimeout time.Duration
	// ResetBurst and ResetsPerSecond bound how fast a connection may reset
	// streams (a token bucket per connection); past them the connection gets
	// GOAWAY. ResetBurst 0 means no limit.
	ResetBurst      int
	ResetsPerSecond float64
	// BodyReadTimeout bounds how long reading a request body may take
	// (0: no bound), and PreReadBodyBytes is the largest body read before the
	// request takes a flow-control seat.
	BodyReadTimeout  time.Duration
	PreReadBodyBytes int64
}

// DefaultLimits leave room for a node's worth of clients behind one address
// (kube-apiserver's aggregator, a NAT) while bounding a single peer.
var DefaultLimits = Limits{
	MaxConnectionsPerAddress: 4096,
	FirstRequestTimeout:      32 * time.Second,
	ResetBurst:               20,
	ResetsPerSecond:          10,
	BodyReadTimeout:          30 * time.Second,
	PreReadBodyBytes:         64 * 1024,
}

// Guard tracks the server's connections: how many each address holds,
// which have started a request, and how fast each resets streams.
type Guard struct {
	limits Limits
	clock  clock.WithDelayedExecution

	mu     sync.Mutex
	byAddr map[string]int          // open connections by client IP
	conns  map[string]*trackedConn // by remote address (ip:port)
	// penalties are the client IPs whose connections were sent away for
	// resetting streams, recently.
	penalties map[string]*penalty
	metrics   *guardMetrics
	// draining is set by Drain (drain.go).
	draining atomic.Bool
}

// penalty slows an address whose connections keep being sent away: its
// new connections wait before their TLS handshake, doubling from
// penaltyBase each time up to penaltyMax, forgotten after penaltyQuiet
// without another.
type penalty struct {
	count int
	last  time.Time
}

const (
	penaltyBase  = 500 * time.Millisecond
	penaltyMax   = 10 * time.Second
	penaltyQuiet = time.Minute
	// sentAwayGrace is how long a connection sent GOAWAY may finish its
	// streams before it is closed.
	sentAwayGrace = 20 * time.Millisecond
)

// New returns a Guard with limits.
func New(limits Limits, c clock.WithDelayedExecution) *Guard {
	return &Guard{limits: limits, clock: c, byAddr: map[string]int{}, conns: map[string]*trackedConn{}, penalties: map[string]*penalty{}, metrics: registeredMetrics()}
}

// Limits are the guard's limits.
func (g *Guard) Limits() Limits { return g.limits }

// Listener wraps l: connections over the per-address limit are closed as
// they are accepted, and connections that start no request in time are
// closed later.
func (g *Guard) Listener(l net.Listener) net.Listener {
	return &listener{Listener: l, g: g}
}

type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.g.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// trackedConn is an accepted connection the guard watches.
type trackedConn struct {
	net.Conn
	g        *Guard
	ip, addr string

	// Guarded by g.mu.
	started bool
	closed  bool
	timer   clock.Timer
	resets  resetBucket

	// overLimit is true for a connection accepted past the per-address
	// limit: its first request is answered 429 and it is closed.
	overLimit bool
	// delay is how long the first read waits: the address's penalty when
	// it was accepted. Read only by the connection's own goroutine.
	delay     time.Duration
	delayDone bool
}

// Read waits out the connection's penalty before its first read (the TLS
// handshake): the client that keeps getting GOAWAY is slowed, and the
// server spends nothing on it meanwhile.
func (c *trackedConn) Read(p []byte) (int, error) {
	if !c.delayDone {
		c.delayDone = true
		if c.delay > 0 {
			<-c.g.clock.After(c.delay)
		}
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) Close() error {
	c.g.forget(c)
	return c.Conn.Close()
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// admit counts c against its address's limit and watches it; nil when it
// was refused (and closed).
func (g *Guard) admit(c net.Conn) *trackedConn {
	addr := c.RemoteAddr().String()
	ip := hostOf(addr)
	g.mu.Lock()
	max := g.limits.MaxConnectionsPerAddress
	if max > 0 && g.byAddr[ip] >= 2*max {
		g.mu.Unlock()
		g.metrics.refusedConnections.Inc()
		klog.V(2).InfoS("Closed a connection over twice the per-address limit", "address", ip, "limit", max)
		c.Close()
		return nil
	}
	now := g.clock.Now()
	tc := &trackedConn{Conn: c, g: g, ip: ip, addr: addr, resets: newResetBucket(g.limits, now), delay: g.penaltyLocked(ip, now),
		overLimit: max > 0 && g.byAddr[ip] >= max}
	g.byAddr[ip]++
	g.conns[addr] = tc
	if d := g.limits.FirstRequestTimeout; d > 0 {
		tc.timer = g.clock.AfterFunc(d, func() { g.firstRequestTimedOut(tc) })
	}
	g.mu.Unlock()
	return tc
}

// penaltyLocked is how long a new connection from ip waits.
func (g *Guard) penaltyLocked(ip string, now time.Time) time.Duration {
	p := g.penalties[ip]
	if p == nil {
		return 0
	}
	if now.Sub(p.last) > penaltyQuiet {
		delete(g.penalties, ip)
		return 0
	}
	d := penaltyBase << min(p.count-1, 10)
	return min(d, penaltyMax)
}

// sendAwayLocked marks c as out of resets and its address as penalised,
// and closes c once it has had sentAwayGrace to take its GOAWAY.
func (g *Guard) sendAwayLocked(c *trackedConn, now time.Time) {
	c.resets.over = true
	p := g.penalties[c.ip]
	if p == nil || now.Sub(p.last) > penaltyQuiet {
		p = &penalty{}
		g.penalties[c.ip] = p
	}
	p.count++
	p.last = now
	g.clock.AfterFunc(sentAwayGrace, func() { c.Close() })
}

func (g *Guard) firstRequestTimedOut(c *trackedConn) {
	g.mu.Lock()
	expired := !c.started && !c.closed
	c.timer = nil // it has fired: nothing to stop
	g.mu.Unlock()
	if expired {
		g.metrics.idleConnections.Inc()
		klog.V(2).InfoS("Closed a connection that started no request", "address", c.addr, "timeout", g.limits.FirstRequestTimeout)
		c.Close()
	}
}

func (g *Guard) forget(c *trackedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	if g.conns[c.addr] == c {
		delete(g.conns, c.addr)
	}
	if g.byAddr[c.ip]--; g.byAddr[c.ip] <= 0 {
		delete(g.byAddr, c.ip)
	}
}

// conn is the tracked connection a request came on, marked as having
// started a request; nil for a connection the guard did not accept (the
// loopback client's in-process transport, say).
func (g *Guard) conn(remoteAddr string) *trackedConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.conns[remoteAddr]
	if c != nil && !c.started {
		c.started = true
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	return c
}
