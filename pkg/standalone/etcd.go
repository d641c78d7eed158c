package standalone

import (
	"fmt"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"
)

// Etcd is an embedded single-member etcd serving on loopback.
type Etcd struct {
	e *embed.Etcd
	// ClientURL is where the API server's storage connects.
	ClientURL string
}

// StartEtcd starts an embedded etcd that keeps its data under dir and waits
// until it serves. Client and peer listen on 127.0.0.1 with ports the kernel
// picks, so it never collides with a system etcd on 2379/2380 or with a
// second Flagpole; the address is read back after it starts.
func StartEtcd(dir string, startTimeout time.Duration) (*Etcd, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "flagpole"
	cfg.Dir = dir
	cfg.LogLevel = "warn"
	loopback := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls = []url.URL{loopback}
	cfg.AdvertiseClientUrls = []url.URL{loopback}
	cfg.ListenPeerUrls = []url.URL{loopback}
	cfg.AdvertisePeerUrls = []url.URL{loopback}
	// The member's peer URL must match the initial cluster, or etcd refuses to start.
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// Embedded etcd serves only this process: no metrics or debug listeners.
	cfg.ListenMetricsUrls = nil

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(startTimeout):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready within %s", dir, startTimeout)
	}
	clientURL := "http://" + e.Clients[0].Addr().String()
	klog.InfoS("Embedded etcd is serving", "dataDir", dir, "clientURL", clientURL)
	return &Etcd{e: e, ClientURL: clientURL}, nil
}

// Close stops etcd. Call it only after the API server has drained, so that
// in-flight requests can still reach storage.
func (e *Etcd) Close() {
	e.e.Close()
	klog.InfoS("Embedded etcd stopped")
}
