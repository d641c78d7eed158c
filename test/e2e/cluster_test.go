//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/process"
)

// cluster is a real control plane on loopback: etcd, kube-apiserver,
// kube-controller-manager, and flagpole-apiserver in delegated mode.
type cluster struct {
	dir         string
	binDir      string
	flagpoleBin string

	etcdURL      string
	kubePort     int
	flagpolePort int
	kubeHost     string

	ca         *standalone.PKI // cluster CA: serving cert, client certs
	frontProxy *standalone.PKI // front-proxy (request-header) CA
	// serving is the CA that issued the certificate Flagpole serves from
	// servingCertFile (the APIService's caBundle); rotation replaces it.
	serving *standalone.PKI

	procs   map[string]*process.Process
	procsMu sync.Mutex
}

// Users of the e2e cluster, each a client certificate from the cluster CA.
const (
	userAdmin     = "flagpole-admin" // group system:masters
	userNobody    = "alice"          // no role at all
	userReader    = "bob"            // Role: get, list, watch flags
	userEvaluator = "carol"          // Role: create flags/evaluate only
	// flagpole-apiserver authenticates as its ServiceAccount would, so the
	// e2e grants it exactly artifacts/deploy/rbac.yaml.
	userFlagpole = "system:serviceaccount:flagpole-system:flagpole-apiserver"
)

// tailBytes is how much of a process's log a failure shows.
const tailBytes = 6000

const (
	flagpoleNamespace = "flagpole-system"
	flagpoleService   = "api"
	etcdPrefix        = "/flagpole"
)

func (c *cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.dir}, parts...)...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) start(name string, bin string, args ...string) (*process.Process, error) {
	p, err := process.Start(name, c.path("logs", name+".log"), bin, args...)
	if err != nil {
		return nil, err
	}
	c.procsMu.Lock()
	c.procs[name] = p
	c.procsMu.Unlock()
	return p, nil
}

func (c *cluster) teardown() {
	// Reverse dependency order: flagpole and kcm first, etcd last.
	for _, name := range []string{"flagpole-apiserver", "kube-controller-manager", "kube-apiserver", "etcd"} {
		c.procsMu.Lock()
		p := c.procs[name]
		c.procsMu.Unlock()
		if p != nil {
			_ = p.Stop(30 * time.Second)
		}
	}
}

func (c *cluster) logs() string {
	var b strings.Builder
	for name, p := range c.procs {
		fmt.Fprintf(&b, "===== %s (%s) =====\n%s\n", name, p.Log, p.Tail(tailBytes))
	}
	return b.String()
}

// newCluster builds the PKI, starts every component and waits for each.
func newCluster(ctx context.Context, dir, binDir, flagpoleBin string) (*cluster, error) {
	c := &cluster{dir: dir, binDir: binDir, flagpoleBin: flagpoleBin, procs: map[string]*process.Process{}}
	var err error
	if c.ca, err = standalone.EnsurePKI(c.path("pki", "cluster"), []string{"localhost", "127.0.0.1"}); err != nil {
		return nil, err
	}
	if c.frontProxy, err = standalone.EnsurePKI(c.path("pki", "front-proxy"), []string{"localhost"}); err != nil {
		return nil, err
	}
	if err := c.writeIdentities(); err != nil {
		return nil, err
	}
	if c.serving, err = standalone.EnsurePKI(c.path("pki", "flagpole-serving"), nil); err != nil {
		return nil, err
	}
	if _, err := c.writeServingCert(c.serving); err != nil {
		return nil, err
	}
	for _, step := range []func(context.Context) error{
		c.startEtcd, c.startKubeAPIServer, c.bootstrap, c.startControllerManager, c.startFlagpole, c.registerAPIService,
	} {
		if err := step(ctx); err != nil {
			return c, err
		}
	}
	return c, nil
}

// writeIdentities issues a certificate and a kubeconfig for every user, the
// front-proxy client certificate, and the service-account signing key.
func (c *cluster) writeIdentities() error {
	users := map[string][]string{
		userNobody:    nil,
		userReader:    nil,
		userEvaluator: nil,
		userFlagpole:  {"system:serviceaccounts", "system:serviceaccounts:flagpole-system"},
	}
	for user, groups := range users {
		certPEM, keyPEM, err := c.ca.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: user, Organization: groups}, nil)
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.path("pki", user+".crt"), certPEM, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(c.path("pki", user+".key"), keyPEM, 0o600); err != nil {
			return err
		}
	}
	certPEM, keyPEM, err := c.frontProxy.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: "front-proxy-client"}, nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(c.path("pki", "front-proxy-client.crt"), certPEM, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(c.path("pki", "front-proxy-client.key"), keyPEM, 0o600); err != nil {
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
	return os.WriteFile(c.path("pki", "service-account.key"), saPEM, 0o600)
}

// kubeconfig writes a kubeconfig for user (admin uses the CA's admin certificate).
func (c *cluster) kubeconfig(user string) string {
	path := c.path("kubeconfig-" + strings.ReplaceAll(user, ":", "_"))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	certFile, keyFile := c.path("pki", user+".crt"), c.path("pki", user+".key")
	if user == userAdmin {
		certFile, keyFile = c.ca.AdminCertFile(), c.ca.AdminKeyFile()
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: c.kubeHost, CertificateAuthority: c.ca.CACertFile()}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile}
	cfg.Contexts["e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "e2e"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		panic(err)
	}
	return path
}

func (c *cluster) restConfig(user string) *rest.Config {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.kubeconfig(user))
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = -1, -1
	return cfg
}

func (c *cluster) startEtcd(ctx context.Context) error {
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	c.etcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	p, err := c.start("etcd", filepath.Join(c.binDir, "etcd"),
		"--name", "e2e",
		"--data-dir", c.path("etcd"),
		"--listen-client-urls", c.etcdURL, "--advertise-client-urls", c.etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2e="+peerURL,
		"--log-level", "warn",
	)
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 60*time.Second, func() error {
		resp, err := http.Get(c.etcdURL + "/health")
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

func (c *cluster) startKubeAPIServer(ctx context.Context) error {
	var err error
	if c.kubePort, err = freePort(); err != nil {
		return err
	}
	c.kubeHost = "https://127.0.0.1:" + strconv.Itoa(c.kubePort)
	pki := func(f string) string { return c.path("pki", f) }
	p, err := c.start("kube-apiserver", filepath.Join(c.binDir, "kube-apiserver"),
		"--etcd-servers", c.etcdURL,
		"--etcd-prefix", "/registry",
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(c.kubePort),
		// Endpoints of a loopback address cannot be reconciled.
		"--endpoint-reconciler-type", "none",
		"--tls-cert-file", c.ca.ServingCertFile(),
		"--tls-private-key-file", c.ca.ServingKeyFile(),
		"--client-ca-file", c.ca.CACertFile(),
		"--authorization-mode", "RBAC",
		"--service-cluster-ip-range", "10.96.0.0/24",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", pki("service-account.key"),
		"--service-account-signing-key-file", pki("service-account.key"),
		// The aggregator authenticates to extension servers with this
		// certificate and forwards the user in X-Remote-* headers.
		"--requestheader-client-ca-file", c.frontProxy.CACertFile(),
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
	admin := c.restConfig(userAdmin)
	return waitFor(ctx, p, 120*time.Second, func() error { return getOK(admin, "/readyz") })
}

func (c *cluster) startControllerManager(context.Context) error {
	_, err := c.start("kube-controller-manager", filepath.Join(c.binDir, "kube-controller-manager"),
		"--kubeconfig", c.kubeconfig(userAdmin),
		"--authentication-kubeconfig", c.kubeconfig(userAdmin),
		"--authorization-kubeconfig", c.kubeconfig(userAdmin),
		// The namespace controller deletes aggregated resources of a deleted namespace.
		"--controllers", "namespace,garbagecollector",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address", "127.0.0.1",
		"--secure-port", "0",
	)
	return err
}

// startFlagpole runs flagpole-apiserver in delegated mode with nothing but
// standard flags.
func (c *cluster) startFlagpole(ctx context.Context) error {
	if c.flagpolePort == 0 {
		var err error
		if c.flagpolePort, err = freePort(); err != nil {
			return err
		}
	}
	p, err := c.start("flagpole-apiserver", c.flagpoleBin, c.flagpoleArgs(c.flagpolePort, c.path("flagpole"), c.auditLog())...)
	if err != nil {
		return err
	}
	return waitFor(ctx, p, 90*time.Second, func() error {
		return getOK(c.directFlagpoleConfig(userAdmin, "system:masters"), "/readyz")
	})
}

// flagpoleArgs is the command line of a Flagpole replica in delegated mode:
// every replica of the e2e (startFlagpole's, and those of
// TestTwoReplicasRollingRestart) runs with the same flags, on the same etcd
// and prefix and serving certificate files, differing only in its port, data
// directory and audit log.
func (c *cluster) flagpoleArgs(port int, dataDir, auditLog string) []string {
	kc := c.kubeconfig(userFlagpole)
	return []string{
		"--kubeconfig", kc,
		"--authentication-kubeconfig", kc,
		"--authorization-kubeconfig", kc,
		"--etcd-servers", c.etcdURL,
		"--etcd-prefix", etcdPrefix,
		"--bind-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(port),
		"--data-dir", dataDir,
		"--tls-cert-file", c.servingCertFile(),
		"--tls-private-key-file", c.servingKeyFile(),
		"--audit-policy-file", c.auditPolicy(),
		"--audit-log-path", auditLog,
		"--max-requests-inflight", "4",
		"--max-mutating-requests-inflight", "2",
	}
}

func (c *cluster) auditLog() string { return c.path("flagpole-audit.log") }

func (c *cluster) auditPolicy() string {
	path := c.path("audit-policy.yaml")
	policy := `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "update", "patch", "delete", "deletecollection"]
  resources:
  - group: flagpole.dev
- level: None
`
	if err := os.WriteFile(path, []byte(policy), 0o644); err != nil {
		panic(err)
	}
	return path
}

// servingHosts are the names Flagpole's serving certificate covers: the
// Service the aggregator verifies, and loopback for direct clients.
var servingHosts = []string{flagpoleService + "." + flagpoleNamespace + ".svc", "localhost", "127.0.0.1"}

// The files Flagpole serves with --tls-cert-file and --tls-private-key-file.
// The certificate file holds the leaf and its CA, so it also serves as a CA
// file for clients (test/e2e/ofrep_test.go uses it so).
func (c *cluster) servingCertFile() string {
	return c.path("flagpole", "certificates", "apiserver.crt")
}

func (c *cluster) servingKeyFile() string {
	return c.path("flagpole", "certificates", "apiserver.key")
}

// writeServingCert issues a serving certificate from ca and replaces
// Flagpole's key and certificate files with it, each atomically (a temporary
// file renamed over the old one), as certificate rotation tools do. It
// returns the new leaf.
func (c *cluster) writeServingCert(ca *standalone.PKI) (*x509.Certificate, error) {
	certPEM, keyPEM, err := ca.Issue(x509.ExtKeyUsageServerAuth, pkix.Name{CommonName: "flagpole-apiserver"}, servingHosts)
	if err != nil {
		return nil, err
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(c.servingKeyFile(), keyPEM); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(c.servingCertFile(), certPEM); err != nil {
		return nil, err
	}
	return certs[0], nil
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// servingCA is the bundle the APIService trusts: the CA that issued the
// certificate Flagpole serves.
func (c *cluster) servingCA() ([]byte, error) {
	return c.serving.CAPEM()
}

// directFlagpoleConfig talks to flagpole without kube-apiserver, as the
// aggregator does: front-proxy client certificate plus X-Remote-* headers.
func (c *cluster) directFlagpoleConfig(user string, groups ...string) *rest.Config {
	return c.directFlagpoleConfigAt(c.flagpolePort, user, groups...)
}

// directFlagpoleConfigAt is directFlagpoleConfig for the replica on port.
func (c *cluster) directFlagpoleConfigAt(port int, user string, groups ...string) *rest.Config {
	ca, _ := c.servingCA()
	cfg := &rest.Config{
		Host: "https://127.0.0.1:" + strconv.Itoa(port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:     ca,
			ServerName: flagpoleService + "." + flagpoleNamespace + ".svc",
			CertFile:   c.path("pki", "front-proxy-client.crt"),
			KeyFile:    c.path("pki", "front-proxy-client.key"),
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

func getOK(cfg *rest.Config, path string) error {
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

// waitFor polls check until it passes, the process exits, or time runs out.
func waitFor(ctx context.Context, p *process.Process, timeout time.Duration, check func() error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if p != nil && p.Exited() {
			return false, fmt.Errorf("%s exited: %v\n%s", p.Name, p.Err(), p.Tail(tailBytes))
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
		return fmt.Errorf("%s not ready within %s: %v\n%s", p.Name, timeout, last, p.Tail(tailBytes))
	default:
		return fmt.Errorf("not ready within %s: %v", timeout, last)
	}
}
