// Package openfeature is an OpenFeature provider for Go applications
// (github.com/open-feature/go-sdk): it watches one namespace's Flags,
// Segments and FlagOverrides through the generated informers and evaluates
// them in process with pkg/evaluation, the engine the server runs. No network
// hop per evaluation, and it keeps answering from its last state when
// Flagpole is unreachable.
package openfeature

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

// ProviderName is the provider's name in OpenFeature metadata and events.
const ProviderName = "flagpole"

// DefaultSyncTimeout bounds how long Init waits for the first full state.
const DefaultSyncTimeout = 30 * time.Second

// Option configures a Provider.
type Option func(*Provider)

// WithSyncTimeout sets how long Init waits for the first full state.
func WithSyncTimeout(d time.Duration) Option { return func(p *Provider) { p.syncTimeout = d } }

// WithClock sets the clock overrides and `now` are evaluated against.
func WithClock(c clock.PassiveClock) Option { return func(p *Provider) { p.clock = c } }

// Provider evaluates one namespace's flags in process, and reports what it
// evaluated to the server (a UsageReport every 30 s), so that the flags'
// usage counts the application's traffic.
type Provider struct {
	namespace   string
	client      clientset.Interface
	factory     informers.SharedInformerFactory
	source      *evaluator.Evaluator
	metadata    metadataCache
	clock       clock.PassiveClock
	syncTimeout time.Duration

	counter        *usage.Counter
	reportInterval time.Duration
	maxUnsent      time.Duration
	reporterDone   chan struct{}

	events     chan of.Event
	stop       chan struct{}
	stopOnce   sync.Once
	reportOnce sync.Once

	mu    sync.Mutex
	ready bool // initial sync done: changes are reported from now on
	stale bool // the watch broke; answers come from the last state
}

var (
	_ of.FeatureProvider = &Provider{}
	_ of.StateHandler    = &Provider{}
	_ of.EventHandler    = &Provider{}
)

// NewProvider returns a provider for namespace. The identity in config needs
// get, list and watch on flags, segments and flagoverrides there, and
// create on usagereports for its counts to reach the server (without it
// they are dropped, and evaluation goes on).
func NewProvider(config *rest.Config, namespace string, opts ...Option) (*Provider, error) {
	config = rest.CopyConfig(config)
	var p *Provider
	// Every request the watches make tells whether Flagpole is reachable: a
	// broken watch is retried inside client-go without surfacing an error,
	// but each retry is a request that fails.
	config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			p.observe(resp, err)
			return resp, err
		})
	})
	client, err := clientset.NewForConfig(config)
	if err != nil {
		return nil, err
	}
	p, err = newProvider(client, namespace, opts...)
	return p, err
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func newProvider(client clientset.Interface, namespace string, opts ...Option) (*Provider, error) {
	p := &Provider{
		namespace:      namespace,
		client:         client,
		factory:        informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace)),
		clock:          clock.RealClock{},
		syncTimeout:    DefaultSyncTimeout,
		reportInterval: DefaultUsageReportInterval,
		maxUnsent:      DefaultMaxUnsentUsage,
		events:         make(chan of.Event, 64),
		stop:           make(chan struct{}),
		reporterDone:   make(chan struct{}),
	}
	for _, o := range opts {
		o(p)
	}
	p.counter = usage.NewCounter(p.clock, usage.DefaultMaxFlags)
	// The server's evaluation source, on this namespace's watches: the same
	// answers as OFREP for the same state, counted as the server counts.
	source, err := evaluator.New(p.factory, p.clock, p.counter.Observer())
	if err != nil {
		return nil, err
	}
	p.source = source
	// Changes of flags and overrides are announced once the evaluator
	// answers from them; segments are read through their lister, which the
	// informer updates before any handler runs.
	on := func(changed func(obj any) []string) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { p.configChanged(changed(obj)) },
			UpdateFunc: func(_, obj any) { p.configChanged(changed(obj)) },
			DeleteFunc: func(obj any) { p.configChanged(changed(evaluator.Unwrap(obj))) },
		}
	}
	source.AddIndexedHandler(
		on(func(obj any) []string { return []string{nameOf(obj)} }),
		on(func(obj any) []string {
			if o, ok := obj.(*v1beta1.FlagOverride); ok {
				return []string{o.Spec.Flag}
			}
			return nil
		}))
	if _, err := p.factory.Flagpole().V1beta1().Segments().Informer().AddEventHandler(on(p.flagsNaming)); err != nil {
		return nil, err
	}
	return p, nil
}

// Metadata implements of.FeatureProvider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: ProviderName} }

// Hooks implements of.FeatureProvider.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel implements of.EventHandler.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init starts the watches and blocks until the first full state has arrived:
// the SDK reports PROVIDER_READY when Init returns nil, so returning earlier
// would let evaluations answer FLAG_NOT_FOUND for flags that exist.
func (p *Provider) Init(of.EvaluationContext) error {
	p.factory.Start(p.stop)
	ctx, cancel := context.WithTimeout(context.Background(), p.syncTimeout)
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !cache.WaitForCacheSync(ctx.Done(), p.source.HasSynced) {
		return fmt.Errorf("flagpole: namespace %q did not sync within %s", p.namespace, p.syncTimeout)
	}
	p.mu.Lock()
	p.ready = true
	p.mu.Unlock()
	p.reportOnce.Do(func() {
		if p.reportInterval > 0 {
			go func() {
				defer close(p.reporterDone)
				(&reporter{p: p}).run()
			}()
		} else {
			close(p.reporterDone)
		}
	})
	return nil
}

// Shutdown sends the last counts (within a few seconds) and stops the
// watches.
func (p *Provider) Shutdown() {
	p.stopOnce.Do(func() {
		close(p.stop)
		// A reporter that never started is done at once.
		p.reportOnce.Do(func() { close(p.reporterDone) })
		<-p.reporterDone
		p.factory.Shutdown()
	})
}

func (p *Provider) emit(t of.EventType, details of.ProviderEventDetails) {
	select {
	case p.events <- of.Event{ProviderName: ProviderName, EventType: t, ProviderEventDetails: details}:
	case <-p.stop:
	}
}

func (p *Provider) configChanged(keys []string) {
	p.mu.Lock()
	ready := p.ready
	p.mu.Unlock()
	if !ready || len(keys) == 0 || keys[0] == "" {
		return
	}
	p.emit(of.ProviderConfigChange, of.ProviderEventDetails{Message: "flag configuration changed", FlagChanges: keys})
}

// observe turns the outcome of every request the watches make into
// PROVIDER_STALE (Flagpole unreachable or failing: answers come from the last
// state) and back to PROVIDER_READY (a request succeeded again).
func (p *Provider) observe(resp *http.Response, err error) {
	select {
	case <-p.stop:
		return // shutting down: cancelled requests are expected
	default:
	}
	failed := err != nil || resp.StatusCode >= http.StatusInternalServerError ||
		resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests
	p.mu.Lock()
	if !p.ready || failed == p.stale {
		p.mu.Unlock()
		return
	}
	p.stale = failed
	p.mu.Unlock()
	if failed {
		reason := ""
		if err != nil {
			reason = err.Error()
		} else {
			reason = resp.Status
		}
		klog.V(2).InfoS("Flagpole unreachable; answering from the last state", "namespace", p.namespace, "reason", reason)
		p.emit(of.ProviderStale, of.ProviderEventDetails{Message: "watching namespace " + p.namespace + " failed: " + reason})
		return
	}
	p.emit(of.ProviderReady, of.ProviderEventDetails{Message: "namespace " + p.namespace + " is reachable again"})
}

// flagsNaming lists the flags whose rules name the segment obj.
func (p *Provider) flagsNaming(obj any) []string {
	s, ok := evaluator.Unwrap(obj).(*v1beta1.Segment)
	if !ok {
		return nil
	}
	var keys []string
	for _, f := range p.source.FlagsNaming(s) {
		keys = append(keys, f.Name)
	}
	return keys
}

func nameOf(obj any) string {
	if f, ok := evaluator.Unwrap(obj).(*v1beta1.Flag); ok {
		return f.Name
	}
	return ""
}
