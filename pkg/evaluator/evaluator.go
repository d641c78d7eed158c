// Package evaluator evaluates flags from watched state: the Flags, Segments
// and FlagOverrides an informer factory holds, one index of overrides by
// flag, and the compiled flags (evaluation.Cache). It is the one evaluation
// source of Flagpole: the server's flags/evaluate, evaluations and OFREP
// answer through it, the flag status controller reads its segments and
// compiled flags, and the in-process Go provider (pkg/openfeature) evaluates
// with it, so every path gives the same answer for the same state.
//
// It sits below the registry, OFREP, the controllers and the provider, and
// above the engine (pkg/evaluation), which stays a leaf without client
// imports. Usage counting and metrics hang off it as Observers.
package evaluator

import (
	"context"
	"errors"
	"slices"
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

// ErrNotSynced is what Check says until every cache has synced.
var ErrNotSynced = errors.New("flag, segment and override caches have not synced yet")

// Observer is told of every evaluation and of every deleted flag: metrics,
// trace events and usage counting observe evaluations this way.
type Observer interface {
	// Evaluated is called once per evaluated flag, after the engine
	// answered: ctx is the request's, at when the evaluation began, took the
	// engine's time. flags tells whether a flag still exists, for observers
	// that must not bring back what Deleted removed.
	Evaluated(ctx context.Context, f *v1beta1.Flag, res v1beta1.FlagEvaluation, at time.Time, took time.Duration, flags FlagExister)
	// NotFound is called for a key that names no flag.
	NotFound(ctx context.Context, namespace, key string)
	// Deleted is called when a flag is deleted.
	Deleted(f *v1beta1.Flag)
}

// Untimed is implemented by an Observer that ignores Evaluated's took.
// When every observer does, an evaluation is not timed and took is 0:
// reading the clock again costs as much as evaluating a flag without rules.
type Untimed interface {
	IgnoresDuration()
}

// FlagExister tells whether a flag exists.
type FlagExister interface {
	FlagExists(namespace, name string) bool
}

// Evaluator evaluates flags from informer caches. It is safe for concurrent
// use.
type Evaluator struct {
	flags     listers.FlagLister
	segments  listers.SegmentLister
	compiled  *evaluation.Cache
	clock     clock.PassiveClock
	realClock bool
	synced    []cache.InformerSynced
	observers []Observer
	// timed is whether an observer reads Evaluated's took.
	timed bool
	// index is what one flag's evaluation looks its flag and overrides up
	// in (each evaluation needs only its own flag's overrides).
	index *index
}

// New registers the informers it reads with factory (the caller starts it)
// and tells observers of every evaluation.
func New(factory informers.SharedInformerFactory, c clock.PassiveClock, observers ...Observer) (*Evaluator, error) {
	v1 := factory.Flagpole().V1beta1()
	flagInformer, segmentInformer, overrideInformer := v1.Flags(), v1.Segments(), v1.FlagOverrides()
	e := &Evaluator{
		flags:     flagInformer.Lister(),
		segments:  segmentInformer.Lister(),
		compiled:  evaluation.NewCache(),
		clock:     c,
		realClock: isRealClock(c),
		synced:    []cache.InformerSynced{flagInformer.Informer().HasSynced, segmentInformer.Informer().HasSynced, overrideInformer.Informer().HasSynced},
		observers: observers,
		index:     newIndex(),
	}
	for _, o := range observers {
		if _, untimed := o.(Untimed); !untimed {
			e.timed = true
		}
	}
	flagIndexed, err := flagInformer.Informer().AddEventHandler(e.index.flagHandler())
	if err != nil {
		return nil, err
	}
	overridesIndexed, err := overrideInformer.Informer().AddEventHandler(e.index.overrideHandler())
	if err != nil {
		return nil, err
	}
	e.synced = append(e.synced, flagIndexed.HasSynced, overridesIndexed.HasSynced)
	// Drop compiled flags, and tell observers, when flags are deleted.
	if _, err := flagInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if f, ok := Unwrap(obj).(*v1beta1.Flag); ok {
				e.compiled.Forget(f.UID)
				for _, o := range e.observers {
					o.Deleted(f)
				}
			}
		},
	}); err != nil {
		return nil, err
	}
	return e, nil
}

// AddIndexedHandler tells flags and overrides of every change of a flag or
// an override once evaluation answers from it: what announces a change to
// clients (OFREP's event streams, the Go provider's configuration-change
// events) registers here, not on the informers, whose handlers run in no
// order among themselves, so that a client re-evaluating at once gets the
// new answer. Register before the informers start.
func (e *Evaluator) AddIndexedHandler(flags, overrides cache.ResourceEventHandler) {
	e.index.thenMu.Lock()
	defer e.index.thenMu.Unlock()
	e.index.then = append(e.index.then, indexed{flags: flags, overrides: overrides})
}

// HasSynced is true once every cache has its first full state.
func (e *Evaluator) HasSynced() bool {
	for _, synced := range e.synced {
		if !synced() {
			return false
		}
	}
	return true
}

// Check is a readyz check: ErrNotSynced until every cache has synced, so a
// fresh replica never answers FLAG_NOT_FOUND for a flag that exists.
func (e *Evaluator) Check() error {
	if !e.HasSynced() {
		return ErrNotSynced
	}
	return nil
}

// Flags lists and gets flags.
func (e *Evaluator) Flags() listers.FlagLister { return e.flags }

// FlagExists implements FlagExister.
func (e *Evaluator) FlagExists(namespace, name string) bool {
	_, err := e.flags.Flags(namespace).Get(name)
	return err == nil
}

// SegmentLookup finds the segments of namespace.
func (e *Evaluator) SegmentLookup(namespace string) evaluation.SegmentLookup {
	nsLister := e.segments.Segments(namespace)
	return func(name string) *v1beta1.Segment {
		s, err := nsLister.Get(name)
		if err != nil {
			return nil
		}
		return s
	}
}

// FlagsNaming lists the flags of the segment's namespace whose rules name
// it: those whose answers a change of the segment can change.
func (e *Evaluator) FlagsNaming(s *v1beta1.Segment) []*v1beta1.Flag {
	flags, _ := e.flags.Flags(s.Namespace).List(labels.Everything())
	var naming []*v1beta1.Flag
	for _, f := range flags {
		for _, r := range f.Spec.Rules {
			if slices.Contains(r.Segments, s.Name) {
				naming = append(naming, f)
				break
			}
		}
	}
	return naming
}

// Overrides lists the overrides of one flag, expired ones included (the
// engine ignores those).
func (e *Evaluator) Overrides(namespace, flag string) []*v1beta1.FlagOverride {
	// Shared by every caller, never changed: the engine only reads it.
	return e.index.flagOverrides(namespace, flag)
}

// Compile returns the flag compiled with the segments it names, from the
// cache while neither has changed.
func (e *Evaluator) Compile(f *v1beta1.Flag) *evaluation.Compiled {
	lookup := noSegments
	for _, r := range f.Spec.Rules {
		if len(r.Segments) > 0 {
			lookup = e.SegmentLookup(f.Namespace)
			break
		}
	}
	return e.compiled.Get(f, lookup)
}

// noSegments is the lookup of a flag that names none: never called, and
// unlike a namespace's lookup it costs nothing to pass on every evaluation.
func noSegments(string) *v1beta1.Segment { return nil }

// Options are what a caller asks of an evaluation besides its context.
type Options struct {
	// ExpectedType, when set, must be the flag's type: another type answers
	// TYPE_MISMATCH. Empty accepts any.
	ExpectedType v1beta1.FlagType
	// Explain asks for each result's explanation (the engine's
	// Request.Explain); without it none is made.
	Explain bool
}

// evaluate answers one flag. ctx is the request: CEL stops when it ends.
// budget is the request's (nil: this evaluation's own).
func (e *Evaluator) evaluate(ctx context.Context, f *v1beta1.Flag, c *evaluation.Context, opts Options, now, start time.Time, budget *evaluation.Budget) v1beta1.FlagEvaluation {
	res := e.Compile(f).Evaluate(ctx, f, e.Overrides(f.Namespace, f.Name),
		evaluation.Request{Context: c, ExpectedType: opts.ExpectedType, Now: now, Budget: budget, Explain: opts.Explain})
	if len(e.observers) > 0 {
		var took time.Duration
		if e.timed {
			took = time.Since(start)
		}
		for _, o := range e.observers {
			o.Evaluated(ctx, f, res, start, took, e)
		}
	}
	return res
}

func (e *Evaluator) notFound(ctx context.Context, namespace, key string) v1beta1.FlagEvaluation {
	for _, o := range e.observers {
		o.NotFound(ctx, namespace, key)
	}
	return evaluation.NotFound(key)
}

// Evaluate evaluates one flag; found is false when there is no such flag.
// CEL stops when ctx ends, and the flag's expressions share one request
// budget (evaluation.Budget).
func (e *Evaluator) Evaluate(ctx context.Context, namespace, key string, c *evaluation.Context, opts Options) (res v1beta1.FlagEvaluation, found bool) {
	f := e.index.flag(namespace, key)
	if f == nil {
		return e.notFound(ctx, namespace, key), false
	}
	start := time.Now()
	return e.evaluate(ctx, f, c, opts, e.now(start), start, nil), true
}

func isRealClock(c clock.PassiveClock) bool {
	switch c.(type) {
	case clock.RealClock, *clock.RealClock:
		return true
	}
	return false
}

// now is the engine's time for an evaluation that began at start: start
// itself on the real clock (reading the clock costs as much as a static
// flag's evaluation), the injected clock's time in tests.
func (e *Evaluator) now(start time.Time) time.Time {
	if e.realClock {
		return start
	}
	return e.clock.Now()
}

// EvaluateAll evaluates the flags named by keys (a key without a flag
// answers FLAG_NOT_FOUND) or, without keys, every flag selector matches;
// results are ordered by key. All of them share one request budget
// (evaluation.Budget): once it is spent, the flags that still need CEL
// answer ERROR/GENERAL. CEL stops when ctx ends.
func (e *Evaluator) EvaluateAll(ctx context.Context, namespace string, keys []string, selector labels.Selector, c *evaluation.Context, opts Options) []v1beta1.FlagEvaluation {
	now := e.clock.Now()
	budget := evaluation.NewBudget()
	var results []v1beta1.FlagEvaluation
	if len(keys) > 0 {
		for _, key := range keys {
			f := e.index.flag(namespace, key)
			if f == nil {
				results = append(results, e.notFound(ctx, namespace, key))
				continue
			}
			if selector.Matches(labels.Set(f.Labels)) {
				results = append(results, e.evaluate(ctx, f, c, opts, now, time.Now(), budget))
			}
		}
	} else {
		flags, _ := e.flags.Flags(namespace).List(selector)
		for _, f := range flags {
			results = append(results, e.evaluate(ctx, f, c, opts, now, time.Now(), budget))
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Key < results[j].Key })
	return results
}

// Unwrap returns the object a deletion's tombstone holds, or obj.
func Unwrap(obj any) any {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return tomb.Obj
	}
	return obj
}
