package integration

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// shutdownDelay is the server's --shutdown-delay-duration here: it keeps
// serving that long after shutdown starts.
const shutdownDelay = 5 * time.Second

// Once shutdown starts, a client with a kept connection (HTTP/1.1 and
// HTTP/2) is sent to a new one while the server still serves, long before
// the shutdown delay ends, and none of its requests fails meanwhile: behind
// a Service, its next connection reaches another replica instead of this
// one after the delay (upstream's 503 "apiserver is shutting down").
func TestShutdownSendsKeptConnectionsAway(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		http2 bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, "--shutdown-delay-duration", shutdownDelay.String())
			tlsConfig, err := rest.TLSConfigFor(s.AdminConfig)
			if err != nil {
				t.Fatal(err)
			}
			transport := &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: tc.http2}
			if !tc.http2 {
				transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer transport.CloseIdleConnections()
			client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

			// get answers /version and says on which connection.
			get := func() (status int, closes bool, local string) {
				t.Helper()
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { local = info.Conn.LocalAddr().String() }}
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, s.AdminConfig.Host+"/version", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("a request during the shutdown delay failed: %v", err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if tc.http2 != (resp.ProtoMajor == 2) {
					t.Fatalf("served over %s", resp.Proto)
				}
				return resp.StatusCode, resp.Close, local
			}
			if status, closes, _ := get(); status != http.StatusOK || closes {
				t.Fatalf("before shutdown: %d, connection closed %v", status, closes)
			}
			_, _, kept := get()

			stopped := make(chan struct{})
			started := time.Now()
			go func() {
				defer close(stopped)
				s.Stop(t)
			}()
			// Within the delay the client is on a new connection, and every
			// request until then succeeded.
			if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, shutdownDelay/2, true, func(context.Context) (bool, error) {
				status, _, local := get()
				if status != http.StatusOK {
					t.Fatalf("during the shutdown delay: %d", status)
				}
				return local != kept, nil
			}); err != nil {
				t.Fatalf("%s after shutdown began the client still uses its kept connection %s", time.Since(started).Round(time.Millisecond), kept)
			}
			t.Logf("on a new connection %s after shutdown began (delay %s)", time.Since(started).Round(time.Millisecond), shutdownDelay)
			if !tc.http2 {
				if _, closes, _ := get(); !closes {
					t.Error("an answer during the shutdown delay does not close its connection (Connection: close)")
				}
			}
			<-stopped
		})
	}
}
