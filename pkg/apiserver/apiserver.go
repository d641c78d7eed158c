// Package apiserver wires the flagpole.dev API group into a k8s.io/apiserver
// generic server: Config → CompletedConfig → Server, as upstream does.
package apiserver

import (
	"context"
	"net/http"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flagstatus"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	"github.com/flagpole-dev/flagpole/pkg/ofrep"
	evaluationregistry "github.com/flagpole-dev/flagpole/pkg/registry/flagpole/evaluation"
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
	// Informers watch Flagpole's own objects through the loopback client; the
	// evaluator, the status controller and admission read from them. The
	// server starts them once it serves.
	Informers informers.SharedInformerFactory
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
		gc.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			return buildChain(withPatchDepthLimit(h, c.MaxRequestBodyBytes), c)
		}
	}
	return CompletedConfig{&completedConfig{cfg.GenericConfig.Complete(), &cfg.ExtraConfig}}
}

// New builds the server and installs the flagpole.dev API group.
func (c completedConfig) New() (*Server, error) {
	genericServer, err := c.GenericConfig.New("flagpole-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	s := &Server{GenericAPIServer: genericServer}

	evaluator, err := evaluationregistry.NewEvaluator(c.ExtraConfig.Informers, clock.RealClock{})
	if err != nil {
		return nil, err
	}
	client, err := clientset.NewForConfig(c.GenericConfig.LoopbackClientConfig)
	if err != nil {
		return nil, err
	}
	statusController, err := flagstatus.New(client, c.ExtraConfig.Informers, clock.RealClock{})
	if err != nil {
		return nil, err
	}

	changes, err := ofrep.NewChanges(c.ExtraConfig.Informers, clock.RealClock{})
	if err != nil {
		return nil, err
	}
	s.GenericAPIServer.Handler.NonGoRestfulMux.HandlePrefix(ofrep.PathPrefix,
		ofrep.NewHandler(ofrepEvaluator{evaluator}, changes, http.NotFoundHandler()))
	if err := s.GenericAPIServer.AddPreShutdownHook("close-ofrep-event-streams", func() error {
		changes.Close()
		return nil
	}); err != nil {
		return nil, err
	}

	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(flagpole.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	v1beta1Storage, err := c.v1beta1Storage(evaluator)
	if err != nil {
		return nil, err
	}
	apiGroupInfo.VersionedResourcesStorageMap[v1beta1.SchemeGroupVersion.Version] = v1beta1Storage
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
		return evaluator.Check()
	})); err != nil {
		return nil, err
	}
	if err := s.GenericAPIServer.AddPostStartHook("start-flagpole-informers", func(ctx genericapiserver.PostStartHookContext) error {
		c.ExtraConfig.Informers.Start(ctx.Done())
		return nil
	}); err != nil {
		return nil, err
	}
	if err := s.GenericAPIServer.AddPostStartHook("flag-status-controller", func(ctx genericapiserver.PostStartHookContext) error {
		go statusController.Run(ctx, 2)
		return nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

func (c completedConfig) v1beta1Storage(evaluator *evaluationregistry.Evaluator) (map[string]rest.Storage, error) {
	getter := c.GenericConfig.RESTOptionsGetter
	flags, err := flagstorage.NewStorage(Scheme, getter, expression.Compile)
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
		"flags/evaluate": evaluationregistry.NewEvaluateREST(evaluator),
		"segments":       segments,
		"flagoverrides":  overrides,
		"evaluations":    evaluationregistry.NewBulkREST(evaluator),
	}, nil
}

// ofrepEvaluator adapts the evaluator to OFREP, whose requests carry no flag
// type and whose bulk evaluation is every flag of the namespace.
type ofrepEvaluator struct {
	*evaluationregistry.Evaluator
}

func (e ofrepEvaluator) Evaluate(ctx context.Context, namespace, key string, c *evaluation.Context) (v1beta1.FlagEvaluation, bool) {
	return e.Evaluator.Evaluate(ctx, namespace, key, c, "")
}

func (e ofrepEvaluator) EvaluateAll(ctx context.Context, namespace string, c *evaluation.Context) []v1beta1.FlagEvaluation {
	return e.Evaluator.EvaluateAll(ctx, namespace, nil, labels.Everything(), c)
}
