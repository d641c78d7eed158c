//go:build e2e

package e2e

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/process"
)

// cluster is a real control plane on loopback: etcd, kube-apiserver,
// kube-controller-manager, and flagpole-apiserver in delegated mode, started
// by test/cluster (which the bench uses too). The unexported names are the
// scenarios' handles on it.
type cluster struct {
	*tcluster.Cluster

	dir, binDir, flagpoleBin string
	kubeHost                 string
	flagpolePort             int
	ca                       *standalone.PKI // cluster CA: serving cert, client certs
	// serving is the CA that issued the certificate Flagpole serves from
	// its certificate file (the APIService's caBundle); rotation replaces
	// it, and every direct client and restart follows.
	serving *standalone.PKI
	// procs is the shared cluster's map of processes by name.
	procs map[string]*process.Process
}

// Users of the e2e cluster, each a client certificate from the cluster CA.
const (
	userAdmin     = tcluster.UserAdmin // group system:masters
	userNobody    = "alice"            // no role at all
	userReader    = "bob"              // Role: get, list, watch flags
	userEvaluator = "carol"            // Role: create flags/evaluate only
)

// tailBytes is how much of a process's log a failure shows.
const tailBytes = tcluster.TailBytes

const (
	flagpoleNamespace = tcluster.FlagpoleNamespace
	flagpoleService   = tcluster.FlagpoleService
)

func (c *cluster) path(parts ...string) string { return c.Path(parts...) }

func freePort() (int, error) { return tcluster.FreePort() }

func (c *cluster) start(name string, bin string, args ...string) (*process.Process, error) {
	return c.StartProcess(name, bin, args...)
}

func (c *cluster) teardown() { c.Teardown() }

func (c *cluster) logs() string { return c.Logs() }

// newCluster builds the PKI, starts every component and waits for each.
func newCluster(ctx context.Context, dir, binDir, flagpoleBin string) (*cluster, error) {
	c := &cluster{dir: dir, binDir: binDir, flagpoleBin: flagpoleBin}
	c.Cluster = tcluster.New(tcluster.Config{
		Dir: dir, BinDir: binDir, FlagpoleBin: flagpoleBin, RepoRoot: repoRoot,
		Users:             map[string][]string{userNobody: nil, userReader: nil, userEvaluator: nil},
		ControllerManager: true,
		// The main replica's audit log, and small in-flight limits.
		FlagpoleArgs: e2eFlagpoleArgs(c.auditLog(), c.auditPolicy()),
		Bootstrap:    c.bootstrap,
	})
	c.procs = c.Procs
	err := c.Start(ctx)
	c.kubeHost, c.flagpolePort, c.ca, c.serving = c.KubeHost, c.FlagpolePort, c.CA, c.Serving
	return c, err
}

func (c *cluster) kubeconfig(user string) string { return c.Kubeconfig(user) }

func (c *cluster) restConfig(user string) *rest.Config { return c.RestConfig(user) }

// startFlagpole restarts flagpole-apiserver on its port, trusting the
// serving CA in force.
func (c *cluster) startFlagpole(ctx context.Context) error {
	c.Serving = c.serving
	return c.StartFlagpole(ctx)
}

// flagpoleArgs is the command line of a Flagpole replica in delegated mode:
// every replica of the e2e (startFlagpole's, and those of
// TestTwoReplicasRollingRestart) runs with the same flags, on the same etcd
// and prefix and serving certificate files, differing only in its port, data
// directory and audit log.
func (c *cluster) flagpoleArgs(port int, dataDir, auditLog string) []string {
	return append(c.FlagpoleArgs(port, dataDir), e2eFlagpoleArgs(auditLog, c.auditPolicy())...)
}

// e2eFlagpoleArgs are the flags the e2e adds to the standard ones: an audit
// log, and small in-flight limits.
func e2eFlagpoleArgs(auditLog, auditPolicy string) []string {
	return []string{
		"--audit-policy-file", auditPolicy,
		"--audit-log-path", auditLog,
		"--max-requests-inflight", "4",
		"--max-mutating-requests-inflight", "2",
	}
}

func (c *cluster) auditLog() string { return filepath.Join(c.dir, "flagpole-audit.log") }

func (c *cluster) auditPolicy() string {
	path := filepath.Join(c.dir, "audit-policy.yaml")
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

// writeServingCert issues a serving certificate from ca and replaces
// Flagpole's key and certificate files with it (test/cluster).
func (c *cluster) writeServingCert(ca *standalone.PKI) (*x509.Certificate, error) {
	return c.WriteServingCert(ca)
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
	return c.DirectConfig(port, ca, user, groups...)
}

func getOK(cfg *rest.Config, path string) error { return tcluster.GetOK(cfg, path) }

// waitFor polls check until it passes, the process exits, or time runs out.
func waitFor(ctx context.Context, p *process.Process, timeout time.Duration, check func() error) error {
	return tcluster.WaitFor(ctx, p, timeout, check)
}
