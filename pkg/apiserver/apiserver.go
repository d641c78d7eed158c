// Package apiserver wires the flagpole.dev API group into a k8s.io/apiserver
// generic server: Config → CompletedConfig → Server, as upstream does.
package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/request/union"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/connguard"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flaghistory"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flagstatus"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	rolloutplancontroller "github.com/flagpole-dev/flagpole/pkg/controllers/rolloutplan"
	"github.com/flagpole-dev/flagpole/pkg/controllers/servingcert"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	"github.com/flagpole-dev/flagpole/pkg/evaluator/telemetry"
	"github.com/flagpole-dev/flagpole/pkg/flagevents"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/evaluations"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/expression"
	flagstorage "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/flag"
	flagoverridestorage "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/flagoverride"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/flagrevision"
	segmentstorage "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/segment"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/usagereport"
	"github.com/flagpole-dev/flagpole/pkg/rolloutplan"
	"github.com/flagpole-dev/flagpole/pkg/usage"
	"github.com/flagpole-dev/flagpole/pkg/usage/etcdrecords"
)

var (
	// Scheme knows every flagpole.dev type, internal and versioned.
	Scheme = runtime.NewScheme()
	// Codecs serialises the types in Scheme.
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	install.Install(Scheme)

	// The generic server serves these meta types (Status, discovery documents,
	// and the options types of every request) without a group.
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	Scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{},
		&metav1.APIVersions{},
		&metav1.APIGroupList{},
		&metav1.APIGroup{},
		&metav1.APIResourceList{},
	)
}

// ExtraConfig is Flagpole's own configuration beyond the generic server's.
type ExtraConfig struct {
	// Informers hold Flagpole's own objects, read from the server's stores
	// (New hands it them): the evaluator, the status controller, OFREP's
	// change events and admission read from them. The admission chain in
	// GenericConfig must have been given the same factory. The server starts
	// them once it serves. Required.
	Informers *LocalInformers
	// EventStreams bounds OFREP's open event streams.
	EventStreams ofrep.StreamLimits
	// Connections, when set, guards the server's connections (per-address
	// limit, first-request timeout, stream resets, body reads): it wraps the
	// listener and runs first in the handler chain.
	Connections *connguard.Guard
	// OFREPCORS is OFREP's cross-origin policy (nil: none); browser origins
	// it allows get event streams they can open with a ticket.
	OFREPCORS *ofrep.CORS
	// HTTP1Listener, when set, serves the same API over HTTP/1.1 only
	// (--http1-secure-port, http1.go): the port for kube-apiserver's
	// aggregator.
	HTTP1Listener net.Listener

	// streamTickets authenticate browsers' OFREP event streams; Complete
	// makes them and puts them ahead of the other authenticators.
	streamTickets *ofrep.StreamTickets
	// directEvaluate answers common flags/evaluate requests without the
	// generic create handler, inside the filter chain; New gives it the
	// evaluator.
	directEvaluate *evaluations.DirectEvaluate

	// ElectionEtcd reaches the etcd the server stores in. When it names
	// servers, the in-server controllers run only while this replica holds
	// the election at ElectionKey there; otherwise they always run.
	ElectionEtcd storagebackend.TransportConfig
	// ElectionKey is the election's key prefix in that etcd, outside the
	// storage prefix (leaderelection.Key).
	ElectionKey string
	// ServingCert, when set, is the self-managed serving certificate
	// (--serving-cert-mode=self-managed): GenericConfig.SecureServing.Cert
	// is its Content, and the in-server controllers keep its Secret.
	ServingCert *SelfManagedServingCert

	// Lifecycle configures usage counting, staleness, history and events.
	Lifecycle LifecycleConfig
	// Rollouts configures the rollout plan controller.
	Rollouts RolloutsConfig
}

// RolloutsConfig configures how rollout plans run.
type RolloutsConfig struct {
	// Guards reads the steps' Prometheus guards; nil: there is no
	// Prometheus, and a plan reaching a guarded step pauses.
	Guards rolloutplan.GuardReader
	// GuardInterval is how often a current step's guard is read.
	GuardInterval time.Duration
}

// LifecycleConfig configures what the server records of each flag's life.
type LifecycleConfig struct {
	// UsageRecordsPrefix is where replicas store their usage records in
	// ElectionEtcd, outside the storage prefix (etcdrecords.Prefix). Without
	// an etcd usage is counted in memory only.
	UsageRecordsPrefix string
	// UsageFlushInterval is how often each replica writes its record, and
	// how often staleness is checked again.
	UsageFlushInterval time.Duration
	// Stale decides when a flag is stale.
	Stale flagstatus.Policy
	// RevisionLimit and RevisionMaxAge bound each flag's history.
	RevisionLimit  int
	RevisionMaxAge time.Duration
	// EventsClient, when set (delegated mode), receives Events about flags;
	// without it they are only logged.
	EventsClient kubernetes.Interface
	// DisableUsageCounting turns usage off: evaluations are not counted,
	// nothing is written, and staleness does not depend on usage.
	DisableUsageCounting bool
}

// SelfManagedServingCert is what the server needs to keep its own serving
// certificate.
type SelfManagedServingCert struct {
	// Content is what every replica serves, from the Secret.
	Content *servingcert.Content
	// Hosts are names the certificate carries beside the APIServices'
	// Services (--tls-san).
	Hosts    []string
	Schedule servingcert.Schedule
	// Kube and Aggregator reach kube-apiserver as the server's identity.
	Kube       kubernetes.Interface
	Aggregator aggregator.Interface
}

// Config is the whole configuration of a Flagpole server.
type Config struct {
	GenericConfig *genericapiserver.RecommendedConfig
	ExtraConfig   ExtraConfig
}

type completedConfig struct {
	GenericConfig genericapiserver.CompletedConfig
	ExtraConfig   *ExtraConfig
}

// CompletedConfig can only be made by Complete, so New always sees defaults filled in.
type CompletedConfig struct {
	*completedConfig
}

// Server is a running Flagpole API server.
type Server struct {
	GenericAPIServer *genericapiserver.GenericAPIServer

	// http1Stopped is closed when the HTTP/1.1 port has shut down; nil
	// without one.
	http1Stopped <-chan struct{}
}

// Complete fills in what the generic server derives from the rest.
func (cfg *Config) Complete() CompletedConfig {
	// OFREP paths get the request attributes of the resources they mirror,
	// so the whole filter chain (authorization, audit, flow control) treats
	// them as it treats flags/evaluate and evaluations; its event stream is
	// long-running, like a watch.
	gc := &cfg.GenericConfig.Config
	if _, done := gc.RequestInfoResolver.(ofrep.RequestInfoResolver); !done {
		next := gc.RequestInfoResolver
		if next == nil {
			next = genericapiserver.NewRequestInfoResolver(gc)
		}
		gc.RequestInfoResolver = ofrep.RequestInfoResolver{Next: next}
		longRunning := gc.LongRunningFunc
		gc.LongRunningFunc = func(r *http.Request, ri *genericapirequest.RequestInfo) bool {
			return ofrep.IsLongRunning(r) || longRunning(r, ri)
		}
		buildChain := gc.BuildHandlerChainFunc
		guard := cfg.ExtraConfig.Connections
		cors := cfg.ExtraConfig.OFREPCORS
		direct := &evaluations.DirectEvaluate{}
		cfg.ExtraConfig.directEvaluate = direct
		gc.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			inner := withHealthDetail(withPatchDepthLimit(direct.Wrap(h), c.MaxRequestBodyBytes), c.Authorization.Authorizer)
			// OFREP's CORS goes outside the filter chain: a preflight has no
			// credentials to authenticate, and its headers belong on the
			// chain's refusals (401, 429) too.
			chain := ofrep.WithCORS(ofrep.WithErrorBodies(buildChain(inner, c)), cors)
			if guard != nil {
				chain = guard.Handler(chain)
			}
			return chain
		}
		if guard != nil && gc.SecureServing != nil && gc.SecureServing.Listener != nil {
			gc.SecureServing.Listener = guard.Listener(gc.SecureServing.Listener)
		}
		if l := cfg.ExtraConfig.HTTP1Listener; guard != nil && l != nil {
			cfg.ExtraConfig.HTTP1Listener = guard.Listener(l)
		}
		// A ticket authenticates a browser's event stream (it cannot send
		// a bearer token); requests without one go on to the others.
		cfg.ExtraConfig.streamTickets = ofrep.NewStreamTickets(clock.RealClock{})
		if auth := gc.Authentication.Authenticator; auth != nil {
			gc.Authentication.Authenticator = union.NewFailOnError(cfg.ExtraConfig.streamTickets, auth)
		}
	}
	return CompletedConfig{&completedConfig{cfg.GenericConfig.Complete(), &cfg.ExtraConfig}}
}

// New builds the server and installs the flagpole.dev API group.
func (c completedConfig) New() (_ *Server, err error) {
	if c.ExtraConfig.Informers == nil {
		return nil, errors.New("flagpole apiserver: ExtraConfig.Informers is required")
	}
	genericServer, err := c.GenericConfig.New("flagpole-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	s := &Server{GenericAPIServer: genericServer}
	if l := c.ExtraConfig.HTTP1Listener; l != nil {
		if genericServer.SecureServingInfo == nil {
			return nil, errors.New("flagpole apiserver: an HTTP/1.1 port needs secure serving")
		}
		if err := s.serveHTTP1(l); err != nil {
			return nil, err
		}
	}
	factory := c.ExtraConfig.Informers.Factory()
	lc := c.ExtraConfig.Lifecycle
	if lc.UsageFlushInterval <= 0 {
		lc.UsageFlushInterval = etcdrecords.DefaultInterval
	}
	if lc.RevisionLimit <= 0 {
		lc.RevisionLimit = flaghistory.DefaultRevisionLimit
	}
	if lc.RevisionMaxAge <= 0 {
		lc.RevisionMaxAge = flaghistory.DefaultRevisionMaxAge
	}

	// Usage: counted in memory on every evaluation, merged with the other
	// replicas' records on every read of a flag.
	counter := usage.NewCounter(clock.RealClock{}, usage.DefaultMaxFlags)
	view := usage.NewView(counter)
	observers := []evaluator.Observer{telemetry.Metrics(), telemetry.TraceEvents()}
	usageSource := flagstatus.UsageFrom(view)
	if lc.DisableUsageCounting {
		view, usageSource = usage.NewView(nil), flagstatus.NoUsage
	} else {
		observers = append(observers, counter.Observer())
	}
	source, err := evaluator.New(factory, clock.RealClock{}, observers...)
	if err != nil {
		return nil, err
	}
	flagExists := func(namespace, name string, uid types.UID) bool {
		f, err := source.Flags().Flags(namespace).Get(name)
		return err == nil && f.UID == uid
	}
	flagEvents := flagevents.New(lc.EventsClient, Scheme)

	var etcdClient *clientv3.Client
	if len(c.ExtraConfig.ElectionEtcd.ServerList) > 0 {
		if etcdClient, err = leaderelection.NewClient(c.ExtraConfig.ElectionEtcd); err != nil {
			return nil, fmt.Errorf("etcd client for leader election and usage records: %w", err)
		}
		// Closed by the destroy function once the server ran; here if it
		// never will.
		defer func() {
			if err != nil {
				etcdClient.Close()
			}
		}()
	}
	var records *etcdrecords.Store
	if etcdClient != nil && lc.UsageRecordsPrefix != "" && !lc.DisableUsageCounting {
		records, err = etcdrecords.New(etcdrecords.Config{
			Client: etcdClient, Prefix: lc.UsageRecordsPrefix, Replica: c.replicaName(),
			Counter: counter, View: view, Interval: lc.UsageFlushInterval, Exists: flagExists,
		})
		if err != nil {
			return nil, err
		}
	}

	client, err := clientset.NewForConfig(c.GenericConfig.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(flagpole.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	stores, err := c.v1beta1Storage(source, view, counter, usageSource, lc, flagEvents.Recorder())
	if err != nil {
		return nil, err
	}
	if d := c.ExtraConfig.directEvaluate; d != nil {
		d.Serve(evaluations.NewEvaluateREST(source), c.GenericConfig.AdmissionControl, Scheme, Codecs, c.GenericConfig.EquivalentResourceRegistry, c.GenericConfig.MaxRequestBodyBytes)
	}

	newServingCertController := c.servingCertController()
	// The controllers are made afresh for each term of leadership, once the
	// informers run; the informers they read are the evaluator's, known to
	// the factory before it starts. A term ends once every controller has
	// stopped.
	runControllers := func(ctx context.Context) error {
		statusController, err := flagstatus.New(client, factory, source, clock.RealClock{},
			flagstatus.WithUsage(usageSource, lc.Stale, lc.UsageFlushInterval))
		if err != nil {
			return err
		}
		historyController, err := flaghistory.New(factory, stores.revisionWriter, flagEvents.Recorder(), lc.RevisionLimit, clock.RealClock{})
		if err != nil {
			return err
		}
		rollouts, err := rolloutplancontroller.New(client, factory, flagEvents.Recorder(), c.ExtraConfig.Rollouts.Guards, c.ExtraConfig.Rollouts.GuardInterval, clock.RealClock{})
		if err != nil {
			return err
		}
		var servingCertController *servingcert.Controller
		if newServingCertController != nil {
			if servingCertController, err = newServingCertController(); err != nil {
				return err
			}
		}
		var wg sync.WaitGroup
		wg.Go(func() { historyController.Run(ctx, 2) })
		wg.Go(func() { rollouts.Run(ctx, 2) })
		if servingCertController != nil {
			wg.Go(func() { servingCertController.Run(ctx) })
		}
		if records != nil {
			// Replicas that stopped leave their records behind: the leader
			// moves them into the archive.
			wg.Go(func() {
				wait.UntilWithContext(ctx, func(ctx context.Context) {
					if err := records.Fold(ctx, flagExists); err != nil && ctx.Err() == nil {
						klog.ErrorS(err, "Archiving the usage records of stopped replicas failed")
					}
				}, lc.UsageFlushInterval)
			})
		}
		statusController.Run(ctx, 2)
		wg.Wait()
		return nil
	}

	changes, err := ofrep.NewChanges(factory, source, clock.RealClock{}, c.ExtraConfig.EventStreams)
	if err != nil {
		return nil, err
	}
	ofrepHandler := ofrep.NewHandler(ofrepEvaluator{source}, changes, http.NotFoundHandler())
	ofrepHandler.Tickets = c.ExtraConfig.streamTickets
	s.GenericAPIServer.Handler.NonGoRestfulMux.HandlePrefix(ofrep.PathPrefix, ofrepHandler)
	if err := s.GenericAPIServer.AddPreShutdownHook("close-ofrep-event-streams", func() error {
		changes.Close()
		return nil
	}); err != nil {
		return nil, err
	}
	// Pre-shutdown hooks run when shutdown starts, with the shutdown delay:
	// from then on every answer sends its client to another connection, so
	// that kept connections have moved to other replicas before this one
	// stops taking requests.
	if guard := c.ExtraConfig.Connections; guard != nil {
		if err := s.GenericAPIServer.AddPreShutdownHook("drain-connections", func() error {
			guard.Drain()
			return nil
		}); err != nil {
			return nil, err
		}
	}

	apiGroupInfo.VersionedResourcesStorageMap[v1beta1.SchemeGroupVersion.Version] = stores.served
	if err := c.ExtraConfig.Informers.Serve(stores.local); err != nil {
		return nil, err
	}
	if err := s.GenericAPIServer.InstallAPIGroup(&apiGroupInfo); err != nil {
		return nil, err
	}

	// /readyz stays false until every store's watch cache has synced, so a
	// fresh replica never answers from an empty cache.
	if err := s.GenericAPIServer.AddPostStartHook("storage-readiness", s.GenericAPIServer.StorageReadinessHook.Hook); err != nil {
		return nil, err
	}
	// Evaluation answers from watch-fed memory; until that has synced the
	// server is not ready.
	if err := s.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck("flag-evaluation-state", func(*http.Request) error {
		return source.Check()
	})); err != nil {
		return nil, err
	}
	if sc := c.ExtraConfig.ServingCert; sc != nil {
		if err := s.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck("serving-certificate", sc.Content.Check)); err != nil {
			return nil, err
		}
	}
	if err := s.GenericAPIServer.AddPostStartHook("start-flagpole-informers", func(ctx genericapiserver.PostStartHookContext) error {
		factory.Start(ctx.Done())
		return nil
	}); err != nil {
		return nil, err
	}
	// Every replica records its own rule errors and writes its own usage.
	if err := s.GenericAPIServer.AddPostStartHook("flagpole-usage-and-events", func(ctx genericapiserver.PostStartHookContext) error {
		if err := flagEvents.Start(ctx); err != nil {
			return err
		}
		go flagevents.ReportRuleErrors(ctx, lc.UsageFlushInterval, counter, source.Flags(), flagEvents.Recorder())
		if records != nil {
			go records.Run(ctx)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := c.addControllers(s.GenericAPIServer, etcdClient, runControllers); err != nil {
		return nil, err
	}
	// Once the server has stopped answering: the last counts, then the
	// etcd client they and the election share.
	var closeOnce sync.Once
	s.GenericAPIServer.RegisterDestroyFunc(func() {
		closeOnce.Do(func() {
			if records != nil {
				records.Close()
			}
			if etcdClient != nil {
				etcdClient.Close()
			}
		})
	})
	return s, nil
}

// replicaName names this replica's usage record: the election's identity
// and a random suffix, unique to this process, so that a restarted replica
// never takes over the record of one that may still be writing.
func (c completedConfig) replicaName() string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return c.electionIdentity() + "-" + hex.EncodeToString(suffix)
}

// addControllers starts the in-server controllers once the server serves:
// under leader election on the server's etcd, so that of several replicas
// only one runs them, or, with no etcd to elect on, directly.
func (c completedConfig) addControllers(s *genericapiserver.GenericAPIServer, etcdClient *clientv3.Client, run func(context.Context) error) error {
	if etcdClient == nil {
		return s.AddPostStartHook("flagpole-controllers", func(ctx genericapiserver.PostStartHookContext) error {
			go func() {
				if err := run(ctx); err != nil {
					klog.ErrorS(err, "Flagpole controllers stopped")
				}
			}()
			return nil
		})
	}
	elector, err := leaderelection.New(leaderelection.Config{
		Client:   etcdClient,
		Key:      c.ExtraConfig.ElectionKey,
		Identity: c.electionIdentity(),
		Lead:     run,
	})
	if err != nil {
		return err
	}
	var started atomic.Bool
	stopCtx, stop := context.WithCancel(context.Background())
	if err := s.AddPostStartHook("flagpole-controllers", func(ctx genericapiserver.PostStartHookContext) error {
		started.Store(true)
		electionCtx, cancel := context.WithCancel(ctx)
		context.AfterFunc(stopCtx, cancel)
		go elector.Run(electionCtx)
		return nil
	}); err != nil {
		stop()
		return err
	}
	// The hooks' context ends only once the server stops accepting
	// requests. The controllers stop when shutdown begins instead: the
	// elector stops them and resigns, so that another replica takes over at
	// once rather than after the session's TTL. Waiting for it here keeps
	// the resignation ahead of the process's exit and of embedded etcd's stop.
	return s.AddPreShutdownHook("resign-controller-leadership", func() error {
		stop()
		if !started.Load() {
			return nil
		}
		select {
		case <-elector.Done():
		case <-time.After(leaderelection.DefaultResignTimeout + 2*time.Second):
			klog.InfoS("Leader election did not end in time; the election lapses with its lease", "ttl", leaderelection.DefaultTTL)
		}
		return nil
	})
}

// servingCertController returns, in self-managed mode, what makes the
// serving certificate's controller for a term of leadership; nil otherwise.
// It keeps the caBundle of one APIService per version served.
func (c completedConfig) servingCertController() func() (*servingcert.Controller, error) {
	sc := c.ExtraConfig.ServingCert
	if sc == nil {
		return nil
	}
	var apiServices []string
	for _, gv := range Scheme.PrioritizedVersionsForGroup(flagpole.GroupName) {
		apiServices = append(apiServices, gv.Version+"."+gv.Group)
	}
	return func() (*servingcert.Controller, error) {
		return servingcert.NewController(servingcert.ControllerConfig{
			Content:     sc.Content,
			APIServices: apiServices,
			Hosts:       sc.Hosts,
			Schedule:    sc.Schedule,
			Kube:        sc.Kube,
			Aggregator:  sc.Aggregator,
			Clock:       clock.RealClock{},
		})
	}
}

// electionIdentity names this replica in the election: the host name (a
// pod's name) and the address it serves on, which tell apart several
// replicas on one host.
func (c completedConfig) electionIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return leaderelection.DefaultIdentity()
	}
	if ss := c.GenericConfig.SecureServing; ss != nil && ss.Listener != nil {
		return host + "_" + ss.Listener.Addr().String()
	}
	return leaderelection.DefaultIdentity()
}

// storage is what New installs: the served resources, the stores the
// server's own informers read, and where revisions are written.
type storage struct {
	served, local  map[string]rest.Storage
	revisionWriter flagrevision.Writer
}

func (c completedConfig) v1beta1Storage(source *evaluator.Evaluator, view *usage.View, counter *usage.Counter, usageSource flagstatus.UsageSource, lc LifecycleConfig, recorder flagevents.Recorder) (storage, error) {
	getter := c.GenericConfig.RESTOptionsGetter
	// A flag's status is derived in the write that changes its spec, from
	// the segments the informers know and its usage; the controller writes
	// only when they or the time change it later.
	status := flagstatus.AtWrite(source, usageSource, lc.Stale, clock.RealClock{})
	flags, err := flagstorage.NewStorage(Scheme, getter, expression.Compile, status, view)
	if err != nil {
		return storage{}, err
	}
	segments, err := segmentstorage.NewREST(Scheme, getter, expression.Compile)
	if err != nil {
		return storage{}, err
	}
	overrides, err := flagoverridestorage.NewREST(Scheme, getter)
	if err != nil {
		return storage{}, err
	}
	revisions, writer, err := flagrevision.NewStorage(Scheme, getter, lc.RevisionMaxAge)
	if err != nil {
		return storage{}, err
	}
	served := map[string]rest.Storage{
		"flags":          flags.Flag,
		"flags/status":   flags.Status,
		"flags/evaluate": evaluations.NewEvaluateREST(source),
		"flags/rollout":  flagstorage.NewRolloutREST(flags.Status, recorder, clock.RealClock{}),
		"segments":       segments,
		"flagoverrides":  overrides,
		"evaluations":    evaluations.NewBulkREST(source),
		"flagrevisions":  revisions,
		"usagereports":   usagereport.NewREST(source.Flags(), counter, clock.RealClock{}),
	}
	// The server's informers read flags as stored, without usage.
	local := map[string]rest.Storage{"flags": flags.Local, "segments": segments, "flagoverrides": overrides}
	return storage{served: served, local: local, revisionWriter: writer}, nil
}

// ofrepEvaluator adapts the evaluator to OFREP, whose requests carry no flag
// type and whose bulk evaluation is every flag of the namespace.
type ofrepEvaluator struct {
	*evaluator.Evaluator
}

func (e ofrepEvaluator) Evaluate(ctx context.Context, namespace, key string, c *evaluation.Context) (v1beta1.FlagEvaluation, bool) {
	return e.Evaluator.Evaluate(ctx, namespace, key, c, evaluator.Options{})
}

func (e ofrepEvaluator) EvaluateAll(ctx context.Context, namespace string, c *evaluation.Context) []v1beta1.FlagEvaluation {
	return e.Evaluator.EvaluateAll(ctx, namespace, nil, labels.Everything(), c, evaluator.Options{})
}
