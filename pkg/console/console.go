// Package console is the web console `kubectl flagpole console` serves: a
// page (embedded assets, package assets) on a loopback port, and a proxy
// that forwards the page's API requests to the cluster with the user's
// kubeconfig credentials (k8s.io/kubectl's proxy handler, as `kubectl
// proxy` does) — through kube-apiserver when Flagpole is delegated — so
// the browser never holds a credential and sees exactly what RBAC allows the
// user. A per-run secret and Host/Origin checks (guard) keep other local
// users and web pages out. docs/console.md has the design.
package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/proxy"

	"github.com/flagpole-dev/flagpole/pkg/console/assets"
)

const (
	// apiPrefix is where the page reaches the cluster's API:
	// /k8s/apis/flagpole.dev/... is /apis/flagpole.dev/... of the cluster.
	apiPrefix = "/k8s/"
	// sessionPath tells the page whom and where it works for.
	sessionPath = "/session"
)

// Only these API paths are forwarded: Flagpole's group (its discovery,
// objects, subresources and watches), access reviews for the controls, and
// listing namespaces for the namespace picker. Anything else of the
// user's cluster (secrets, pods/exec, ...) is refused, whatever RBAC allows.
const (
	acceptPaths = `^/apis/flagpole\.dev(/.*)?$,` +
		`^/apis/authorization\.k8s\.io/v1/selfsubjectaccessreviews$,` +
		`^/api/v1/namespaces$`
	// Methods the page uses: everything else (CONNECT, OPTIONS for a
	// preflight, TRACE) is refused.
	rejectMethods = `^(?:CONNECT|OPTIONS|TRACE)$`
)

// Config is what a console serves.
type Config struct {
	// REST is the user's client configuration: the credentials the proxy
	// sends, never the browser.
	REST *rest.Config
	// Namespace is the namespace the page opens on.
	Namespace string
	// Context names the kubeconfig context, for the page's header.
	Context string
	// Address is where to listen; a loopback address, "127.0.0.1:0" (a
	// port the kernel picks) by default.
	Address string
}

// Server is a running console.
type Server struct {
	listener net.Listener
	server   *http.Server
	secret   string
}

// Session is what GET /session tells the page.
type Session struct {
	Namespace string `json:"namespace"`
	Context   string `json:"context,omitempty"`
	Server    string `json:"server"`
}

// New listens on cfg.Address and prepares the console; Serve serves it.
func New(cfg Config) (*Server, error) {
	if cfg.REST == nil {
		return nil, errors.New("console: no client configuration")
	}
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("console address %q: %w", cfg.Address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return nil, fmt.Errorf("console address %q: the console listens on an IPv4 loopback address only (127.0.0.1)", cfg.Address)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	filter := &proxy.FilterServer{
		AcceptPaths:   proxy.MakeRegexpArrayOrDie(acceptPaths),
		RejectPaths:   nil,
		AcceptHosts:   proxy.MakeRegexpArrayOrDie(proxy.DefaultHostAcceptRE),
		RejectMethods: proxy.MakeRegexpArrayOrDie(rejectMethods),
	}
	api, err := proxy.NewProxyHandler(apiPrefix, filter, cfg.REST, 0, false)
	if err != nil {
		return nil, fmt.Errorf("console proxy: %w", err)
	}
	streams, err := newWatches(cfg.REST)
	if err != nil {
		return nil, fmt.Errorf("console watches: %w", err)
	}
	listener, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	_, port, _ := net.SplitHostPort(listener.Addr().String())

	static, err := fs.Sub(assets.FS, assets.Dir)
	if err != nil {
		listener.Close()
		return nil, err
	}
	session, err := json.Marshal(Session{Namespace: cfg.Namespace, Context: cfg.Context, Server: cfg.REST.Host})
	if err != nil {
		listener.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(apiPrefix, stripBrowserHeaders(api))
	mux.Handle(watchesPath, streams)
	mux.Handle(sessionPath, readOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(session)
	})))
	mux.Handle("/", readOnly(http.FileServerFS(static)))

	s := &Server{listener: listener, secret: base64.RawURLEncoding.EncodeToString(secret)}
	s.server = &http.Server{
		Handler:           &guard{port: port, secret: []byte(s.secret), next: mux},
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: the page's watches stream for as long as it is open.
	}
	return s, nil
}

// URL is the address to open: the console's page, with the run's secret in
// the fragment, which browsers never send to a server (nor put in a
// Referer), so it stays out of logs; the page keeps it in its tab's session
// storage.
func (s *Server) URL() string {
	return s.BaseURL() + "/#secret=" + url.QueryEscape(s.secret)
}

// BaseURL is the console's origin, without the secret.
func (s *Server) BaseURL() string {
	return "http://" + s.listener.Addr().String()
}

// Secret is the run's secret (for tests that drive the API paths directly).
func (s *Server) Secret() string { return s.secret }

// Serve serves until ctx ends, then closes (open watches end with it).
func (s *Server) Serve(ctx context.Context) error {
	errs := make(chan error, 1)
	go func() { errs <- s.server.Serve(s.listener) }()
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.server.Shutdown(shutdown); err != nil {
		klog.V(2).InfoS("Console shutdown: closing open streams", "err", err)
		_ = s.server.Close()
	}
	if err := <-errs; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readOnly answers only GET and HEAD.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			refuse(w, http.StatusMethodNotAllowed, r.Method+" is not allowed here")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// stripBrowserHeaders removes what the browser sent that must not reach the
// cluster: the console's secret, and any credential or identity the page
// could add (the proxy's transport adds the user's own only when the
// request has none, so an Authorization header from the page would replace
// them; Impersonate-* would ask for someone else's permissions).
func stripBrowserHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del(SecretHeader)
		r.Header.Del("Authorization")
		r.Header.Del("Cookie")
		r.Header.Del("Origin")
		r.Header.Del("Referer")
		for name := range r.Header {
			if len(name) > len("Impersonate-") && http.CanonicalHeaderKey(name[:len("Impersonate-")]) == "Impersonate-" {
				r.Header.Del(name)
			}
		}
		next.ServeHTTP(w, r)
	})
}
