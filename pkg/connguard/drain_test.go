package connguard

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// After Drain, a client that kept a connection moves to a new one after its
// next answer, over HTTP/1.1 (Connection: close) and HTTP/2 (GOAWAY) alike,
// and no request fails.
func TestDrainSendsClientsAway(t *testing.T) {
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			g := New(Limits{}, clock.RealClock{})
			srv := httptest.NewUnstartedServer(g.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "ok")
			})))
			var mu sync.Mutex
			closed := map[string]bool{} // server side, by the client's address
			srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
				if s == http.StateClosed {
					mu.Lock()
					closed[c.RemoteAddr().String()] = true
					mu.Unlock()
				}
			}
			srv.EnableHTTP2 = tc.http2
			srv.StartTLS()
			defer srv.Close()
			client := srv.Client()

			// get answers a GET and says on which connection (the client's
			// address) and whether that connection was a kept one.
			get := func() (resp *http.Response, local string, reused bool) {
				t.Helper()
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					local, reused = info.Conn.LocalAddr().String(), info.Reused
				}}
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, srv.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err = client.Do(req)
				if err != nil {
					t.Fatalf("a request failed: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d", resp.StatusCode)
				}
				if tc.http2 != (resp.ProtoMajor == 2) {
					t.Fatalf("served over %s", resp.Proto)
				}
				return resp, local, reused
			}

			first, kept, _ := get()
			if first.Close || first.Header.Get("Connection") != "" {
				t.Fatalf("before Drain the answer closes its connection: %v", first.Header)
			}
			if _, again, reused := get(); !reused || again != kept {
				t.Fatalf("before Drain the client did not keep its connection (%s, then %s reused=%v)", kept, again, reused)
			}

			g.Drain()
			resp, on, _ := get()
			if on != kept {
				t.Fatalf("the first request after Drain went to %s, not to the kept connection %s", on, kept)
			}
			if !tc.http2 && !resp.Close {
				t.Errorf("after Drain the answer does not close its connection (Connection: close): %v", resp.Header)
			}
			// The kept connection ends (HTTP/2: GOAWAY, then closed once idle).
			if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
				mu.Lock()
				defer mu.Unlock()
				return closed[kept], nil
			}); err != nil {
				t.Fatalf("the kept connection %s was not closed after the first answer after Drain", kept)
			}
			if _, next, reused := get(); reused || next == kept {
				t.Errorf("after Drain the next request used %s (reused=%v), want a new connection", next, reused)
			}
		})
	}
}
