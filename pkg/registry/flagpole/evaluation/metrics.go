package evaluation

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// MaxMetricFlags bounds the cardinality of flagpole_evaluations_total: the
// first MaxMetricFlags namespace/flag pairs evaluated get their own series;
// later ones are counted under namespace and flag "_other". With at most 100
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
)

type recorder struct {
	mu    sync.Mutex
	flags map[string]struct{}
}

func newRecorder() *recorder {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(evaluationsTotal, evaluationDuration)
	})
	return &recorder{flags: map[string]struct{}{}}
}

func (r *recorder) observe(namespace, flag string, res v1beta1.FlagEvaluation, took time.Duration) {
	key := namespace + "/" + flag
	r.mu.Lock()
	if _, ok := r.flags[key]; !ok {
		if len(r.flags) >= MaxMetricFlags {
			namespace, flag = otherLabel, otherLabel
		} else {
			r.flags[key] = struct{}{}
		}
	}
	r.mu.Unlock()
	evaluationsTotal.WithLabelValues(namespace, flag, res.Variant, res.Reason).Inc()
	evaluationDuration.Observe(took.Seconds())
}
