// Package framework starts a real Flagpole server in-process, on embedded
// etcd and a kernel-chosen port, for integration tests.
package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/wait"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/rest"
	netutils "k8s.io/utils/net"

	"github.com/flagpole-dev/flagpole/pkg/cmd"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// Server is a running in-process Flagpole.
type Server struct {
	DataDir string
	// AdminConfig authenticates with the admin client certificate.
	AdminConfig *rest.Config
	// Client is a generated clientset for AdminConfig.
	Client clientset.Interface
	// HTTP1Host is the HTTP/1.1-only port's https://host:port, when the
	// server was started with one (StartServerWithHTTP1).
	HTTP1Host string

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// StartServer runs Flagpole in standalone mode with its data in dataDir and
// waits until /readyz passes. The server stops when the test ends.
func StartServer(t testing.TB, dataDir string, extraArgs ...string) *Server {
	t.Helper()
	return start(t, dataDir, false, extraArgs)
}

// StartServerWithHTTP1 is StartServer with an HTTP/1.1-only port as well
// (--http1-secure-port), on a free port.
func StartServerWithHTTP1(t testing.TB, dataDir string, extraArgs ...string) *Server {
	t.Helper()
	return start(t, dataDir, true, extraArgs)
}

func start(t testing.TB, dataDir string, http1 bool, extraArgs []string) *Server {
	t.Helper()
	listener, port, err := genericoptions.CreateListener("tcp", "127.0.0.1:0", net.ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	o := cmd.NewOptions()
	fs := pflag.NewFlagSet("flagpole-apiserver", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(append([]string{"--data-dir", dataDir}, extraArgs...)); err != nil {
		t.Fatal(err)
	}
	o.RecommendedOptions.SecureServing.Listener = listener
	var http1Host string
	if http1 {
		l, port, err := genericoptions.CreateListener("tcp", "127.0.0.1:0", net.ListenConfig{})
		if err != nil {
			t.Fatal(err)
		}
		o.HTTP1Listener = l
		http1Host = "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	o.RecommendedOptions.SecureServing.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
	completed, err := o.Complete()
	if err != nil {
		t.Fatal(err)
	}
	if err := completed.Validate(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{DataDir: dataDir, HTTP1Host: http1Host, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- completed.Run(ctx) }()
	t.Cleanup(func() { s.Stop(t) })

	pki := standalone.Layout{DataDir: dataDir}.PKI()
	s.AdminConfig = &rest.Config{
		Host: "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		TLSClientConfig: rest.TLSClientConfig{
			CAFile:   pki.CACertFile(),
			CertFile: pki.AdminCertFile(),
			KeyFile:  pki.AdminKeyFile(),
		},
		QPS:   -1, // no client-side throttling in tests
		Burst: -1,
	}
	if err := s.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Client = clientset.NewForConfigOrDie(s.AdminConfig)
	return s
}

// waitReady polls /readyz until it passes. The admin certificate appears
// only once the server's Config has created the PKI, so the client is built
// inside the poll.
func (s *Server) waitReady(timeout time.Duration) error {
	var httpClient *http.Client
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-s.done:
			s.done <- err
			return false, fmt.Errorf("server exited before it was ready: %v", err)
		default:
		}
		if httpClient == nil {
			c, err := rest.HTTPClientFor(s.AdminConfig)
			if err != nil {
				last = err.Error()
				return false, nil
			}
			httpClient = c
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.AdminConfig.Host+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == http.StatusOK, nil
	})
	if wait.Interrupted(err) {
		return fmt.Errorf("server not ready after %s: %s", timeout, last)
	}
	return err
}

// Stop shuts the server down (drain, then etcd) and waits for it to exit. It
// may be called more than once.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("server exited with %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("server did not stop within 60s")
		}
	})
}
