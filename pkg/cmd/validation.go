package cmd

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flagstatus"
	"github.com/flagpole-dev/flagpole/pkg/controllers/servingcert"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
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
	if _, err := ofrep.ParseCORS(o.OFREPCORSAllowedOrigins); err != nil {
		errs = append(errs, fmt.Errorf("--ofrep-cors-allowed-origins: %w", err))
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
	errs = append(errs, o.Lifecycle.validate()...)
	errs = append(errs, o.Rollouts.validate()...)
	errs = append(errs, o.validateServingCert()...)
	// Port 0 means "do not serve HTTPS" upstream; Flagpole serves nothing
	// else, and would have no loopback client.
	if port := o.RecommendedOptions.SecureServing.BindPort; port <= 0 {
		errs = append(errs, fmt.Errorf("--secure-port %d: Flagpole serves only HTTPS and needs a port above 0", port))
	}
	if port := o.HTTP1Port; port != 0 && len(validation.IsValidPortNum(port)) > 0 {
		errs = append(errs, fmt.Errorf("--http1-secure-port %d: a port from 1 to 65535, or 0 for none", port))
	} else if port != 0 && port == o.RecommendedOptions.SecureServing.BindPort {
		errs = append(errs, fmt.Errorf("--http1-secure-port %d: the same as --secure-port; give it a port of its own", port))
	}
	// Upstream's check lists YAML too; Flagpole's stored-size limit holds for
	// JSON and protobuf only.
	if mt := o.RecommendedOptions.Etcd.DefaultStorageMediaType; !slices.Contains(storageMediaTypes, mt) {
		errs = append(errs, fmt.Errorf("--storage-media-type %q: Flagpole stores %s", mt, strings.Join(storageMediaTypes, " or ")))
	}
	return utilerrors.NewAggregate(errs)
}

func (l LifecycleOptions) validate() []error {
	var errs []error
	if l.UsageFlushInterval < time.Second {
		errs = append(errs, fmt.Errorf("--usage-flush-interval %s: at least 1s", l.UsageFlushInterval))
	}
	if l.StaleUnusedPeriod < 0 || l.StaleSingleVariantPeriod < 0 {
		errs = append(errs, errors.New("--stale-unused-period and --stale-single-variant-period must not be negative (0: off)"))
	}
	if _, err := l.lifetimes(); err != nil {
		errs = append(errs, err)
	}
	if l.RevisionLimit < 1 {
		errs = append(errs, fmt.Errorf("--flag-revision-limit %d: at least 1 (a flag's current generation)", l.RevisionLimit))
	}
	if l.RevisionMaxAge < time.Hour {
		errs = append(errs, fmt.Errorf("--flag-revision-max-age %s: at least 1h", l.RevisionMaxAge))
	}
	return errs
}

// lifetimes are the kinds' expected lifetimes: the defaults, with
// --lifecycle-lifetimes over them.
func (l LifecycleOptions) lifetimes() (map[flagpole.FlagLifecycleKind]time.Duration, error) {
	out := maps.Clone(flagstatus.DefaultLifetimes)
	for kind, value := range l.Lifetimes {
		k := flagpole.FlagLifecycleKind(kind)
		if !slices.Contains(flagpole.FlagLifecycleKinds, k) {
			return nil, fmt.Errorf("--lifecycle-lifetimes: %q is not a lifecycle kind (%v)", kind, flagpole.FlagLifecycleKinds)
		}
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--lifecycle-lifetimes: %s=%q: a duration such as 960h, or 0 for permanent", kind, value)
		}
		out[k] = d
	}
	return out, nil
}

// stalePolicy is the staleness the flags give.
func (l LifecycleOptions) stalePolicy() flagstatus.Policy {
	lifetimes, _ := l.lifetimes() // Validate has refused what fails
	return flagstatus.Policy{UnusedPeriod: l.StaleUnusedPeriod, SingleVariantPeriod: l.StaleSingleVariantPeriod, Lifetimes: lifetimes}
}

// validateServingCert checks the serving certificate's flags.
func (o CompletedOptions) validateServingCert() []error {
	switch o.ServingCertMode {
	case servingcert.ModeFiles:
		return nil
	case servingcert.ModeSelfManaged:
	default:
		return []error{fmt.Errorf("--serving-cert-mode %q: one of %s", o.ServingCertMode, strings.Join(servingcert.Modes, ", "))}
	}
	var errs []error
	if o.standalone {
		// Standalone's certificate comes from its local CA; there is no
		// cluster to keep a Secret and an APIService in.
		return []error{fmt.Errorf("--serving-cert-mode=%s needs a cluster (in a pod, or --kubeconfig)", servingcert.ModeSelfManaged)}
	}
	if ck := o.RecommendedOptions.SecureServing.ServerCert.CertKey; ck.CertFile != "" || ck.KeyFile != "" {
		errs = append(errs, fmt.Errorf("--serving-cert-mode=%s serves the Secret's certificate: leave out --tls-cert-file and --tls-private-key-file (or use --serving-cert-mode=%s)",
			servingcert.ModeSelfManaged, servingcert.ModeFiles))
	}
	if _, _, err := splitSecretRef(o.ServingCertSecret); err != nil {
		errs = append(errs, err)
	}
	if err := o.ServingCertSchedule.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--serving-ca-validity, --serving-cert-validity: %w", err))
	}
	return errs
}

// splitSecretRef reads --serving-cert-secret.
func splitSecretRef(ref string) (namespace, name string, err error) {
	namespace, name, ok := strings.Cut(ref, "/")
	if !ok || len(validation.IsDNS1123Label(namespace)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return "", "", fmt.Errorf("--serving-cert-secret %q: want <namespace>/<name> of a Secret", ref)
	}
	return namespace, name, nil
}
