// Package cluster starts a real control plane on loopback with Flagpole
// delegated and registered through an APIService, as an operator would run
// it: etcd, kube-apiserver (v1.37.2 from hack/build-tools.sh) with
// aggregation set up (front-proxy CA, proxy client certificate), optionally
// kube-controller-manager, and flagpole-apiserver in delegated mode with
// standard flags only (--kubeconfig, delegated authentication and
// authorization, its own etcd prefix or etcd process, a serving certificate
// from a test CA that is the APIService's caBundle), behind an ExternalName
// Service that points at localhost.
//
// The e2e suite (test/e2e) and the bench (test/bench) both start their
// clusters with it.
package cluster

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/durable"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/process"
)

// Names every cluster uses.
const (
	// UserAdmin is the cluster CA's admin certificate (group system:masters).
	UserAdmin = "flagpole-admin"
	// UserFlagpole is the identity flagpole-apiserver runs as: its
	// ServiceAccount's name, granted exactly artifacts/deploy/rbac.yaml.
	UserFlagpole = "system:serviceaccount:flagpole-system:flagpole-apiserver"

	FlagpoleNamespace = "flagpole-system"
	FlagpoleService   = "api"
	// EtcdPrefix is Flagpole's prefix when it shares kube-apiserver's etcd.
	EtcdPrefix = "/flagpole"
	// APIService is the name of Flagpole's APIService.
	APIService = "v1beta1.flagpole.dev"
)

// ServingHosts are the names Flagpole's serving certificate covers: the
// Service the aggregator verifies, and loopback for direct clients.
var ServingHosts = []string{FlagpoleService + "." + FlagpoleNamespace + ".svc", "localhost", "127.0.0.1"}

// Config says what to start.
type Config struct {
	// Dir holds the PKI, data directories, kubeconfigs and logs.
	Dir string
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and kubectl.
	BinDir      string
	FlagpoleBin string
	// RepoRoot is where kubectl applies artifacts/deploy/rbac.yaml from.
	RepoRoot string
	// Users are client-certificate users the cluster CA issues, name →
	// groups, besides UserAdmin (the CA's own admin certificate) and
	// UserFlagpole.
	Users map[string][]string
	// ControllerManager starts kube-controller-manager with the namespace
	// and garbage collector controllers.
	ControllerManager bool
	// OwnEtcd gives Flagpole an etcd process of its own; otherwise it stores
	// in kube-apiserver's etcd under EtcdPrefix.
	OwnEtcd bool
	// FlagpoleArgs are appended to the command line of the Flagpole that
	// Start starts (not to other replicas').
	FlagpoleArgs []string
	// Bootstrap, if set, replaces the default (BootstrapFlagpole: Flagpole's
	// RBAC and Service) after kube-apiserver is ready and before Flagpole
	// starts; it may call BootstrapFlagpole itself.
	Bootstrap func(ctx context.Context) error
}

// Cluster is a running control plane.
type Cluster struct {
	Config

	// EtcdURL is kube-apiserver's etcd; FlagpoleEtcdURL and
	// FlagpoleEtcdPrefix where Flagpole stores.
	EtcdURL            string
	FlagpoleEtcdURL    string
	FlagpoleEtcdPrefix string

	KubePort     int
	KubeHost     string
	FlagpolePort int
	FlagpoleHost string
	// AggregatorPort is the replica's --http1-secure-port, which the
	// APIService names, as artifacts/deploy's does.
	AggregatorPort int

	CA         *standalone.PKI // cluster CA: kube-apiserver's serving cert, client certs
	FrontProxy *standalone.PKI // front-proxy (request-header) CA
	// Serving is the CA that issued the certificate Flagpole serves from
	// ServingCertFile (the APIService's caBundle).
	Serving *standalone.PKI

	// Procs are the processes started, by name. Read it freely once the
	// cluster is up; StartProcess writes it under mu.
	Procs map[string]*process.Process
	mu    sync.Mutex
	order []string
}

// TailBytes is how much of a process's log an error shows.
const TailBytes = 6000

// New prepares a cluster; Start starts it.
func New(cfg Config) *Cluster {
	return &Cluster{Config: cfg, Procs: map[string]*process.Process{}}
}

// Start builds the PKI, starts every component, bootstraps, registers the
// APIService and waits for each step. On error the caller still tears down.
func (c *Cluster) Start(ctx context.Context) error {
	var err error
	if c.CA, err = standalone.EnsurePKI(c.Path("pki", "cluster"), []string{"localhost", "127.0.0.1"}); err != nil {
		return err
	}
	if c.FrontProxy, err = standalone.EnsurePKI(c.Path("pki", "front-proxy"), []string{"localhost"}); err != nil {
		return err
	}
	if err := c.writeIdentities(); err != nil {
		return err
	}
	if c.Serving, err = standalone.EnsurePKI(c.Path("pki", "flagpole-serving"), nil); err != nil {
		return err
	}
	if _, err := c.WriteServingCert(c.Serving); err != nil {
		return err
	}
	if c.EtcdURL, err = c.StartEtcd(ctx, "etcd"); err != nil {
		return err
	}
	c.FlagpoleEtcdURL, c.FlagpoleEtcdPrefix = c.EtcdURL, EtcdPrefix
	if c.OwnEtcd {
		if c.FlagpoleEtcdURL, err = c.StartEtcd(ctx, "etcd-flagpole"); err != nil {
			return err
		}
		c.FlagpoleEtcdPrefix = "/registry"
	}
	bootstrap := c.Bootstrap
	if bootstrap == nil {
		bootstrap = c.BootstrapFlagpole
	}
	steps := []func(context.Context) error{c.startKubeAPIServer, bootstrap}
	if c.ControllerManager {
		steps = append(steps, c.startControllerManager)
	}
	steps = append(steps, c.StartFlagpole, c.RegisterAPIService)
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Path is a path under the cluster's directory.
func (c *Cluster) Path(parts ...string) string {
	return filepath.Join(append([]string{c.Dir}, parts...)...)
}

// StartProcess starts bin (test/process) with its log in logs/<name>.log
// and records it under name, replacing a process of that name that exited.
func (c *Cluster) StartProcess(name, bin string, args ...string) (*process.Process, error) {
	p, err := process.Start(name, c.Path("logs", name+".log"), bin, args...)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if _, ok := c.Procs[name]; !ok {
		c.order = append(c.order, name)
	}
	c.Procs[name] = p
	c.mu.Unlock()
	return p, nil
}

// Teardown stops every process, the last started first.
func (c *Cluster) Teardown() {
	c.mu.Lock()
	order := slices.Clone(c.order)
	c.mu.Unlock()
	for _, name := range slices.Backward(order) {
		c.mu.Lock()
		p := c.Procs[name]
		c.mu.Unlock()
		_ = p.Stop(30 * time.Second)
	}
}

// Logs is the end of every process's log.
func (c *Cluster) Logs() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, name := range c.order {
		p := c.Procs[name]
		fmt.Fprintf(&b, "===== %s (%s) =====\n%s\n", name, p.Log, p.Tail(TailBytes))
	}
	return b.String()
}

// writeIdentities issues a certificate for every user, the front-proxy
// client certificate, and the service-account signing key.
func (c *Cluster) writeIdentities() error {
	users := map[string][]string{UserFlagpole: {"system:serviceaccounts", "system:serviceaccounts:" + FlagpoleNamespace}}
	for u, g := range c.Users {
		users[u] = g
	}
	for user, groups := range users {
		certPEM, keyPEM, err := c.CA.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: user, Organization: groups}, nil)
		if err != nil {
			return err
		}
		if err := writeKeyPair(c.Path("pki", user), certPEM, keyPEM); err != nil {
			return err
		}
	}
	certPEM, keyPEM, err := c.FrontProxy.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: "front-proxy-client"}, nil)
	if err != nil {
		return err
	}
	if err := writeKeyPair(c.Path("pki", "front-proxy-client"), certPEM, keyPEM); err != nil {
		return err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	saPEM, err := keyutil.MarshalPrivateKeyToPEM(saKey)
	if err != nil {
		return err
	}
	return os.WriteFile(c.Path("pki", "service-account.key"), saPEM, 0o600)
}

func writeKeyPair(base string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(base+".crt", certPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(base+".key", keyPEM, 0o600)
}

// Kubeconfig writes (once) a kubeconfig for user against kube-apiserver.
func (c *Cluster) Kubeconfig(user string) string {
	path := c.Path("kubeconfig-" + strings.ReplaceAll(user, ":", "_"))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	certFile, keyFile := c.Path("pki", user+".crt"), c.Path("pki", user+".key")
	if user == UserAdmin {
		certFile, keyFile = c.CA.AdminCertFile(), c.CA.AdminKeyFile()
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: c.KubeHost, CertificateAuthority: c.CA.CACertFile()}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		panic(err)
	}
	return path
}

// RestConfig is user's client configuration for kube-apiserver, unthrottled.
func (c *Cluster) RestConfig(user string) *rest.Config {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig(user))
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	return cfg
}

// Kubectl runs the kubectl of BinDir as user, in RepoRoot.
func (c *Cluster) Kubectl(user string, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", c.Kubeconfig(user), "--cache-dir", c.Path("kubectl-cache-" + strings.ReplaceAll(user, ":", "_"))}, args...)
	cmd := exec.Command(filepath.Join(c.BinDir, "kubectl"), args...)
	cmd.Dir = c.RepoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// StartEtcd starts a one-member etcd named name, data under <Dir>/<name>,
// waits for it to be healthy and returns its client URL.
func (c *Cluster) StartEtcd(ctx context.Context, name string) (string, error) {
	clientPort, err := FreePort()
	if err != nil {
		return "", err
	}
	peerPort, err := FreePort()
	if err != nil {
		return "", err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := c.StartProcess(name, filepath.Join(c.BinDir, "etcd"),
		"--name", name,
		"--data-dir", c.Path(name),
		"--listen-client-urls", url, "--advertise-client-urls", url,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", name+"="+peerURL,
		"--log-level", "warn",
	)
	if err != nil {
		return "", err
	}
	return url, WaitFor(ctx, p, 60*time.Second, func() error {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd health %d", resp.StatusCode)
		}
		return nil
	})
}

func (c *Cluster) startKubeAPIServer(ctx context.Context) error {
	var err error
	if c.KubePort, err = FreePort(); err != nil {
		return err
	}
	c.KubeHost = "https://127.0.0.1:" + strconv.Itoa(c.KubePort)
	pki := func(f string) string { return c.Path("pki", f) }
	p, err := c.StartProcess("kube-apiserver", filepath.Join(c.BinDir, "kube-apiserver"),
		"--etcd-servers", c.EtcdURL,
		"--etcd-prefix", "/registry",
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.KubePort),
		// Endpoints of a loopback address cannot be reconciled.
		"--endpoint-reconciler-type", "none",
		"--tls-cert-file", c.CA.ServingCertFile(),
		"--tls-private-key-file", c.CA.ServingKeyFile(),
		"--client-ca-file", c.CA.CACertFile(),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", pki("service-account.key"),
		"--service-account-signing-key-file", pki("service-account.key"),
		// The aggregator authenticates to extension servers with this
		// certificate and forwards the user in X-Remote-* headers.
		"--requestheader-client-ca-file", c.FrontProxy.CACertFile(),
		"--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", pki("front-proxy-client.crt"),
		"--proxy-client-key-file", pki("front-proxy-client.key"),
		"--enable-aggregator-routing=false",
	)
	if err != nil {
		return err
	}
	admin := c.RestConfig(UserAdmin)
	return WaitFor(ctx, p, 120*time.Second, func() error { return GetOK(admin, "/readyz") })
}

// BootstrapFlagpole creates what an operator would before starting
// Flagpole: its RBAC (artifacts/deploy/rbac.yaml, applied with kubectl) and
// the ExternalName Service the APIService points at.
func (c *Cluster) BootstrapFlagpole(ctx context.Context) error {
	if out, err := c.Kubectl(UserAdmin, "apply", "-f", "artifacts/deploy/rbac.yaml"); err != nil {
		return fmt.Errorf("kubectl apply rbac: %v\n%s", err, out)
	}
	kube, err := kubernetes.NewForConfig(c.RestConfig(UserAdmin))
	if err != nil {
		return err
	}
	_, err = kube.CoreV1().Services(FlagpoleNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: FlagpoleService},
		// The aggregator's resolver sends https://localhost:<APIService port>:
		// no kubelet or kube-proxy needed.
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{})
	return err
}

func (c *Cluster) startControllerManager(context.Context) error {
	_, err := c.StartProcess("kube-controller-manager", filepath.Join(c.BinDir, "kube-controller-manager"),
		"--kubeconfig", c.Kubeconfig(UserAdmin),
		"--authentication-kubeconfig", c.Kubeconfig(UserAdmin),
		"--authorization-kubeconfig", c.Kubeconfig(UserAdmin),
		// The namespace controller deletes aggregated resources of a deleted
		// namespace; the aggregation controller merges Flagpole's
		// flagpole:view and flagpole:edit into view, edit and admin.
		"--controllers", "namespace,garbagecollector,clusterrole-aggregation",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address", "127.0.0.1",
		"--secure-port", "0",
	)
	return err
}

// FlagpoleArgs is the command line of a Flagpole replica in delegated mode
// with standard flags only: every replica runs on the same etcd, prefix and
// serving certificate files, differing in its port and data directory.
func (c *Cluster) FlagpoleArgs(port int, dataDir string) []string {
	kc := c.Kubeconfig(UserFlagpole)
	return []string{
		"--kubeconfig", kc,
		"--authentication-kubeconfig", kc,
		"--authorization-kubeconfig", kc,
		"--etcd-servers", c.FlagpoleEtcdURL,
		"--etcd-prefix", c.FlagpoleEtcdPrefix,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--data-dir", dataDir,
		"--tls-cert-file", c.ServingCertFile(),
		"--tls-private-key-file", c.ServingKeyFile(),
	}
}

// StartFlagpole starts (or restarts) the Flagpole replica on FlagpolePort
// and waits until it is ready, checked directly with the Serving CA.
func (c *Cluster) StartFlagpole(ctx context.Context) error {
	if c.FlagpolePort == 0 {
		var err error
		if c.FlagpolePort, err = FreePort(); err != nil {
			return err
		}
		c.FlagpoleHost = "https://127.0.0.1:" + strconv.Itoa(c.FlagpolePort)
		if c.AggregatorPort, err = FreePort(); err != nil {
			return err
		}
	}
	args := append(c.FlagpoleArgs(c.FlagpolePort, c.Path("flagpole")), "--http1-secure-port", strconv.Itoa(c.AggregatorPort))
	args = append(args, c.Config.FlagpoleArgs...)
	p, err := c.StartProcess("flagpole-apiserver", c.FlagpoleBin, args...)
	if err != nil {
		return err
	}
	ca, err := c.Serving.CAPEM()
	if err != nil {
		return err
	}
	ready := c.DirectConfig(c.FlagpolePort, ca, UserAdmin, "system:masters")
	return WaitFor(ctx, p, 90*time.Second, func() error { return GetOK(ready, "/readyz") })
}

// The files Flagpole serves with --tls-cert-file and --tls-private-key-file.
// The certificate file holds the leaf and its CA, so it also serves as a CA
// file for clients.
func (c *Cluster) ServingCertFile() string {
	return c.Path("flagpole", "certificates", "apiserver.crt")
}

func (c *Cluster) ServingKeyFile() string {
	return c.Path("flagpole", "certificates", "apiserver.key")
}

// WriteServingCert issues a serving certificate from ca and replaces
// Flagpole's key and certificate files with it, each atomically (a temporary
// file renamed over the old one), as certificate rotation tools do. It
// returns the new leaf.
func (c *Cluster) WriteServingCert(ca *standalone.PKI) (*x509.Certificate, error) {
	certPEM, keyPEM, err := ca.Issue(x509.ExtKeyUsageServerAuth, pkix.Name{CommonName: "flagpole-apiserver"}, ServingHosts)
	if err != nil {
		return nil, err
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if err := durable.MkdirAll(filepath.Dir(c.ServingKeyFile()), 0o700); err != nil {
		return nil, err
	}
	if err := durable.WriteFile(c.ServingKeyFile(), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := durable.WriteFile(c.ServingCertFile(), certPEM, 0o600); err != nil {
		return nil, err
	}
	return certs[0], nil
}

// RegisterAPIService registers APIService on AggregatorPort with the
// Serving CA as caBundle (no insecureSkipTLSVerify) and waits for
// Available=True.
func (c *Cluster) RegisterAPIService(ctx context.Context) error {
	ca, err := c.Serving.CAPEM()
	if err != nil {
		return err
	}
	agg, err := aggregator.NewForConfig(c.RestConfig(UserAdmin))
	if err != nil {
		return err
	}
	_, err = agg.ApiregistrationV1().APIServices().Create(ctx, &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: APIService},
		Spec: apiregistrationv1.APIServiceSpec{
			Service:              &apiregistrationv1.ServiceReference{Namespace: FlagpoleNamespace, Name: FlagpoleService, Port: ptr.To(int32(c.AggregatorPort))},
			Group:                "flagpole.dev",
			Version:              "v1beta1",
			CABundle:             ca,
			GroupPriorityMinimum: 1000,
			VersionPriority:      15,
		},
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return c.WaitAPIService(ctx, true, 120*time.Second)
}

// WaitAPIService waits until APIService's Available condition is True (or,
// with available false, False).
func (c *Cluster) WaitAPIService(ctx context.Context, available bool, timeout time.Duration) error {
	agg, err := aggregator.NewForConfig(c.RestConfig(UserAdmin))
	if err != nil {
		return err
	}
	want := apiregistrationv1.ConditionFalse
	if available {
		want = apiregistrationv1.ConditionTrue
	}
	return WaitFor(ctx, nil, timeout, func() error {
		svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, APIService, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range svc.Status.Conditions {
			if cond.Type == apiregistrationv1.Available {
				if cond.Status == want {
					return nil
				}
				return fmt.Errorf("Available=%s: %s: %s", cond.Status, cond.Reason, cond.Message)
			}
		}
		return errors.New("no Available condition yet")
	})
}

// DirectConfig talks to the Flagpole replica on port without kube-apiserver,
// as the aggregator does: the front-proxy client certificate plus X-Remote-*
// headers naming user and groups; caPEM is the bundle that verifies
// Flagpole's serving certificate.
func (c *Cluster) DirectConfig(port int, caPEM []byte, user string, groups ...string) *rest.Config {
	cfg := &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:     caPEM,
			ServerName: FlagpoleService + "." + FlagpoleNamespace + ".svc",
			CertFile:   c.Path("pki", "front-proxy-client.crt"),
			KeyFile:    c.Path("pki", "front-proxy-client.key"),
		},
		QPS: -1, Burst: -1,
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return remoteUser{rt: rt, user: user, groups: groups}
	})
	return cfg
}

type remoteUser struct {
	rt     http.RoundTripper
	user   string
	groups []string
}

func (r remoteUser) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Remote-User", r.user)
	for _, g := range r.groups {
		req.Header.Add("X-Remote-Group", g)
	}
	return r.rt.RoundTrip(req)
}

// GetOK GETs path with cfg and wants 200.
func GetOK(cfg *rest.Config, path string) error {
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	resp, err := client.Get(cfg.Host + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b.String())
	}
	return nil
}

// FreePort is a TCP port on loopback that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitFor polls check until it passes, p (if any) exits, ctx ends or
// timeout passes.
func WaitFor(ctx context.Context, p *process.Process, timeout time.Duration, check func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if p != nil && p.Exited() {
			return false, fmt.Errorf("%s exited: %v\n%s", p.Name, p.Err(), p.Tail(TailBytes))
		}
		last = check()
		return last == nil, nil
	})
	switch {
	case err == nil:
		return nil
	case !wait.Interrupted(err):
		return err
	case p != nil:
		return fmt.Errorf("%s not ready within %s: %v\n%s", p.Name, timeout, last, p.Tail(TailBytes))
	default:
		return fmt.Errorf("not ready within %s: %v", timeout, last)
	}
}
