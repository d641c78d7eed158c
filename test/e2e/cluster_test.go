//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// cluster is a real control plane on loopback: etcd, kube-apiserver,
// kube-controller-manager, and flagpole-apiserver in delegated mode, started
// by test/cluster (which the bench uses too), with what the e2e scenarios
// add to it: their users, an audit log and small in-flight limits.
// Cluster.Serving is the CA that issued the certificate Flagpole serves from
// its certificate file (the APIService's caBundle); rotation replaces it,
// and every direct client and restart follows.
type cluster struct {
	*tcluster.Cluster

	dir, binDir, flagpoleBin string
}

// Users of the e2e cluster, each a client certificate from the cluster CA.
const (
	userAdmin     = tcluster.UserAdmin // group system:masters
	userNobody    = "alice"            // no role at all
	userReader    = "bob"              // Role: get, list, watch flags
	userEvaluator = "carol"            // Role: create flags/evaluate only
)

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
	return c, c.Start(ctx)
}

// flagpoleArgs is the command line of a Flagpole replica in delegated mode:
// every replica of the e2e (StartFlagpole's, and those of
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

// servingCA is the bundle the APIService trusts: the CA that issued the
// certificate Flagpole serves.
func (c *cluster) servingCA() ([]byte, error) {
	return c.Serving.CAPEM()
}

// directFlagpoleConfig talks to flagpole without kube-apiserver, as the
// aggregator does: front-proxy client certificate plus X-Remote-* headers.
func (c *cluster) directFlagpoleConfig(user string, groups ...string) *rest.Config {
	return c.directFlagpoleConfigAt(c.FlagpolePort, user, groups...)
}

// directFlagpoleConfigAt is directFlagpoleConfig for the replica on port.
func (c *cluster) directFlagpoleConfigAt(port int, user string, groups ...string) *rest.Config {
	ca, _ := c.servingCA()
	return c.DirectConfig(port, ca, user, groups...)
}
