// Package metrics counts the server's flag evaluations on /metrics, as an
// evaluator.Observer: by namespace, flag, variant and reason, with the number
// of flags that get series of their own capped.
package metrics

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
)

// MaxMetricFlags bounds the cardinality of flagpole_evaluations_total: at
// most MaxMetricFlags namespace/flag pairs have series of their own at a
// time; evaluations of others are counted under namespace and flag "_other".
// A deleted flag's series are removed and its place freed. With at most 100
// variants per flag (plus none) and 6 reasons, the metric has at most
// (MaxMetricFlags+1) × 101 × 6 series, and in practice far fewer.
const MaxMetricFlags = 1000

const otherLabel = "_other"

var (
	evaluationsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "flagpole",
		Name:           "evaluations_total",
		Help:           "Flag evaluations answered, by namespace, flag, variant and OpenFeature reason.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"namespace", "flag", "variant", "reason"})
	evaluationDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      "flagpole",
		Name:           "evaluation_duration_seconds",
		Help:           "Time the engine took to evaluate one flag, compilation cache lookups included.",
		Buckets:        []float64{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2},
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once

	// processSeries is the one tracker for the process-wide counter, shared
	// by every Evaluator (tests run several servers in one process), so that
	// the cap and the counter agree.
	processSeries = newFlagSeries(evaluationsTotal, MaxMetricFlags)
)

// Observer returns the process's evaluation metrics, registered with the
// component-base legacy registry (/metrics) on first use. Every evaluator of
// the process shares them (tests run several servers in one process), so
// that the cap and the counter agree.
func Observer() evaluator.Observer {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(evaluationsTotal, evaluationDuration)
	})
	return processSeries
}

type flagRef struct{ namespace, name string }

type seriesKey struct{ variant, reason string }

// flagSeries remembers which flags have series of their own in a counter,
// and which series each has, so that it can cap them and delete a flag's.
type flagSeries struct {
	counter *metrics.CounterVec
	limit   int

	mu    sync.Mutex
	flags map[flagRef]map[seriesKey]struct{}
}

func newFlagSeries(counter *metrics.CounterVec, limit int) *flagSeries {
	return &flagSeries{counter: counter, limit: limit, flags: map[flagRef]map[seriesKey]struct{}{}}
}

// count counts one answer for the flag. exists reports whether the flag
// still exists: a flag that has no series yet gets them only if it does, so
// that an answer racing the flag's deletion cannot bring back series that
// forget removed (the informer removes a flag from its store before it calls
// the handler that forgets it).
func (s *flagSeries) count(namespace, name string, res *v1beta1.FlagEvaluation, exists evaluator.FlagExister) {
	ref, key := flagRef{namespace, name}, seriesKey{res.Variant, res.Reason}
	s.mu.Lock()
	series, tracked := s.flags[ref]
	switch {
	case tracked:
		series[key] = struct{}{}
	case len(s.flags) < s.limit && exists.FlagExists(namespace, name):
		s.flags[ref] = map[seriesKey]struct{}{key: {}}
	default:
		namespace, name = otherLabel, otherLabel
	}
	s.mu.Unlock()
	s.counter.WithLabelValues(namespace, name, res.Variant, res.Reason).Inc()
}

// forget deletes a flag's series and frees its place.
func (s *flagSeries) forget(namespace, name string) {
	ref := flagRef{namespace, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.flags[ref] {
		s.counter.Delete(map[string]string{"namespace": namespace, "flag": name, "variant": key.variant, "reason": key.reason})
	}
	delete(s.flags, ref)
}

// Evaluated implements evaluator.Observer.
func (s *flagSeries) Evaluated(namespace, name string, res *v1beta1.FlagEvaluation, took time.Duration, flags evaluator.FlagExister) {
	evaluationDuration.Observe(took.Seconds())
	s.count(namespace, name, res, flags)
}

// Deleted implements evaluator.Observer.
func (s *flagSeries) Deleted(namespace, name string) {
	s.forget(namespace, name)
}
