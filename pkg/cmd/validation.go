package cmd

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// storageMediaTypes are the --storage-media-type values Flagpole accepts.
var storageMediaTypes = []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON}

// Validate reports every invalid flag at once.
func (o CompletedOptions) Validate() error {
	rec := *o.RecommendedOptions
	servers := o.RecommendedOptions.Etcd.StorageConfig.Transport.ServerList
	if o.embedEtcd {
		// The embedded etcd's address is known only once it runs.
		etcd := *rec.Etcd
		etcd.StorageConfig.Transport.ServerList = []string{"embedded"}
		rec.Etcd = &etcd
	}
	errs := rec.Validate()
	errs = append(errs, o.ServerRun.Validate()...)
	errs = append(errs, o.ComponentGlobalsRegistry.Validate()...)
	if o.EmbeddedEtcd && len(servers) > 0 {
		errs = append(errs, errors.New("--embedded-etcd and --etcd-servers exclude each other"))
	}
	if inPod() && !o.embedEtcd && len(servers) == 0 {
		errs = append(errs, errors.New("inside a pod --etcd-servers is required, so that replicas share one datastore; --embedded-etcd runs a private etcd (one replica only)"))
	}
	if len(o.standaloneEnabledAdmission) > 0 {
		errs = append(errs, fmt.Errorf("--enable-admission-plugins %v: upstream admission plugins need a cluster (--kubeconfig) and do not run standalone", o.standaloneEnabledAdmission))
	}
	if o.EventStreams.Total < 0 || o.EventStreams.PerUser < 0 {
		errs = append(errs, fmt.Errorf("--max-ofrep-event-streams and --max-ofrep-event-streams-per-user must not be negative (0: no limit)"))
	}
	if o.StartFreshIfDatastoreLost && !o.embedEtcd {
		errs = append(errs, fmt.Errorf("--%s applies to embedded etcd only, not to --etcd-servers", standalone.StartFreshFlag))
	}
	if free := o.EmbeddedEtcdMinFreeSpace.Value(); free < standalone.MinimumMinFreeBytes {
		errs = append(errs, fmt.Errorf("--embedded-etcd-min-free-space %s: at least %dMi, so that etcd keeps room for its next write-ahead log segment (64 MB)",
			o.EmbeddedEtcdMinFreeSpace.String(), standalone.MinimumMinFreeBytes>>20))
	}
	if c := o.Connections; c.MaxConnectionsPerAddress < 0 || c.FirstRequestTimeout < 0 || c.ResetBurst < 0 || c.ResetsPerSecond < 0 || c.BodyReadTimeout < 0 || c.PreReadBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("--max-connections-per-client-address, --first-request-timeout, --http2-reset-burst, --http2-resets-per-second, --request-body-read-timeout and --pre-read-body-bytes must not be negative (0: no limit)"))
	}
	// Port 0 means "do not serve HTTPS" upstream; Flagpole serves nothing
	// else, and would have no loopback client.
	if port := o.RecommendedOptions.SecureServing.BindPort; port <= 0 {
		errs = append(errs, fmt.Errorf("--secure-port %d: Flagpole serves only HTTPS and needs a port above 0", port))
	}
	// Upstream's check lists YAML too; Flagpole's stored-size limit holds for
	// JSON and protobuf only.
	if mt := o.RecommendedOptions.Etcd.DefaultStorageMediaType; !slices.Contains(storageMediaTypes, mt) {
		errs = append(errs, fmt.Errorf("--storage-media-type %q: Flagpole stores %s", mt, strings.Join(storageMediaTypes, " or ")))
	}
	return utilerrors.NewAggregate(errs)
}
