package apiserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// LocalInformers is the informer factory of Flagpole's own kinds, fed from
// the server's own registry stores (list and watch served by the watch cache,
// in process) rather than through a client. The evaluator, the status
// controller, admission and OFREP's change events read its listers; what
// a client would add is, for every write, encoding the event for a loopback
// watcher, sending it over TLS and HTTP/2 and decoding it again.
// Authorization does not apply: these are the server's own reads.
//
// The factory has no client: Flags, Segments and FlagOverrides are its only
// informers, all registered here before anyone can ask for them. Their
// lists and watches wait until the stores are handed over (Serve).
type LocalInformers struct {
	factory informers.SharedInformerFactory
	scheme  *runtime.Scheme
	mu      sync.Mutex
	stores  map[string]localStore
	served  chan struct{}
}

type localStore interface {
	rest.Lister
	rest.Watcher
}

// localResources are the resources the factory's informers list and watch:
// each type the factory knows with the resource serving it.
var localResources = []struct {
	resource string
	example  runtime.Object
}{
	{"flags", &v1beta1.Flag{}},
	{"segments", &v1beta1.Segment{}},
	{"flagoverrides", &v1beta1.FlagOverride{}},
}

// NewLocalInformers returns the factory of informers for Flags, Segments and
// FlagOverrides that list and watch through the stores Serve is given, and
// hold each object trimmed (TrimForInformers).
func NewLocalInformers(scheme *runtime.Scheme) *LocalInformers {
	l := &LocalInformers{
		// No client: every informer of the factory is registered below, so
		// the generated informers never build one of their own with it.
		factory: informers.NewSharedInformerFactoryWithOptions(nil, 0, informers.WithTransform(TrimForInformers)),
		scheme:  scheme,
		stores:  map[string]localStore{},
		served:  make(chan struct{}),
	}
	for _, r := range localResources {
		l.factory.InformerFor(r.example, func(_ clientset.Interface, resync time.Duration) cache.SharedIndexInformer {
			// The namespace index, as the generated informers have: the
			// listers' per-namespace reads use it.
			return cache.NewSharedIndexInformer(l.listWatch(r.resource), r.example, resync,
				cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		})
	}
	return l
}

// Factory is the informer factory; start it once the stores are served.
func (l *LocalInformers) Factory() informers.SharedInformerFactory { return l.factory }

// Serve hands over the stores, by resource ("flags", ...), and lets the
// informers' lists and watches run.
func (l *LocalInformers) Serve(storage map[string]rest.Storage) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range localResources {
		s, ok := storage[r.resource].(localStore)
		if !ok {
			return fmt.Errorf("local informers: no list and watch for %s", r.resource)
		}
		l.stores[r.resource] = s
	}
	close(l.served)
	return nil
}

func (l *LocalInformers) store(ctx context.Context, resource string) (localStore, error) {
	select {
	case <-l.served:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stores[resource], nil
}

func (l *LocalInformers) listWatch(resource string) cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, options metav1.ListOptions) (runtime.Object, error) {
			store, opts, err := l.request(ctx, resource, options)
			if err != nil {
				return nil, err
			}
			list, err := store.List(allNamespaces(ctx), opts)
			if err != nil {
				return nil, err
			}
			return l.scheme.ConvertToVersion(list, v1beta1.SchemeGroupVersion)
		},
		WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			store, opts, err := l.request(ctx, resource, options)
			if err != nil {
				return nil, err
			}
			w, err := store.Watch(allNamespaces(ctx), opts)
			if err != nil {
				return nil, err
			}
			return watch.Filter(w, l.versionedEvent), nil
		},
	}
}

func (l *LocalInformers) request(ctx context.Context, resource string, options metav1.ListOptions) (localStore, *metainternalversion.ListOptions, error) {
	store, err := l.store(ctx, resource)
	if err != nil {
		return nil, nil, err
	}
	var opts metainternalversion.ListOptions
	if err := metainternalversion.Convert_v1_ListOptions_To_internalversion_ListOptions(&options, &opts, nil); err != nil {
		return nil, nil, err
	}
	return store, &opts, nil
}

// versionedEvent gives the informer the v1beta1 object it expects. The watch
// cache shares its objects between watchers: each gets its own copy.
func (l *LocalInformers) versionedEvent(e watch.Event) (watch.Event, bool) {
	obj := e.Object
	if c, ok := obj.(runtime.CacheableObject); ok {
		obj = c.GetObject()
	}
	if _, ok := obj.(*metav1.Status); ok {
		e.Object = obj
		return e, true
	}
	versioned, err := l.scheme.ConvertToVersion(obj, v1beta1.SchemeGroupVersion)
	if err != nil {
		e.Type, e.Object = watch.Error, &metav1.Status{Status: metav1.StatusFailure, Message: err.Error(), Reason: metav1.StatusReasonInternalError}
		return e, true
	}
	e.Object = versioned
	return e, true
}

func allNamespaces(ctx context.Context) context.Context {
	return genericapirequest.WithNamespace(ctx, metav1.NamespaceAll)
}
