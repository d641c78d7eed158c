// Package cmd holds flagpole-apiserver's command line: the upstream option
// structs for every standard kube flag and Flagpole's own flags (Options),
// what they imply once parsed (Complete → CompletedOptions, where the mode
// is chosen), their validation, and the server configuration they produce
// (Config), the way kube-apiserver's options package is laid out:
//
//   - options.go: the flags;
//   - completion.go: Complete and the mode (standalone or delegated);
//   - validation.go: Validate;
//   - config.go: Config (storage, OpenAPI, informers, the closer);
//   - standalone.go: what standalone mode starts and writes (data directory
//     lock, local PKI, embedded etcd, admin kubeconfig);
//   - authentication.go, admission.go: each mode's authentication and
//     authorization, and its admission chain;
//   - run.go: Run.
package cmd

import (
	"net"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	basecompatibility "k8s.io/component-base/compatibility"

	"github.com/flagpole-dev/flagpole/pkg/admission/plugin/references"
	"github.com/flagpole-dev/flagpole/pkg/connguard"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flaghistory"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flagstatus"
	"github.com/flagpole-dev/flagpole/pkg/controllers/servingcert"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/pkg/usage/etcdrecords"
)

const (
	defaultEtcdPathPrefix = "/registry/flagpole.dev"
	defaultSecurePort     = 8443
	defaultDataDir        = "flagpole-data"
	// defaultWatchTerminationGracePeriod bounds how long shutdown waits for
	// open watches to end.
	defaultWatchTerminationGracePeriod = 5 * time.Second
	// defaultServingCertSecret is where artifacts/deploy keeps the serving
	// certificate.
	defaultServingCertSecret = "flagpole-system/flagpole-serving-cert"
)

// Options is everything flagpole-apiserver can be told on its command line,
// and nothing else: what the flags imply is CompletedOptions' business.
type Options struct {
	RecommendedOptions       *genericoptions.RecommendedOptions
	ServerRun                *genericoptions.ServerRunOptions
	ComponentGlobalsRegistry basecompatibility.ComponentGlobalsRegistry

	// DataDir holds embedded etcd's data, the local PKI and the admin kubeconfig.
	DataDir string
	// EmbeddedEtcd forces embedded etcd, even inside a pod.
	EmbeddedEtcd bool
	// TLSSANs are extra names and addresses for self-issued serving certificates.
	TLSSANs []string
	// EventStreams bounds OFREP's open event streams.
	EventStreams ofrep.StreamLimits
	// OFREPCORSAllowedOrigins are the browser origins allowed to call OFREP:
	// ORIGIN (every namespace) or NAMESPACE=ORIGIN.
	OFREPCORSAllowedOrigins []string
	// StartFreshIfDatastoreLost lets a data directory whose embedded etcd
	// member is gone start with an empty datastore.
	StartFreshIfDatastoreLost bool
	// EmbeddedEtcdMinFreeSpace is the free space on embedded etcd's file
	// system below which writes are refused.
	EmbeddedEtcdMinFreeSpace resource.QuantityValue
	// Connections bounds what one peer's connections may hold.
	Connections connguard.Limits
	// HTTP1Port, above 0, serves the API a second time on that port with
	// HTTP/2 turned off, at --bind-address, for kube-apiserver's aggregator.
	HTTP1Port int
	// HTTP1Listener, when set, is used instead of listening on HTTP1Port
	// (as SecureServingOptions.Listener is for --secure-port): tests pass
	// one on a free port.
	HTTP1Listener net.Listener
	// ServingCertMode says where the serving certificate comes from
	// (servingcert.Modes); ServingCertSecret ("<namespace>/<name>") and
	// ServingCertSchedule are self-managed mode's Secret and lifetimes.
	ServingCertMode     string
	ServingCertSecret   string
	ServingCertSchedule servingcert.Schedule
	// Lifecycle says how usage is counted and when flags are stale, and
	// bounds their history.
	Lifecycle LifecycleOptions
	// Rollouts says where rollout plan guards read.
	Rollouts RolloutOptions
}

// LifecycleOptions are the flags of usage, staleness and history.
type LifecycleOptions struct {
	// UsageCounting counts evaluations (on by default).
	UsageCounting bool
	// UsageFlushInterval is how often each replica writes its usage record.
	UsageFlushInterval time.Duration
	// StaleUnusedPeriod and StaleSingleVariantPeriod: see flagstatus.Policy.
	StaleUnusedPeriod        time.Duration
	StaleSingleVariantPeriod time.Duration
	// Lifetimes overrides the lifecycle kinds' expected lifetimes
	// (kind=duration, 0 for permanent).
	Lifetimes cliflag.ConfigurationMap
	// RevisionLimit and RevisionMaxAge bound each flag's FlagRevisions.
	RevisionLimit  int
	RevisionMaxAge time.Duration
}

// NewOptions returns options with Flagpole's defaults.
func NewOptions() *Options {
	registry := basecompatibility.NewComponentGlobalsRegistry()
	// The process-global feature gate, so that --feature-gates reaches the
	// upstream code that reads it directly; a registry of our own, so that
	// several servers can run in one test process.
	utilruntime.Must(registry.Register(basecompatibility.DefaultKubeComponent,
		kubeEffectiveVersion(), utilfeature.DefaultMutableFeatureGate))

	o := &Options{
		// The storage codec follows --storage-media-type: storageCodec sets
		// it in Config, once the flag is parsed.
		RecommendedOptions:       genericoptions.NewRecommendedOptions(defaultEtcdPathPrefix, nil),
		ServerRun:                genericoptions.NewServerRunOptionsForComponent(basecompatibility.DefaultKubeComponent, registry),
		ComponentGlobalsRegistry: registry,
		DataDir:                  defaultDataDir,
		EventStreams:             ofrep.DefaultStreamLimits,
		EmbeddedEtcdMinFreeSpace: resource.QuantityValue{Quantity: *resource.NewQuantity(standalone.DefaultMinFreeBytes, resource.BinarySI)},
		Connections:              connguard.DefaultLimits,
		Lifecycle: LifecycleOptions{
			UsageCounting:            true,
			UsageFlushInterval:       etcdrecords.DefaultInterval,
			StaleUnusedPeriod:        flagstatus.DefaultUnusedPeriod,
			StaleSingleVariantPeriod: flagstatus.DefaultSingleVariantPeriod,
			Lifetimes:                cliflag.ConfigurationMap{},
			RevisionLimit:            flaghistory.DefaultRevisionLimit,
			RevisionMaxAge:           flaghistory.DefaultRevisionMaxAge,
		},
		Rollouts:            defaultRolloutOptions(),
		ServingCertMode:     servingcert.ModeFiles,
		ServingCertSecret:   defaultServingCertSecret,
		ServingCertSchedule: servingcert.DefaultSchedule,
	}
	o.RecommendedOptions.Etcd.DefaultStorageMediaType = runtime.ContentTypeProtobuf
	o.RecommendedOptions.SecureServing.BindPort = defaultSecurePort
	// Upstream's default (0) leaves open watches — every Go provider and
	// informer of Flagpole's clients holds some — to the HTTP server's
	// shutdown timeout (--request-timeout, 60s): a stop would take a minute.
	// A grace period ends them (clients re-watch elsewhere) and stops promptly.
	o.ServerRun.ShutdownWatchTerminationGracePeriod = defaultWatchTerminationGracePeriod
	// Flagpole's own admission plugins run in both modes, after upstream's.
	references.Register(o.RecommendedOptions.Admission.Plugins)
	o.RecommendedOptions.Admission.RecommendedPluginOrder = append(o.RecommendedOptions.Admission.RecommendedPluginOrder, flagpoleAdmissionPlugins...)
	// Empty means <data-dir>/certificates, resolved in Complete.
	o.RecommendedOptions.SecureServing.ServerCert.CertDirectory = ""
	// Unset means the mode's default, resolved in Complete.
	o.RecommendedOptions.SecureServing.BindAddress = nil
	return o
}

// Flags returns every flag, grouped the way upstream components group them in --help.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("flagpole")
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir,
		"Directory for embedded etcd's data, the local PKI and the admin kubeconfig (standalone mode).")
	fs.BoolVar(&o.EmbeddedEtcd, "embedded-etcd", o.EmbeddedEtcd,
		"Run embedded etcd under --data-dir even inside a pod. Without --etcd-servers and outside a pod, embedded etcd is the default.")
	fs.StringSliceVar(&o.TLSSANs, "tls-san", o.TLSSANs,
		"Extra DNS names or IP addresses for the self-issued serving certificate (e.g. <service>.<namespace>.svc).")
	fs.IntVar(&o.EventStreams.Total, "max-ofrep-event-streams", o.EventStreams.Total,
		"The most OFREP event streams this server keeps open at once; more are answered 429 with Retry-After. 0: no limit.")
	fs.IntVar(&o.EventStreams.PerUser, "max-ofrep-event-streams-per-user", o.EventStreams.PerUser,
		"The most OFREP event streams one user (e.g. an application's ServiceAccount, across its pods) keeps open at once. 0: no limit.")
	fs.StringSliceVar(&o.OFREPCORSAllowedOrigins, "ofrep-cors-allowed-origins", o.OFREPCORSAllowedOrigins,
		"Browser origins (scheme://host[:port], or * for any) that may call OFREP from another origin: ORIGIN allows it in every namespace, "+
			"NAMESPACE=ORIGIN in one. Their requests get CORS headers exposing ETag and Retry-After (no credentials mode) and event streams opened with a "+
			"single-use ticket instead of a token. Unlike --cors-allowed-origins, which covers the whole API, this covers OFREP's paths only.")
	fs.BoolVar(&o.StartFreshIfDatastoreLost, standalone.StartFreshFlag, o.StartFreshIfDatastoreLost,
		"Start with an empty datastore when --data-dir held one (its datastore.json says so) whose embedded etcd data is gone, "+
			"or holds another datastore than the one recorded. Without it the server refuses to start: restore the data from a backup instead, "+
			"unless the flags, segments and overrides are to be given up. Use it once, then remove it.")
	fs.Var(&o.EmbeddedEtcdMinFreeSpace, "embedded-etcd-min-free-space",
		"Free space on embedded etcd's file system below which writes are refused (507) while reads and evaluations go on, "+
			"so that etcd keeps room for its write-ahead log; a warning is logged below twice this. At least 80Mi.")
	cs := fss.FlagSet("connections")
	cs.IntVar(&o.HTTP1Port, "http1-secure-port", o.HTTP1Port,
		"Also serve HTTPS on this port, with the --secure-port's certificate and HTTP/2 turned off (0: not at all). Point the APIService's Service here: "+
			"kube-apiserver's aggregator cannot send a write again after an HTTP/2 GOAWAY, so during a rolling restart writes in flight on HTTP/2 fail with 503, "+
			"while over HTTP/1.1 a replica that shuts down moves the aggregator's connections away without a failed request.")
	cs.IntVar(&o.Connections.MaxConnectionsPerAddress, "max-connections-per-client-address", o.Connections.MaxConnectionsPerAddress,
		"The most connections one client IP address may have open at once; more are closed as they are accepted. 0: no limit.")
	cs.DurationVar(&o.Connections.FirstRequestTimeout, "first-request-timeout", o.Connections.FirstRequestTimeout,
		"Close a connection that has started no request this long after it was accepted (HTTP/2 frames left half sent, idle TLS). 0: no limit.")
	cs.IntVar(&o.Connections.ResetBurst, "http2-reset-burst", o.Connections.ResetBurst,
		"How many streams a connection may reset (or abandon) in a burst before it is sent GOAWAY. 0: no limit.")
	cs.Float64Var(&o.Connections.ResetsPerSecond, "http2-resets-per-second", o.Connections.ResetsPerSecond,
		"How many more streams per second a connection may reset once its burst is spent.")
	cs.DurationVar(&o.Connections.BodyReadTimeout, "request-body-read-timeout", o.Connections.BodyReadTimeout,
		"How long reading a request's body may take before the request is answered 408. 0: no limit.")
	cs.Int64Var(&o.Connections.PreReadBodyBytes, "pre-read-body-bytes", o.Connections.PreReadBodyBytes,
		"Request bodies up to this size are read before the request takes a flow-control seat, so a slow sender holds none. 0: never.")
	ls := fss.FlagSet("lifecycle")
	ls.BoolVar(&o.Lifecycle.UsageCounting, "usage-counting", o.Lifecycle.UsageCounting,
		"Count every evaluation per flag (status.usage, LAST-EVALUATED, staleness from usage). Off: nothing is counted or written for usage, and only expiry and lifetimes make flags stale.")
	ls.DurationVar(&o.Lifecycle.UsageFlushInterval, "usage-flush-interval", o.Lifecycle.UsageFlushInterval,
		"How often each replica writes its usage counts to etcd (one write per replica, whatever the traffic and the number of flags), and how often staleness is checked again. At least 1s.")
	ls.DurationVar(&o.Lifecycle.StaleUnusedPeriod, "stale-unused-period", o.Lifecycle.StaleUnusedPeriod,
		"A flag not evaluated for this long (never, or no longer) is Stale, reason Unused. 0: never for this reason.")
	ls.DurationVar(&o.Lifecycle.StaleSingleVariantPeriod, "stale-single-variant-period", o.Lifecycle.StaleSingleVariantPeriod,
		"An enabled flag (not a KillSwitch or Permission) that served one variant to every evaluation for this long, its spec unchanged meanwhile, is Stale, reason SingleVariant. 0: never for this reason.")
	ls.Var(&o.Lifecycle.Lifetimes, "lifecycle-lifetimes",
		"Expected lifetimes of the lifecycle kinds, kind=duration pairs separated by commas, 0 for permanent: a flag older than its kind's is Stale, reason LifetimeExceeded. "+
			"Defaults: Release=960h (40 days), Experiment=960h, Operational=168h (7 days), KillSwitch=0, Permission=0.")
	ls.IntVar(&o.Lifecycle.RevisionLimit, "flag-revision-limit", o.Lifecycle.RevisionLimit,
		"How many FlagRevisions (generations of its spec) each flag keeps; the oldest goes when a change makes one more. At least 1.")
	ls.DurationVar(&o.Lifecycle.RevisionMaxAge, "flag-revision-max-age", o.Lifecycle.RevisionMaxAge,
		"How long a FlagRevision is kept after its change (an etcd lease removes it then). At least 1h.")
	o.Rollouts.addFlags(&fss)
	ss := fss.FlagSet("serving certificate")
	ss.StringVar(&o.ServingCertMode, "serving-cert-mode", o.ServingCertMode,
		"Where the serving certificate comes from: "+servingcert.ModeFiles+" serves --tls-cert-file and --tls-private-key-file, reloaded when they change "+
			"(cert-manager, hack/deploy-certs.sh; without them a self-signed certificate in --cert-dir); "+
			servingcert.ModeSelfManaged+" (delegated mode) serves the key pair of --serving-cert-secret, which the elected replica keeps: "+
			"it makes a CA and the pair, sets the caBundle of Flagpole's APIServices, and renews both before they expire.")
	ss.StringVar(&o.ServingCertSecret, "serving-cert-secret", o.ServingCertSecret,
		"The Secret (<namespace>/<name>) that holds the CA and the serving key pair in "+servingcert.ModeSelfManaged+" mode. "+
			"The certificate names the Services of Flagpole's APIServices (<service>.<namespace>.svc and .svc.cluster.local) and --tls-san.")
	ss.DurationVar(&o.ServingCertSchedule.CAValidity, "serving-ca-validity", o.ServingCertSchedule.CAValidity,
		"How long a CA made in "+servingcert.ModeSelfManaged+" mode is valid. A new CA is made, and trusted beside the old one, once a third of its validity is left.")
	ss.DurationVar(&o.ServingCertSchedule.CertValidity, "serving-cert-validity", o.ServingCertSchedule.CertValidity,
		"How long a serving certificate made in "+servingcert.ModeSelfManaged+" mode is valid (at most its CA's remaining validity). "+
			"It is renewed once a third of its validity is left.")
	o.RecommendedOptions.AddFlags(fss.FlagSet("generic"))
	fss.FlagSet("generic").Lookup("bind-address").Usage = "The IP address on which to listen for the --secure-port port. " +
		"Default: 127.0.0.1 in standalone mode, whose self-issued serving certificate names only this host (add names with --tls-san); " +
		"all interfaces in delegated mode. An unspecified address (0.0.0.0 or ::) means all interfaces and IP address families."
	o.ServerRun.AddUniversalFlags(fss.FlagSet("server run"))
	o.ComponentGlobalsRegistry.AddFlags(fss.FlagSet("compatibility"))
	return fss
}

// AddFlags adds every flag to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
}
