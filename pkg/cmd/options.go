// Package cmd holds flagpole-apiserver's options: the upstream option structs
// for every standard kube flag, Flagpole's own flags, and the choice between
// standalone and delegated mode, made after the flags are parsed.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/admission"
	admissionmetrics "k8s.io/apiserver/pkg/admission/metrics"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	unionauthn "k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	unionauthz "k8s.io/apiserver/pkg/authorization/union"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	cliflag "k8s.io/component-base/cli/flag"
	basecompatibility "k8s.io/component-base/compatibility"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	netutils "k8s.io/utils/net"

	"github.com/flagpole-dev/flagpole/pkg/admission/flagpoleinitializer"
	"github.com/flagpole-dev/flagpole/pkg/admission/plugin/references"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	flagpoleapiserver "github.com/flagpole-dev/flagpole/pkg/apiserver"
	"github.com/flagpole-dev/flagpole/pkg/clientcert"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	generatedopenapi "github.com/flagpole-dev/flagpole/pkg/generated/openapi"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/pkg/version"
)

const (
	defaultEtcdPathPrefix = "/registry/flagpole.dev"
	defaultSecurePort     = 8443
	defaultDataDir        = "flagpole-data"
	// defaultWatchTerminationGracePeriod bounds how long shutdown waits for
	// open watches to end.
	defaultWatchTerminationGracePeriod = 5 * time.Second
)

// Options is everything flagpole-apiserver can be told on its command line.
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

	// Chosen by Complete, after flags are parsed.
	embedEtcd bool
	localAuth bool
	// Loaded or created by Config, in standalone mode.
	pki *standalone.PKI
	// standaloneEnabledAdmission records --enable-admission-plugins given in
	// standalone mode, where they cannot run.
	standaloneEnabledAdmission []string
	// informers watch Flagpole's objects; made while the admission chain
	// is built, started by the server. localInformers feeds those of
	// Flagpole's kinds from the server's own stores.
	informers      informers.SharedInformerFactory
	localInformers *flagpoleapiserver.LocalInformers
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
		// it in config, once the flag is parsed.
		RecommendedOptions:       genericoptions.NewRecommendedOptions(defaultEtcdPathPrefix, nil),
		ServerRun:                genericoptions.NewServerRunOptionsForComponent(basecompatibility.DefaultKubeComponent, registry),
		ComponentGlobalsRegistry: registry,
		DataDir:                  defaultDataDir,
		EventStreams:             ofrep.DefaultStreamLimits,
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
	o.RecommendedOptions.ExtraAdmissionInitializers = o.admissionInitializers
	// Empty means <data-dir>/certificates, resolved in Complete.
	o.RecommendedOptions.SecureServing.ServerCert.CertDirectory = ""
	// Unset means the mode's default, resolved in Complete.
	o.RecommendedOptions.SecureServing.BindAddress = nil
	return o
}

// flagpoleAdmissionPlugins are Flagpole's own admission plugins, in order.
var flagpoleAdmissionPlugins = []string{references.PluginName}

// admissionInitializers makes the informers Flagpole's plugins (and server)
// read from, as sample-apiserver does; those of Flagpole's own kinds read
// the server's stores in process (LocalInformers), not the loopback client.
func (o *Options) admissionInitializers(c *genericapiserver.RecommendedConfig) ([]admission.PluginInitializer, error) {
	client, err := clientset.NewForConfig(c.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	o.informers = informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(flagpoleapiserver.TrimForInformers))
	o.localInformers = flagpoleapiserver.NewLocalInformers(o.informers, flagpoleapiserver.Scheme)
	return []admission.PluginInitializer{flagpoleinitializer.New(o.informers)}, nil
}

// standaloneAdmission builds the admission chain for standalone mode, where
// upstream's AdmissionOptions cannot run (they need a kube client): only
// Flagpole's own plugins.
func (o *Options) standaloneAdmission(c *genericapiserver.RecommendedConfig) error {
	plugins := admission.NewPlugins()
	references.Register(plugins)
	provider, err := admission.ReadAdmissionConfiguration(flagpoleAdmissionPlugins, "", nil)
	if err != nil {
		return err
	}
	chain, err := plugins.NewFromPlugins(flagpoleAdmissionPlugins, provider, flagpoleinitializer.New(o.informers),
		admission.Decorators{admission.DecoratorFunc(admissionmetrics.WithControllerMetrics)})
	if err != nil {
		return err
	}
	c.AdmissionControl = chain
	return nil
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

func inPod() bool {
	return os.Getenv("KUBERNETES_SERVICE_HOST") != "" && os.Getenv("KUBERNETES_SERVICE_PORT") != ""
}

// Complete chooses the mode from the parsed flags and fills in what it
// implies. It writes nothing: files and processes are Config's business, after
// Validate has passed.
func (o *Options) Complete() error {
	if err := o.ComponentGlobalsRegistry.Set(); err != nil {
		return err
	}
	rec := o.RecommendedOptions
	if rec.SecureServing.ServerCert.CertDirectory == "" {
		rec.SecureServing.ServerCert.CertDirectory = filepath.Join(o.DataDir, "certificates")
	}

	o.embedEtcd = o.EmbeddedEtcd || (len(rec.Etcd.StorageConfig.Transport.ServerList) == 0 && !inPod())
	o.localAuth = !inPod() &&
		rec.CoreAPI.CoreAPIKubeconfigPath == "" &&
		rec.Authentication.RemoteKubeConfigFile == "" &&
		rec.Authorization.RemoteKubeConfigFile == ""
	if rec.SecureServing.BindAddress == nil {
		rec.SecureServing.BindAddress = netutils.ParseIPSloppy("0.0.0.0")
		if o.localAuth {
			// Standalone's serving certificate names only this host, and its
			// admin kubeconfig points at 127.0.0.1.
			rec.SecureServing.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
		}
	}
	if !o.localAuth {
		return nil
	}

	// Standalone: no cluster to delegate to. The CoreAPI options would demand
	// an in-cluster config, so they go; so do upstream's admission plugins
	// (namespace lifecycle, webhooks, admission policies) and
	// priority-and-fairness, which all need a kube client and informers.
	rec.CoreAPI = nil
	rec.Features.EnablePriorityAndFairness = false
	o.standaloneEnabledAdmission = rec.Admission.EnablePlugins
	rec.Admission = nil
	rec.Authentication.RemoteKubeConfigFileOptional = true
	rec.Authentication.SkipInClusterLookup = true
	rec.Authorization.RemoteKubeConfigFileOptional = true
	rec.Authorization.AlwaysAllowGroups = []string{standalone.AdminGroup}

	// The files are created by Config; only their names are needed here.
	pkiFiles := standalone.PKI{Dir: o.pkiDir()}
	rec.Authentication.ClientCert.ClientCA = pkiFiles.CACertFile()
	if keyCert := &rec.SecureServing.ServerCert.CertKey; keyCert.CertFile == "" && keyCert.KeyFile == "" {
		keyCert.CertFile, keyCert.KeyFile = pkiFiles.ServingCertFile(), pkiFiles.ServingKeyFile()
	}
	return nil
}

// Where standalone mode keeps its state under --data-dir.
func (o *Options) pkiDir() string         { return filepath.Join(o.DataDir, "pki") }
func (o *Options) etcdDir() string        { return filepath.Join(o.DataDir, "etcd") }
func (o *Options) etcdSocketDir() string  { return filepath.Join(o.DataDir, "run") }
func (o *Options) kubeconfigPath() string { return filepath.Join(o.DataDir, "kubeconfig") }

func (o *Options) servingHosts() []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range o.TLSSANs {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// Validate reports every invalid flag at once.
func (o *Options) Validate() error {
	rec := *o.RecommendedOptions
	if o.embedEtcd {
		// The embedded etcd's address is known only once it runs.
		etcd := *rec.Etcd
		etcd.StorageConfig.Transport.ServerList = []string{"embedded"}
		rec.Etcd = &etcd
	}
	errs := rec.Validate()
	errs = append(errs, o.ServerRun.Validate()...)
	errs = append(errs, o.ComponentGlobalsRegistry.Validate()...)
	if o.EmbeddedEtcd && len(o.RecommendedOptions.Etcd.StorageConfig.Transport.ServerList) > 0 {
		errs = append(errs, errors.New("--embedded-etcd and --etcd-servers exclude each other"))
	}
	if inPod() && !o.embedEtcd && len(o.RecommendedOptions.Etcd.StorageConfig.Transport.ServerList) == 0 {
		errs = append(errs, errors.New("inside a pod --etcd-servers is required, so that replicas share one datastore; --embedded-etcd runs a private etcd (one replica only)"))
	}
	if len(o.standaloneEnabledAdmission) > 0 {
		errs = append(errs, fmt.Errorf("--enable-admission-plugins %v: upstream admission plugins need a cluster (--kubeconfig) and do not run standalone", o.standaloneEnabledAdmission))
	}
	if o.EventStreams.Total < 0 || o.EventStreams.PerUser < 0 {
		errs = append(errs, fmt.Errorf("--max-ofrep-event-streams and --max-ofrep-event-streams-per-user must not be negative (0: no limit)"))
	}
	// Port 0 means "do not serve HTTPS" upstream; Flagpole serves nothing
	// else, and would have no loopback client.
	if o.RecommendedOptions.SecureServing.BindPort <= 0 {
		errs = append(errs, fmt.Errorf("--secure-port %d: Flagpole serves only HTTPS and needs a port above 0", o.RecommendedOptions.SecureServing.BindPort))
	}
	// Upstream's check lists YAML too; Flagpole's stored-size limit holds for
	// JSON and protobuf only.
	if mt := o.RecommendedOptions.Etcd.DefaultStorageMediaType; !slices.Contains(storageMediaTypes, mt) {
		errs = append(errs, fmt.Errorf("--storage-media-type %q: Flagpole stores %s", mt, strings.Join(storageMediaTypes, " or ")))
	}
	return utilerrors.NewAggregate(errs)
}

// Config builds the server configuration from completed, validated options.
// It does what standalone mode needs first: locks --data-dir, loads or
// creates the local PKI and starts embedded etcd. The caller owns the returned
// closer, which stops etcd and releases the lock; call it after the server
// has drained.
func (o *Options) Config() (cfg *flagpoleapiserver.Config, closer func(), err error) {
	var closers []func()
	closeAll := func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	if o.embedEtcd || o.localAuth {
		unlock, err := standalone.LockDataDir(o.DataDir)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, unlock)
	}
	if o.localAuth {
		if o.pki, err = standalone.EnsurePKI(o.pkiDir(), o.servingHosts()); err != nil {
			return nil, nil, fmt.Errorf("local PKI: %w", err)
		}
	}
	etcdOptions := *o.RecommendedOptions.Etcd
	if o.embedEtcd {
		etcd, err := standalone.StartEtcd(o.etcdDir(), o.etcdSocketDir(), o.ServerRun.StorageInitializationTimeout)
		if err != nil {
			return nil, nil, err
		}
		closers = append(closers, etcd.Close)
		etcdOptions.StorageConfig.Transport.ServerList = []string{etcd.ClientURL}
	}
	if cfg, err = o.config(&etcdOptions); err != nil {
		return nil, nil, err
	}
	return cfg, closeAll, nil
}

// storageMediaTypes are the --storage-media-type values Flagpole accepts.
var storageMediaTypes = []string{runtime.ContentTypeProtobuf, runtime.ContentTypeJSON}

// storageCodec sets the codec etcd storage encodes and decodes with, the
// upstream way (k8s.io/apiserver/pkg/server/storage, as kube-apiserver's
// storage factory does): objects are written as v1beta1 in
// --storage-media-type, and read in whichever encoding they were written —
// protobuf, or JSON written before protobuf was the default or with
// --storage-media-type=application/json — so that switching the flag needs
// no migration: an object is rewritten in the new encoding when it is next
// written.
func storageCodec(etcd *genericoptions.EtcdOptions) error {
	codec, versioner, err := serverstorage.NewStorageCodec(serverstorage.StorageCodecConfig{
		StorageMediaType:  etcd.DefaultStorageMediaType,
		StorageSerializer: flagpoleapiserver.Codecs,
		StorageVersion:    v1beta1.SchemeGroupVersion,
		MemoryVersion:     schema.GroupVersion{Group: v1beta1.GroupName, Version: runtime.APIVersionInternal},
		Config:            etcd.StorageConfig,
	})
	if err != nil {
		return fmt.Errorf("--storage-media-type: %w", err)
	}
	etcd.StorageConfig.Codec = codec
	etcd.StorageConfig.EncodeVersioner = versioner
	return nil
}

// config applies the options, with etcd the storage to use.
func (o *Options) config(etcd *genericoptions.EtcdOptions) (*flagpoleapiserver.Config, error) {
	rec := *o.RecommendedOptions
	if err := storageCodec(etcd); err != nil {
		return nil, err
	}
	rec.Etcd = etcd
	if !o.localAuth {
		var ips []net.IP
		var names []string
		for _, h := range o.TLSSANs {
			if ip := netutils.ParseIPSloppy(h); ip != nil {
				ips = append(ips, ip)
			} else {
				names = append(names, h)
			}
		}
		ips = append(ips, netutils.ParseIPSloppy("127.0.0.1"))
		if err := rec.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", names, ips); err != nil {
			return nil, fmt.Errorf("creating self-signed certificates: %w", err)
		}
	}

	serverConfig := genericapiserver.NewRecommendedConfig(flagpoleapiserver.Codecs)
	namer := openapi.NewDefinitionNamer(flagpoleapiserver.Scheme)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	serverConfig.OpenAPIConfig.Info.Title = "Flagpole"
	serverConfig.OpenAPIConfig.Info.Version = version.Get().GitVersion
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	serverConfig.OpenAPIV3Config.Info.Title = "Flagpole"
	serverConfig.OpenAPIV3Config.Info.Version = version.Get().GitVersion

	if err := o.ServerRun.ApplyTo(&serverConfig.Config); err != nil {
		return nil, err
	}
	serverConfig.EffectiveVersion = servedVersion{serverConfig.EffectiveVersion}
	if err := rec.ApplyTo(serverConfig); err != nil {
		return nil, err
	}
	if o.localAuth {
		if err := o.applyLocalAuthentication(serverConfig); err != nil {
			return nil, err
		}
		if err := o.standaloneAdmission(serverConfig); err != nil {
			return nil, err
		}
	} else {
		cacheFrontProxyVerification(serverConfig)
	}
	return &flagpoleapiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: flagpoleapiserver.ExtraConfig{
			Informers:      o.informers,
			LocalInformers: o.localInformers,
			EventStreams:   o.EventStreams,
			ElectionEtcd:   etcd.StorageConfig.Transport,
			ElectionKey:    leaderelection.Key(etcd.StorageConfig.Prefix),
		},
	}, nil
}

// applyLocalAuthentication replaces the delegating authenticator with one
// that accepts certificates from the local CA and the bearer tokens of
// <data-dir>/tokens.csv (the application token written on first start, and
// any an operator adds), and lets the evaluators group evaluate.
// DelegatingAuthenticationOptions always enables anonymous requests;
// standalone answers them with 401.
func (o *Options) applyLocalAuthentication(c *genericapiserver.RecommendedConfig) error {
	caProvider, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", o.pki.CACertFile())
	if err != nil {
		return err
	}
	certs := clientcert.NewAuthenticator(clientcert.NewCache(clock.RealClock{}), caProvider.VerifyOptions, x509request.CommonNameUserConversion)
	tokensFile, err := standalone.EnsureAppToken(o.DataDir)
	if err != nil {
		return fmt.Errorf("application token: %w", err)
	}
	tokens, err := tokenfile.NewCSV(tokensFile)
	if err != nil {
		return fmt.Errorf("reading %s: %w", tokensFile, err)
	}
	c.Authentication.Authenticator = group.NewAuthenticatedGroupAdder(unionauthn.New(certs, bearertoken.New(tokens)))
	authz, err := unionauthz.New(
		unionauthz.NamedAuthorizer{AuthorizerName: "standalone-admin", Authorizer: c.Authorization.Authorizer},
		unionauthz.NamedAuthorizer{AuthorizerName: "standalone-evaluators", Authorizer: standalone.EvaluatorAuthorizer},
	)
	if err != nil {
		return err
	}
	c.Authorization.Authorizer = authz
	return nil
}

// cacheFrontProxyVerification puts a front-proxy authenticator that verifies
// each distinct proxy certificate chain once ahead of the delegated
// authenticator upstream built, which verifies it on every request: through
// the aggregator every request carries kube-apiserver's front-proxy
// certificate. Identities still come from each request's X-Remote-* headers.
// A request it cannot authenticate (no proxy certificate, or a client
// certificate of another CA) goes on to upstream's authenticator as before.
func cacheFrontProxyVerification(c *genericapiserver.RecommendedConfig) {
	rh := c.Authentication.RequestHeaderConfig
	if rh == nil || c.Authentication.Authenticator == nil {
		return
	}
	frontProxy := clientcert.NewRequestHeader(clientcert.NewCache(clock.RealClock{}), rh.CAContentProvider.VerifyOptions,
		rh.AllowedClientNames, rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders, rh.ExtraHeaderPrefixes)
	c.Authentication.Authenticator = unionauthn.New(group.NewAuthenticatedGroupAdder(frontProxy), c.Authentication.Authenticator)
}

// Run serves until ctx is done, then drains in-flight requests and, in
// embedded mode, stops etcd last.
func (o *Options) Run(ctx context.Context) error {
	cfg, closer, err := o.Config()
	if err != nil {
		return err
	}
	defer closer()

	server, err := cfg.Complete().New()
	if err != nil {
		return err
	}
	prepared := server.GenericAPIServer.PrepareRun()
	if o.localAuth {
		if err := o.writeKubeconfig(); err != nil {
			return err
		}
	}
	return prepared.RunWithContext(ctx)
}

func (o *Options) writeKubeconfig() error {
	host := "127.0.0.1"
	if addr := o.RecommendedOptions.SecureServing.BindAddress; addr != nil && !addr.IsUnspecified() {
		host = addr.String()
	}
	server := "https://" + net.JoinHostPort(host, strconv.Itoa(o.RecommendedOptions.SecureServing.BindPort))
	path := o.kubeconfigPath()
	if err := o.pki.WriteAdminKubeconfig(path, server); err != nil {
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
