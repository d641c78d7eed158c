//go:build hostile

package hostile

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// TestPartialFrames: connections that complete TLS and the HTTP/2 preface,
// then send half a frame and drip a byte now and then, are closed once they
// have started no request within --first-request-timeout, not after the
// HTTP/2 idle timeout (90 s).
func TestPartialFrames(t *testing.T) {
	const timeout = 4 * time.Second
	s := startServer(t, "--first-request-timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	held := make([]time.Duration, 20)
	errs := make([]error, len(held))
	for i := range held {
		wg.Go(func() { held[i], errs[i] = PartialFrame(ctx, s.addr, s.app, time.Second) })
	}
	wg.Wait()
	for i, d := range held {
		if errs[i] != nil {
			t.Fatalf("connection %d: %v", i, errs[i])
		}
		if d < timeout-time.Second || d > timeout+3*time.Second {
			t.Errorf("connection %d with half a frame was held %s, want about the first-request timeout %s", i, d, timeout)
		}
	}
	t.Logf("20 connections with half a frame held %s..%s", minOf(held), maxOf(held))
}

// TestConnectionsPerAddress: past --max-connections-per-client-address a
// connection's first request is answered 429 with Retry-After, past twice
// it a connection is closed as it is accepted; a client already connected
// is served throughout.
func TestConnectionsPerAddress(t *testing.T) {
	const limit = 20
	s := startServer(t, "--max-connections-per-client-address", "20", "--first-request-timeout", "20s")
	connected := s.client(s.admin)
	get := func(c *http.Client) (int, error) {
		resp, err := c.Get("https://" + s.addr + "/apis/flagpole.dev/v1beta1/namespaces/default/flags")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(connected); err != nil || code != http.StatusOK {
		t.Fatalf("before: %d %v", code, err)
	}
	// Idle TCP connections up to three times the limit (the probe holds one).
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 3 * limit {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	// Those past twice the limit are closed at once: their read ends, the
	// others' times out.
	var closed atomic.Int32
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
				closed.Add(1)
			}
		})
	}
	wg.Wait()
	// The probe holds one connection from this address and the server's own
	// loopback client (its controllers) a few more.
	if want := int32(3*limit - (2*limit - 1)); closed.Load() < want-1 || closed.Load() > want+4 {
		t.Errorf("%d of %d idle connections closed at once, want about %d (those past twice the limit of %d)", closed.Load(), len(idle), want, limit)
	}
	// Below twice the limit again, a new client over the limit gets a 429
	// that says why.
	for _, c := range idle[limit:] {
		c.Close()
	}
	var last string
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		code, err := get(s.client(s.admin))
		last = fmt.Sprintf("%d %v", code, err)
		return code == http.StatusTooManyRequests, nil
	}); err != nil {
		t.Errorf("a new connection past the limit: %s, want 429", last)
	}
	// The client already connected is served.
	if code, err := get(connected); err != nil || code != http.StatusOK {
		t.Errorf("the connected client during the flood: %d %v", code, err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}

func maxOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}
