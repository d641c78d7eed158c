package cmd

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// standaloneState is what startStandalone started: all of it is released by
// close, in reverse order.
type standaloneState struct {
	// pki is the local CA (standalone authentication only).
	pki *standalone.PKI
	// etcdURL reaches embedded etcd (when it runs).
	etcdURL string
	// diskSpace watches embedded etcd's file system (when it runs).
	diskSpace *standalone.DiskSpace
	closers   []func()
}

func (s *standaloneState) close() {
	for _, c := range slices.Backward(s.closers) {
		c()
	}
}

// startStandalone does what standalone mode needs before the server can be
// configured: it locks --data-dir (so a second server on it fails at once,
// naming it), loads or creates the local PKI and starts embedded etcd — on
// the datastore the data directory records, checked before etcd opens it —
// each only when the mode uses it.
func (o CompletedOptions) startStandalone() (_ *standaloneState, err error) {
	state := &standaloneState{}
	defer func() {
		if err != nil {
			state.close()
		}
	}()
	if o.embedEtcd || o.standalone {
		unlock, err := standalone.LockDataDir(o.DataDir)
		if err != nil {
			return nil, err
		}
		state.closers = append(state.closers, unlock)
	}
	if o.standalone {
		if state.pki, err = standalone.EnsurePKI(o.layout.PKI().Dir, o.servingHosts()); err != nil {
			return nil, fmt.Errorf("local PKI: %w", err)
		}
	}
	if o.embedEtcd {
		etcd, err := standalone.StartDatastore(o.layout, standalone.DatastoreOptions{
			StartTimeout: o.ServerRun.StorageInitializationTimeout,
			StartFresh:   o.StartFreshIfDatastoreLost,
			MinFreeBytes: o.EmbeddedEtcdMinFreeSpace.Value(),
		})
		if err != nil {
			return nil, err
		}
		state.closers = append(state.closers, etcd.Close)
		state.etcdURL = etcd.ClientURL
		state.diskSpace = etcd.DiskSpace
	}
	return state, nil
}

// applyTo has the server's stores refuse writes while embedded etcd's file
// system is nearly full, and /healthz report it (/readyz and /livez stay
// as they are: the server still serves reads and evaluations).
func (s *standaloneState) applyTo(c *genericapiserver.RecommendedConfig) {
	if s.diskSpace == nil {
		return
	}
	c.RESTOptionsGetter = guard.RefuseWrites(c.RESTOptionsGetter, s.diskSpace.WritesRefused)
	c.HealthzChecks = append(c.HealthzChecks, s.diskSpace.HealthCheck())
}

// writeKubeconfig writes the admin kubeconfig for the address the server
// listens on and says where it is.
func (o CompletedOptions) writeKubeconfig(pki *standalone.PKI) error {
	host := "127.0.0.1"
	if addr := o.RecommendedOptions.SecureServing.BindAddress; addr != nil && !addr.IsUnspecified() {
		host = addr.String()
	}
	server := "https://" + net.JoinHostPort(host, strconv.Itoa(o.RecommendedOptions.SecureServing.BindPort))
	path := o.layout.Kubeconfig()
	if err := pki.WriteAdminKubeconfig(path, server); err != nil {
		return fmt.Errorf("writing admin kubeconfig: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	klog.InfoS("Standalone mode: admin kubeconfig written", "kubeconfig", abs, "server", server)
	klog.InfoS("Try: kubectl --kubeconfig " + abs + " apply -f artifacts/examples/ && kubectl --kubeconfig " + abs + " get flags")
	return nil
}
