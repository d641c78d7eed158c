package connguard

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

func TestResetBucket(t *testing.T) {
	l := Limits{ResetBurst: 3, ResetsPerSecond: 1}
	now := time.Unix(0, 0)
	b := newResetBucket(l, now)
	for i := range 3 {
		if !b.take(l, now) {
			t.Fatalf("reset %d refused within the burst", i)
		}
	}
	if b.take(l, now) {
		t.Fatal("a reset past the burst allowed")
	}
	if !b.take(l, now.Add(time.Second)) {
		t.Error("no reset allowed a second later")
	}
	if b.take(l, now.Add(time.Second)) {
		t.Error("two resets allowed from one second's refill")
	}
	// The bucket never holds more than the burst.
	b = newResetBucket(l, now)
	later := now.Add(time.Hour)
	for range 3 {
		b.take(l, later)
	}
	if b.take(l, later) {
		t.Error("an hour's rest gave more than the burst")
	}
	if unlimited := (Limits{}); !b.take(unlimited, later) {
		t.Error("ResetBurst 0 limited resets")
	}
}

// pipeListener hands out in-memory connections as if from the addresses
// dialFrom gives them; a goroutine accepts through the guard's listener.
type pipeListener struct {
	conns    chan net.Conn
	accepted chan net.Conn
}

func (p *pipeListener) Accept() (net.Conn, error) {
	c, ok := <-p.conns
	if !ok {
		return nil, net.ErrClosed
	}
	return c, nil
}
func (p *pipeListener) Close() error   { close(p.conns); return nil }
func (p *pipeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

type addrConn struct {
	net.Conn
	remote net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// listen wraps a pipeListener in g's listener and accepts from it until the
// test ends.
func listen(t *testing.T, g *Guard) *pipeListener {
	pl := &pipeListener{conns: make(chan net.Conn, 10), accepted: make(chan net.Conn, 10)}
	l := g.Listener(pl)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			pl.accepted <- c
		}
	}()
	t.Cleanup(func() { pl.Close() })
	return pl
}

// dialFrom connects as if from ip:port; accepted is nil when the guard
// refused the connection.
func dialFrom(t *testing.T, pl *pipeListener, ip string, port int) (client net.Conn, accepted net.Conn) {
	t.Helper()
	server, client := net.Pipe()
	pl.conns <- addrConn{server, &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
	select {
	case c := <-pl.accepted:
		return client, c
	case <-time.After(200 * time.Millisecond):
		return client, nil
	}
}

// Past the limit a connection is accepted but marked (its first request is
// a 429); past twice it, it is closed as it is accepted. Closing one frees
// its place.
func TestListenerPerAddressLimit(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	g := New(Limits{MaxConnectionsPerAddress: 2}, clk)
	pl := listen(t, g)
	var accepted []net.Conn
	for i := range 4 {
		_, c := dialFrom(t, pl, "10.0.0.1", 1000+i)
		if c == nil {
			t.Fatalf("connection %d (of a limit of 2, twice that 4) refused", i)
		}
		accepted = append(accepted, c)
	}
	if !accepted[2].(*trackedConn).overLimit || accepted[1].(*trackedConn).overLimit {
		t.Error("the third connection is not marked over the limit, or the second is")
	}
	client, c := dialFrom(t, pl, "10.0.0.1", 2000)
	if c != nil {
		t.Fatal("a fifth connection (past twice the limit) was accepted")
	}
	if _, err := client.Read(make([]byte, 1)); err != io.EOF && err != io.ErrClosedPipe {
		t.Errorf("the refused connection reads %v, want it closed", err)
	}
	// Another address has limits of its own.
	if _, c := dialFrom(t, pl, "10.0.0.2", 1000); c == nil || c.(*trackedConn).overLimit {
		t.Error("another address was limited")
	}
	accepted[0].Close()
	if _, c := dialFrom(t, pl, "10.0.0.1", 3000); c == nil {
		t.Error("a closed connection did not free its place")
	}
}

// A connection that starts no request within the first-request timeout is
// closed; one that does is not.
func TestFirstRequestTimeout(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	g := New(Limits{FirstRequestTimeout: 30 * time.Second}, clk)
	pl := listen(t, g)
	idleClient, idle := dialFrom(t, pl, "10.0.0.1", 1)
	_, busy := dialFrom(t, pl, "10.0.0.1", 2)
	g.conn(busy.RemoteAddr().String()) // its first request
	clk.Step(31 * time.Second)
	if _, err := idleClient.Read(make([]byte, 1)); err != io.EOF && err != io.ErrClosedPipe {
		t.Errorf("the idle connection reads %v, want it closed", err)
	}
	g.mu.Lock()
	_, busyKept := g.conns[busy.RemoteAddr().String()]
	_, idleKept := g.conns[idle.RemoteAddr().String()]
	g.mu.Unlock()
	if !busyKept || idleKept {
		t.Errorf("tracked after the timeout: busy %v (want true), idle %v (want false)", busyKept, idleKept)
	}
}

// A body that does not arrive within the read timeout is a 408, and the
// handler behind never runs; a body that does is there for the handler.
func TestPreRead(t *testing.T) {
	g := New(Limits{BodyReadTimeout: 200 * time.Millisecond, PreReadBodyBytes: 1024}, clock.RealClock{})
	var got string
	srv := httptest.NewUnstartedServer(g.preRead(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
	})))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()

	resp, err := srv.Client().Post(srv.URL, "application/json", strings.NewReader(`{"context":{}}`))
	if err != nil || resp.StatusCode != 200 || got != `{"context":{}}` {
		t.Fatalf("a whole body: %v %v %q", resp, err, got)
	}
	got = ""
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest("POST", srv.URL, pr)
	req.ContentLength = 100
	go func() { _, _ = pw.Write([]byte("{")) }() // and nothing more
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || got != "" {
		t.Errorf("a body that never arrives: %d, handler saw %q; want 408 and the handler not run", resp.StatusCode, got)
	}
}
