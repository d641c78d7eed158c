package telemetry

import (
	"context"
	"strconv"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
)

// MaxMetricFlags bounds the cardinality of the evaluation counters: at most
// MaxMetricFlags flags (namespace and key) have series of their own at a
// time; evaluations of others, and of keys that name no flag, are counted
// with key, set and version "_other". A flag's series are those of its
// current version only (a new generation removes the old one's), and a
// deleted flag's are removed and its place freed. With at most 100 variants
// per flag (plus none), 6 reasons and 6 error types, the counters have at
// most (MaxMetricFlags+1) × (1 + 101 × 6 + 6) series, in practice far fewer.
const MaxMetricFlags = 1000

var (
	flagLabels    = []string{label(AttrKey), label(AttrSetID), label(AttrProviderName)}
	successLabels = append(append([]string{}, flagLabels...), label(AttrVersion), label(AttrVariant), label(AttrReason))
	errorLabels   = append(append([]string{}, flagLabels...), label(AttrVersion), label(AttrErrorType))

	// The names are those of OpenFeature's OpenTelemetry metrics hook
	// (feature_flag.evaluation_requests_total, ...), which dashboards for
	// OpenFeature read.
	requestsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "feature_flag_evaluation_requests_total",
		Help:           "Flag evaluations this server answered (flags/evaluate, evaluations, OFREP), by flag key, flag set (namespace) and provider.",
		StabilityLevel: metrics.ALPHA,
	}, flagLabels)
	successTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "feature_flag_evaluation_success_total",
		Help:           "Flag evaluations that answered a value or the code default, by flag, version (generation), variant and reason (lower case).",
		StabilityLevel: metrics.ALPHA,
	}, successLabels)
	errorTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "feature_flag_evaluation_error_total",
		Help:           "Flag evaluations that answered reason error, by flag, version (generation) and error type (the OpenFeature error code, lower case).",
		StabilityLevel: metrics.ALPHA,
	}, errorLabels)
	evaluationDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      "flagpole",
		Name:           "evaluation_duration_seconds",
		Help:           "Time the engine took to evaluate one flag, compilation cache lookups included.",
		Buckets:        []float64{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2},
		StabilityLevel: metrics.ALPHA,
	})
	registerOnce sync.Once

	// processSeries is the one tracker for the process-wide counters, shared
	// by every Evaluator (tests run several servers in one process), so that
	// the cap and the counters agree.
	processSeries = newFlagSeries(counters{requestsTotal, successTotal, errorTotal}, MaxMetricFlags)
)

// Metrics returns the process's evaluation metrics, registered with the
// component-base legacy registry (/metrics) on first use. Every evaluator of
// the process shares them.
func Metrics() evaluator.Observer {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(requestsTotal, successTotal, errorTotal, evaluationDuration)
	})
	return processSeries
}

type counters struct {
	requests, success, errors *metrics.CounterVec
}

type flagRef struct{ namespace, name string }

type successKey struct{ variant, reason string }

// flagState is the series one flag has, all of one version.
type flagState struct {
	generation int64
	version    string
	success    map[successKey]struct{}
	errors     map[string]struct{}
}

func newFlagState(generation int64) *flagState {
	return &flagState{generation: generation, version: strconv.FormatInt(generation, 10),
		success: map[successKey]struct{}{}, errors: map[string]struct{}{}}
}

// flagSeries remembers which flags have series of their own, and which
// series each has, so that it can cap them and delete a flag's.
type flagSeries struct {
	c     counters
	limit int

	mu    sync.Mutex
	flags map[flagRef]*flagState
}

func newFlagSeries(c counters, limit int) *flagSeries {
	return &flagSeries{c: c, limit: limit, flags: map[flagRef]*flagState{}}
}

// count counts one answer for flag f. exists reports whether the flag still
// exists: a flag that has no series yet gets them only if it does, so that
// an answer racing the flag's deletion cannot bring back series that forget
// removed (the informer removes a flag from its store before it calls the
// handler that forgets it).
func (s *flagSeries) count(f *v1beta1.Flag, res *v1beta1.FlagEvaluation, exists evaluator.FlagExister) {
	ref := flagRef{f.Namespace, f.Name}
	key, set, version := otherLabel, otherLabel, otherLabel
	reason, errorType := Reason(res.Reason), ""
	if res.ErrorCode != "" {
		errorType = ErrorType(res.ErrorCode)
	}
	s.mu.Lock()
	st, tracked := s.flags[ref]
	switch {
	case tracked:
		if st.generation != f.Generation {
			s.deleteVersionLocked(ref, st)
			st = newFlagState(f.Generation)
			s.flags[ref] = st
		}
	case len(s.flags) < s.limit && exists.FlagExists(f.Namespace, f.Name):
		st = newFlagState(f.Generation)
		s.flags[ref] = st
	default:
		st = nil
	}
	if st != nil {
		key, set, version = f.Name, f.Namespace, st.version
		if errorType != "" {
			st.errors[errorType] = struct{}{}
		} else {
			st.success[successKey{res.Variant, reason}] = struct{}{}
		}
	}
	s.mu.Unlock()
	s.c.requests.WithLabelValues(key, set, ProviderName).Inc()
	if errorType != "" {
		s.c.errors.WithLabelValues(key, set, ProviderName, version, errorType).Inc()
	} else {
		s.c.success.WithLabelValues(key, set, ProviderName, version, res.Variant, reason).Inc()
	}
}

// deleteVersionLocked deletes the success and error series of a flag's
// version.
func (s *flagSeries) deleteVersionLocked(ref flagRef, st *flagState) {
	for k := range st.success {
		s.c.success.DeleteLabelValues(ref.name, ref.namespace, ProviderName, st.version, k.variant, k.reason)
	}
	for t := range st.errors {
		s.c.errors.DeleteLabelValues(ref.name, ref.namespace, ProviderName, st.version, t)
	}
}

// forget deletes a flag's series and frees its place.
func (s *flagSeries) forget(namespace, name string) {
	ref := flagRef{namespace, name}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.flags[ref]
	if !ok {
		return
	}
	s.deleteVersionLocked(ref, st)
	s.c.requests.DeleteLabelValues(name, namespace, ProviderName)
	delete(s.flags, ref)
}

// Evaluated implements evaluator.Observer.
func (s *flagSeries) Evaluated(_ context.Context, f *v1beta1.Flag, res v1beta1.FlagEvaluation, _ time.Time, took time.Duration, flags evaluator.FlagExister) {
	evaluationDuration.Observe(took.Seconds())
	s.count(f, &res, flags)
}

// NotFound implements evaluator.Observer: the key is the caller's, so it
// never gets series of its own.
func (s *flagSeries) NotFound(context.Context, string, string) {
	s.c.requests.WithLabelValues(otherLabel, otherLabel, ProviderName).Inc()
	s.c.errors.WithLabelValues(otherLabel, otherLabel, ProviderName, otherLabel, ErrorType(evaluation.ErrorFlagNotFound)).Inc()
}

// Deleted implements evaluator.Observer.
func (s *flagSeries) Deleted(f *v1beta1.Flag) {
	s.forget(f.Namespace, f.Name)
}
