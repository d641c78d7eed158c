// Package evaluation serves flag evaluation: the flags/evaluate subresource
// and the create-only evaluations resource. Both answer from in-memory state
// fed by watches (informers on the server's own stores), never from an
// etcd read per request.
package evaluation

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
)

const overridesByFlag = "flag"

// Evaluator evaluates flags from informer caches.
type Evaluator struct {
	flags     listers.FlagLister
	segments  listers.SegmentLister
	overrides cache.Indexer
	compiled  *evaluation.Cache
	clock     clock.PassiveClock
	synced    []cache.InformerSynced
	series    *flagSeries
}

// NewEvaluator registers the informers it needs with factory; the caller
// starts the factory.
func NewEvaluator(factory informers.SharedInformerFactory, c clock.PassiveClock) (*Evaluator, error) {
	flagInformer := factory.Flagpole().V1beta1().Flags()
	segmentInformer := factory.Flagpole().V1beta1().Segments()
	overrideInformer := factory.Flagpole().V1beta1().FlagOverrides()
	if err := overrideInformer.Informer().AddIndexers(cache.Indexers{overridesByFlag: func(obj any) ([]string, error) {
		o, ok := obj.(*v1beta1.FlagOverride)
		if !ok {
			return nil, nil
		}
		return []string{o.Namespace + "/" + o.Spec.Flag}, nil
	}}); err != nil {
		return nil, err
	}
	e := &Evaluator{
		flags:     flagInformer.Lister(),
		segments:  segmentInformer.Lister(),
		overrides: overrideInformer.Informer().GetIndexer(),
		compiled:  evaluation.NewCache(),
		clock:     c,
		synced:    []cache.InformerSynced{flagInformer.Informer().HasSynced, segmentInformer.Informer().HasSynced, overrideInformer.Informer().HasSynced},
		series:    processSeries,
	}
	registerMetrics()
	// Drop compiled programs and metric series of deleted flags.
	if _, err := flagInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if f, ok := obj.(*v1beta1.Flag); ok {
				e.compiled.Forget(f.UID)
				e.series.forget(f.Namespace, f.Name)
			}
		},
	}); err != nil {
		return nil, err
	}
	return e, nil
}

// Check is a readyz check: false until every cache has synced, so a fresh
// replica never answers FLAG_NOT_FOUND for a flag that exists.
func (e *Evaluator) Check() error {
	for _, synced := range e.synced {
		if !synced() {
			return fmt.Errorf("flag, segment and override caches have not synced yet")
		}
	}
	return nil
}

func (e *Evaluator) segmentLookup(namespace string) evaluation.SegmentLookup {
	nsLister := e.segments.Segments(namespace)
	return func(name string) *v1beta1.Segment {
		s, err := nsLister.Get(name)
		if err != nil {
			return nil
		}
		return s
	}
}

func (e *Evaluator) overridesFor(namespace, key string) []*v1beta1.FlagOverride {
	objs, err := e.overrides.ByIndex(overridesByFlag, namespace+"/"+key)
	if err != nil || len(objs) == 0 {
		return nil
	}
	out := make([]*v1beta1.FlagOverride, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*v1beta1.FlagOverride))
	}
	return out
}

func (e *Evaluator) flagExists(namespace, name string) bool {
	_, err := e.flags.Flags(namespace).Get(name)
	return err == nil
}

// evaluate answers one flag. ctx is the request: CEL stops when it ends.
// budget is the request's (nil: this evaluation's own).
func (e *Evaluator) evaluate(ctx context.Context, f *v1beta1.Flag, c *evaluation.Context, expected v1beta1.FlagType, now time.Time, budget *evaluation.Budget) v1beta1.FlagEvaluation {
	start := time.Now()
	res := e.compiled.Get(f, e.segmentLookup(f.Namespace)).
		Evaluate(ctx, f, e.overridesFor(f.Namespace, f.Name), evaluation.Request{Context: c, ExpectedType: expected, Now: now, Budget: budget})
	observeDuration(time.Since(start))
	e.series.count(f.Namespace, f.Name, &res, e.flagExists)
	return res
}

// Evaluate evaluates one flag; found is false when there is no such flag.
// CEL stops when ctx ends, and the flag's expressions share one request
// budget (evaluation.Budget).
func (e *Evaluator) Evaluate(ctx context.Context, namespace, key string, c *evaluation.Context, expected v1beta1.FlagType) (res v1beta1.FlagEvaluation, found bool) {
	f, err := e.flags.Flags(namespace).Get(key)
	if err != nil {
		return evaluation.NotFound(key), false
	}
	return e.evaluate(ctx, f, c, expected, e.clock.Now(), nil), true
}

// EvaluateAll evaluates the flags named by keys (a key without a flag
// answers FLAG_NOT_FOUND) or, without keys, every flag selector matches;
// results are ordered by key. All of them share one request budget
// (evaluation.Budget): once it is spent, the flags that still need CEL
// answer ERROR/GENERAL. CEL stops when ctx ends.
func (e *Evaluator) EvaluateAll(ctx context.Context, namespace string, keys []string, selector labels.Selector, c *evaluation.Context) []v1beta1.FlagEvaluation {
	now := e.clock.Now()
	budget := evaluation.NewBudget()
	var results []v1beta1.FlagEvaluation
	if len(keys) > 0 {
		for _, key := range keys {
			f, err := e.flags.Flags(namespace).Get(key)
			if err != nil {
				results = append(results, evaluation.NotFound(key))
				continue
			}
			if selector.Matches(labels.Set(f.Labels)) {
				results = append(results, e.evaluate(ctx, f, c, "", now, budget))
			}
		}
	} else {
		flags, _ := e.flags.Flags(namespace).List(selector)
		for _, f := range flags {
			results = append(results, e.evaluate(ctx, f, c, "", now, budget))
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Key < results[j].Key })
	return results
}
