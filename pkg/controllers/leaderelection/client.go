package leaderelection

import (
	"time"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/apiserver/pkg/storage/storagebackend"
)

// NewClient connects to the etcd the API server stores in, from the same
// transport options (--etcd-servers, --etcd-certfile, --etcd-keyfile,
// --etcd-cafile), the way upstream's storage factory does. The apiserver
// keeps its own client private; the election needs one of its own.
func NewClient(c storagebackend.TransportConfig) (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:            c.ServerList,
		DialTimeout:          20 * time.Second,
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
	}
	if c.CertFile != "" || c.KeyFile != "" || c.TrustedCAFile != "" {
		tlsConfig, err := transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile, TrustedCAFile: c.TrustedCAFile}.ClientConfig()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tlsConfig
	}
	logger, err := logutil.CreateDefaultZapLogger(zap.WarnLevel)
	if err != nil {
		return nil, err
	}
	cfg.Logger = logger.Named("leader-election-etcd-client")
	return clientv3.New(cfg)
}
