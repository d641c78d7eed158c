// Package apiserver wires the flagpole.dev API group into a k8s.io/apiserver
// generic server: Config → CompletedConfig → Server, as upstream does.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/connguard"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flagstatus"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	evaluationmetrics "github.com/flagpole-dev/flagpole/pkg/evaluator/metrics"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/evaluations"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/expression"
	flagstorage "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/flag"
	flagoverridestorage "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/flagoverride"
	segmentstorage "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/segment"
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

	// ElectionEtcd reaches the etcd the server stores in. When it names
	// servers, the in-server controllers run only while this replica holds
	// the election at ElectionKey there; otherwise they always run.
	ElectionEtcd storagebackend.TransportConfig
	// ElectionKey is the election's key prefix in that etcd, outside the
	// storage prefix (leaderelection.Key).
	ElectionKey string
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
		gc.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			inner := withHealthDetail(withPatchDepthLimit(h, c.MaxRequestBodyBytes), c.Authorization.Authorizer)
			chain := ofrep.WithErrorBodies(buildChain(inner, c))
			if guard != nil {
				chain = guard.Handler(chain)
			}
			return chain
		}
		if guard != nil && gc.SecureServing != nil && gc.SecureServing.Listener != nil {
			gc.SecureServing.Listener = guard.Listener(gc.SecureServing.Listener)
		}
	}
	return CompletedConfig{&completedConfig{cfg.GenericConfig.Complete(), &cfg.ExtraConfig}}
}

// New builds the server and installs the flagpole.dev API group.
func (c completedConfig) New() (*Server, error) {
	if c.ExtraConfig.Informers == nil {
		return nil, errors.New("flagpole apiserver: ExtraConfig.Informers is required")
	}
	genericServer, err := c.GenericConfig.New("flagpole-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	s := &Server{GenericAPIServer: genericServer}
	factory := c.ExtraConfig.Informers.Factory()

	source, err := evaluator.New(factory, clock.RealClock{}, evaluationmetrics.Observer())
	if err != nil {
		return nil, err
	}
	client, err := clientset.NewForConfig(c.GenericConfig.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	// The controllers are made afresh for each term of leadership, once the
	// informers run; the informers they read are the evaluator's, known to
	// the factory before it starts.
	runControllers := func(ctx context.Context) error {
		statusController, err := flagstatus.New(client, factory, source, clock.RealClock{})
		if err != nil {
			return err
		}
		statusController.Run(ctx, 2)
		return nil
	}

	changes, err := ofrep.NewChanges(factory, clock.RealClock{}, c.ExtraConfig.EventStreams)
	if err != nil {
		return nil, err
	}
	s.GenericAPIServer.Handler.NonGoRestfulMux.HandlePrefix(ofrep.PathPrefix,
		ofrep.NewHandler(ofrepEvaluator{source}, changes, http.NotFoundHandler()))
	if err := s.GenericAPIServer.AddPreShutdownHook("close-ofrep-event-streams", func() error {
		changes.Close()
		return nil
	}); err != nil {
		return nil, err
	}

	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(flagpole.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	v1beta1Storage, err := c.v1beta1Storage(source)
	if err != nil {
		return nil, err
	}
	apiGroupInfo.VersionedResourcesStorageMap[v1beta1.SchemeGroupVersion.Version] = v1beta1Storage
	if err := c.ExtraConfig.Informers.Serve(v1beta1Storage); err != nil {
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
	if err := s.GenericAPIServer.AddPostStartHook("start-flagpole-informers", func(ctx genericapiserver.PostStartHookContext) error {
		factory.Start(ctx.Done())
		return nil
	}); err != nil {
		return nil, err
	}
	if err := c.addControllers(s.GenericAPIServer, runControllers); err != nil {
		return nil, err
	}
	return s, nil
}

// addControllers starts the in-server controllers once the server serves:
// under leader election on the server's etcd, so that of several replicas
// only one runs them, or, with no etcd to elect on, directly.
func (c completedConfig) addControllers(s *genericapiserver.GenericAPIServer, run func(context.Context) error) error {
	if len(c.ExtraConfig.ElectionEtcd.ServerList) == 0 {
		return s.AddPostStartHook("flagpole-controllers", func(ctx genericapiserver.PostStartHookContext) error {
			go func() {
				if err := run(ctx); err != nil {
					klog.ErrorS(err, "Flagpole controllers stopped")
				}
			}()
			return nil
		})
	}
	etcdClient, err := leaderelection.NewClient(c.ExtraConfig.ElectionEtcd)
	if err != nil {
		return fmt.Errorf("etcd client for leader election: %w", err)
	}
	elector, err := leaderelection.New(leaderelection.Config{
		Client:   etcdClient,
		Key:      c.ExtraConfig.ElectionKey,
		Identity: c.electionIdentity(),
		Lead:     run,
	})
	if err != nil {
		etcdClient.Close()
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
		etcdClient.Close()
		return err
	}
	// The hooks' context ends only once the server stops accepting
	// requests. The controllers stop when shutdown begins instead: the
	// elector stops them and resigns, so that another replica takes over at
	// once rather than after the session's TTL. Waiting for it here keeps
	// the resignation ahead of the process's exit and of embedded etcd's stop.
	return s.AddPreShutdownHook("resign-controller-leadership", func() error {
		stop()
		defer etcdClient.Close()
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

func (c completedConfig) v1beta1Storage(source *evaluator.Evaluator) (map[string]rest.Storage, error) {
	getter := c.GenericConfig.RESTOptionsGetter
	// A flag's status is derived in the write that changes its spec, from
	// the segments the informers know; the controller writes only when they
	// or the time change it later.
	status := flagstatus.AtWrite(source, clock.RealClock{})
	flags, err := flagstorage.NewStorage(Scheme, getter, expression.Compile, status)
	if err != nil {
		return nil, err
	}
	segments, err := segmentstorage.NewREST(Scheme, getter, expression.Compile)
	if err != nil {
		return nil, err
	}
	overrides, err := flagoverridestorage.NewREST(Scheme, getter)
	if err != nil {
		return nil, err
	}
	return map[string]rest.Storage{
		"flags":          flags.Flag,
		"flags/status":   flags.Status,
		"flags/evaluate": evaluations.NewEvaluateREST(source),
		"segments":       segments,
		"flagoverrides":  overrides,
		"evaluations":    evaluations.NewBulkREST(source),
	}, nil
}

// ofrepEvaluator adapts the evaluator to OFREP, whose requests carry no flag
// type and whose bulk evaluation is every flag of the namespace.
type ofrepEvaluator struct {
	*evaluator.Evaluator
}

func (e ofrepEvaluator) Evaluate(ctx context.Context, namespace, key string, c *evaluation.Context) (v1beta1.FlagEvaluation, bool) {
	return e.Evaluator.Evaluate(ctx, namespace, key, c, "")
}

func (e ofrepEvaluator) EvaluateAll(ctx context.Context, namespace string, c *evaluation.Context) []v1beta1.FlagEvaluation {
	return e.Evaluator.EvaluateAll(ctx, namespace, nil, labels.Everything(), c)
}
