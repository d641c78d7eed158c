package cmd

import (
	"fmt"
	"net"
	"strconv"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	serverstorage "k8s.io/apiserver/pkg/server/storage"
	"k8s.io/client-go/kubernetes"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/clock"
	netutils "k8s.io/utils/net"

	"github.com/flagpole-dev/flagpole/pkg/admission/flagpoleinitializer"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	flagpoleapiserver "github.com/flagpole-dev/flagpole/pkg/apiserver"
	"github.com/flagpole-dev/flagpole/pkg/connguard"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	"github.com/flagpole-dev/flagpole/pkg/controllers/servingcert"
	"github.com/flagpole-dev/flagpole/pkg/fairness"
	generatedopenapi "github.com/flagpole-dev/flagpole/pkg/generated/openapi"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/pkg/usage/etcdrecords"
	"github.com/flagpole-dev/flagpole/pkg/version"
)

// Config builds the server configuration from validated options. It does
// what standalone mode needs first (startStandalone: lock --data-dir, load or
// create the local PKI, start embedded etcd). The caller owns the returned
// closer, which stops etcd and releases the lock; call it after the server
// has drained.
func (o CompletedOptions) Config() (cfg *flagpoleapiserver.Config, closer func(), err error) {
	p, err := o.prepare()
	if err != nil {
		return nil, nil, err
	}
	return p.server, p.close, nil
}

// prepared is the server configuration and what Run needs beside it.
type prepared struct {
	server *flagpoleapiserver.Config
	// pki is standalone mode's local CA, which the admin kubeconfig trusts;
	// nil in delegated mode.
	pki   *standalone.PKI
	close func()
}

func (o CompletedOptions) prepare() (p prepared, err error) {
	state, err := o.startStandalone()
	if err != nil {
		return prepared{}, err
	}
	defer func() {
		if err != nil {
			state.close()
		}
	}()
	etcd := *o.RecommendedOptions.Etcd
	if state.etcdURL != "" {
		etcd.StorageConfig.Transport.ServerList = []string{state.etcdURL}
	}
	server, err := o.config(&etcd, state.pki)
	if err != nil {
		return prepared{}, err
	}
	state.applyTo(server.GenericConfig)
	return prepared{server: server, pki: state.pki, close: state.close}, nil
}

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

// config applies the options, with etcd the storage to use and pki
// standalone mode's local CA.
func (o CompletedOptions) config(etcd *genericoptions.EtcdOptions, pki *standalone.PKI) (*flagpoleapiserver.Config, error) {
	rec := *o.RecommendedOptions
	if err := storageCodec(etcd); err != nil {
		return nil, err
	}
	rec.Etcd = etcd
	if !o.standalone {
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

	// One informer factory of Flagpole's kinds, reading the server's own
	// stores, for everyone: admission (through its initializer), the
	// evaluator, the controllers and OFREP's change events.
	informers := flagpoleapiserver.NewLocalInformers(flagpoleapiserver.Scheme)
	rec.ExtraAdmissionInitializers = func(*genericapiserver.RecommendedConfig) ([]admission.PluginInitializer, error) {
		return []admission.PluginInitializer{flagpoleinitializer.New(informers.Factory())}, nil
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
	servingCert, err := o.selfManagedServingCert(serverConfig)
	if err != nil {
		return nil, err
	}
	if o.standaloneFairness {
		serverConfig.FlowControl, serverConfig.SharedInformerFactory = fairness.Standalone(serverConfig.MaxRequestsInFlight + serverConfig.MaxMutatingRequestsInFlight)
	}
	if o.standalone {
		if err := o.applyStandaloneAuthentication(serverConfig, pki); err != nil {
			return nil, err
		}
		if err := applyStandaloneAdmission(serverConfig, informers.Factory()); err != nil {
			return nil, err
		}
	} else {
		cacheFrontProxyVerification(serverConfig)
		if err := unthrottleDelegatedAuthorization(serverConfig, rec.Authorization); err != nil {
			return nil, err
		}
	}
	lifecycle := flagpoleapiserver.LifecycleConfig{
		UsageRecordsPrefix: etcdrecords.Prefix(etcd.StorageConfig.Prefix),
		UsageFlushInterval: o.Lifecycle.UsageFlushInterval,
		Stale:              o.Lifecycle.stalePolicy(),
		RevisionLimit:      o.Lifecycle.RevisionLimit,
		RevisionMaxAge:     o.Lifecycle.RevisionMaxAge,

		DisableUsageCounting: !o.Lifecycle.UsageCounting,
	}
	// Delegated: Events go to kube-apiserver as Flagpole (the core API's
	// credentials, its ServiceAccount in a pod). Standalone has none.
	if !o.standalone && serverConfig.ClientConfig != nil {
		kube, err := kubernetes.NewForConfig(serverConfig.ClientConfig)
		if err != nil {
			return nil, fmt.Errorf("kube client for events: %w", err)
		}
		lifecycle.EventsClient = kube
	}
	cors, err := ofrep.ParseCORS(o.OFREPCORSAllowedOrigins)
	if err != nil {
		return nil, err
	}
	rollouts, err := o.Rollouts.config()
	if err != nil {
		return nil, err
	}
	http1, err := o.http1Listener(rec.SecureServing)
	if err != nil {
		return nil, err
	}
	return &flagpoleapiserver.Config{
		GenericConfig: serverConfig,
		ExtraConfig: flagpoleapiserver.ExtraConfig{
			Informers:     informers,
			EventStreams:  o.EventStreams,
			OFREPCORS:     cors,
			Connections:   connguard.New(o.Connections, clock.RealClock{}),
			HTTP1Listener: http1,
			ElectionEtcd:  etcd.StorageConfig.Transport,
			ElectionKey:   leaderelection.Key(etcd.StorageConfig.Prefix),
			Lifecycle:     lifecycle,
			Rollouts:      rollouts,
			ServingCert:   servingCert,
		},
	}, nil
}

// selfManagedServingCert, in self-managed mode, makes every replica serve
// the Secret's key pair (the certificate from --cert-dir until it has one)
// and says what the leader keeps; nil otherwise.
func (o CompletedOptions) selfManagedServingCert(serverConfig *genericapiserver.RecommendedConfig) (*flagpoleapiserver.SelfManagedServingCert, error) {
	if o.ServingCertMode != servingcert.ModeSelfManaged {
		return nil, nil
	}
	namespace, name, err := splitSecretRef(o.ServingCertSecret)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(serverConfig.ClientConfig)
	if err != nil {
		return nil, err
	}
	agg, err := aggregator.NewForConfig(serverConfig.ClientConfig)
	if err != nil {
		return nil, err
	}
	content := servingcert.NewContent(kube, namespace, name, serverConfig.SecureServing.Cert)
	serverConfig.SecureServing.Cert = content
	return &flagpoleapiserver.SelfManagedServingCert{
		Content: content, Hosts: o.TLSSANs, Schedule: o.ServingCertSchedule, Kube: kube, Aggregator: agg,
	}, nil
}

// http1Listener listens on --http1-secure-port at the secure port's
// address; nil when the port is 0.
func (o CompletedOptions) http1Listener(secure *genericoptions.SecureServingOptionsWithLoopback) (net.Listener, error) {
	if o.HTTP1Listener != nil {
		return o.HTTP1Listener, nil
	}
	if o.HTTP1Port == 0 {
		return nil, nil
	}
	addr := net.JoinHostPort(secure.BindAddress.String(), strconv.Itoa(o.HTTP1Port))
	l, _, err := genericoptions.CreateListener(secure.BindNetwork, addr, net.ListenConfig{})
	if err != nil {
		return nil, fmt.Errorf("--http1-secure-port: %w", err)
	}
	return l, nil
}
