package telemetry

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

type gatherer interface {
	Gather() ([]*dto.MetricFamily, error)
}

// series returns the series of metric name for a set and key, by the
// values of the other labels joined with "/" in label order.
func series(t *testing.T, g gatherer, name, set, key string) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			var rest string
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "feature_flag_key", "feature_flag_set_id":
				default:
					rest += l.GetName() + "=" + l.GetValue() + " "
				}
			}
			if labels["feature_flag_set_id"] == set && labels["feature_flag_key"] == key {
				out[rest] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func newTestSeries(limit int) (*flagSeries, gatherer) {
	registry := metrics.NewKubeRegistry()
	c := counters{
		requests: metrics.NewCounterVec(&metrics.CounterOpts{Name: "feature_flag_evaluation_requests_total", StabilityLevel: metrics.ALPHA}, flagLabels),
		success:  metrics.NewCounterVec(&metrics.CounterOpts{Name: "feature_flag_evaluation_success_total", StabilityLevel: metrics.ALPHA}, successLabels),
		errors:   metrics.NewCounterVec(&metrics.CounterOpts{Name: "feature_flag_evaluation_error_total", StabilityLevel: metrics.ALPHA}, errorLabels),
	}
	registry.MustRegister(c.requests, c.success, c.errors)
	return newFlagSeries(c, limit), registry
}

func flag(ns, name string, generation int64) *v1beta1.Flag {
	return &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Generation: generation}}
}

func answer(variant, reason string) *v1beta1.FlagEvaluation {
	return &v1beta1.FlagEvaluation{Variant: variant, Reason: reason}
}

// existsFunc is a FlagExister answering with a function.
type existsFunc func(namespace, name string) bool

func (f existsFunc) FlagExists(namespace, name string) bool { return f(namespace, name) }

var exists = existsFunc(func(string, string) bool { return true })

const (
	successMetric = "feature_flag_evaluation_success_total"
	errorMetric   = "feature_flag_evaluation_error_total"
)

// The counters carry the conventions' attributes with lower-case values;
// the cap counts flags with series of their own; a new version replaces a
// flag's series and forgetting a flag deletes them and frees its place.
func TestFlagSeries(t *testing.T) {
	s, g := newTestSeries(2)
	s.count(flag("ns", "a", 1), answer("on", "TARGETING_MATCH"), exists)
	s.count(flag("ns", "a", 1), &v1beta1.FlagEvaluation{Reason: "ERROR", ErrorCode: "TARGETING_KEY_MISSING"}, exists)
	s.count(flag("ns", "b", 1), answer("on", "STATIC"), exists)
	s.count(flag("ns", "c", 1), answer("on", "STATIC"), exists)

	if got := series(t, g, successMetric, "ns", "a"); got["feature_flag_provider_name=flagpole feature_flag_result_reason=targeting_match feature_flag_result_variant=on feature_flag_version=1 "] != 1 || len(got) != 1 {
		t.Errorf("a's success series: %v", got)
	}
	if got := series(t, g, errorMetric, "ns", "a"); got["error_type=targeting_key_missing feature_flag_provider_name=flagpole feature_flag_version=1 "] != 1 {
		t.Errorf("a's error series: %v", got)
	}
	if got := series(t, g, successMetric, "ns", "c"); len(got) != 0 {
		t.Errorf("a flag over the cap has series: %v", got)
	}
	if got := series(t, g, successMetric, "_other", "_other"); len(got) != 1 {
		t.Errorf("a flag over the cap is not counted as _other: %v", got)
	}

	// A new generation: only its version's series remain.
	s.count(flag("ns", "a", 2), answer("off", "DEFAULT"), exists)
	if got := series(t, g, successMetric, "ns", "a"); len(got) != 1 || got["feature_flag_provider_name=flagpole feature_flag_result_reason=default feature_flag_result_variant=off feature_flag_version=2 "] != 1 {
		t.Errorf("a after a new generation: %v", got)
	}
	if got := series(t, g, errorMetric, "ns", "a"); len(got) != 0 {
		t.Errorf("an old version's error series remain: %v", got)
	}

	s.forget("ns", "a")
	if got := series(t, g, successMetric, "ns", "a"); len(got) != 0 {
		t.Errorf("a forgotten flag keeps series: %v", got)
	}
	if got := series(t, g, "feature_flag_evaluation_requests_total", "ns", "a"); len(got) != 0 {
		t.Errorf("a forgotten flag keeps its requests series: %v", got)
	}
	s.count(flag("ns", "c", 1), answer("on", "STATIC"), exists)
	if got := series(t, g, successMetric, "ns", "c"); len(got) != 1 {
		t.Errorf("a flag did not take a forgotten flag's place: %v", got)
	}

	// An answer for a flag that no longer exists (racing its deletion)
	// never brings its series back, nor takes a place.
	s.forget("ns", "c")
	s.count(flag("ns", "c", 1), answer("on", "STATIC"), existsFunc(func(string, string) bool { return false }))
	if got := series(t, g, successMetric, "ns", "c"); len(got) != 0 {
		t.Errorf("a deleted flag's series came back: %v", got)
	}

	// A key that names no flag is counted, never under its own name.
	s.NotFound(context.Background(), "ns", "no-such-flag")
	if got := series(t, g, errorMetric, "_other", "_other"); got["error_type=flag_not_found feature_flag_provider_name=flagpole feature_flag_version=_other "] != 1 {
		t.Errorf("not found: %v", got)
	}
}

// Past the cap, across evaluators: the process counts MaxMetricFlags flags
// on their own, whichever evaluator answered.
func TestCapIsProcessWide(t *testing.T) {
	s, g := newTestSeries(MaxMetricFlags)
	for i := 0; i < MaxMetricFlags+5; i++ {
		s.count(flag("ns", fmt.Sprintf("f%d", i), 1), answer("on", "STATIC"), exists)
	}
	if got := series(t, g, successMetric, "_other", "_other"); len(got) != 1 {
		t.Errorf("_other: %v", got)
	}
	for _, v := range series(t, g, successMetric, "_other", "_other") {
		if v != 5 {
			t.Errorf("_other counted %v, want 5", v)
		}
	}
}

// Every evaluator in the process counts with the one tracker of the one set
// of counters, and forgets a flag when it is deleted.
func TestEvaluatorsShareSeriesAndForgetDeletedFlags(t *testing.T) {
	const ns = "metrics-forget"
	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "gone-soon", Namespace: ns, UID: "u1", Generation: 1},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateEnabled,
			Variants:       []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}},
			DefaultVariant: "on"},
	}
	client := fake.NewSimpleClientset(f)
	factory := informers.NewSharedInformerFactory(client, 0)
	observer, otherObserver := Metrics(), Metrics()
	e, err := evaluator.New(factory, clocktesting.NewFakePassiveClock(time.Now()), observer)
	if err != nil {
		t.Fatal(err)
	}
	if observer != evaluator.Observer(processSeries) || otherObserver != evaluator.Observer(processSeries) {
		t.Fatal("evaluators do not share the process's tracker")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	// The evaluator's own index is fed by the informers' handlers, a
	// moment after their stores: evaluating before it has synced races.
	cache.WaitForCacheSync(ctx.Done(), e.HasSynced)

	if res, found := e.Evaluate(ctx, ns, "gone-soon", &evaluation.Context{Attributes: map[string]any{}}, evaluator.Options{}); !found || res.Reason != "STATIC" {
		t.Fatalf("%+v", res)
	}
	if got := series(t, legacyregistry.DefaultGatherer, successMetric, ns, "gone-soon"); len(got) != 1 {
		t.Fatalf("series after an evaluation: %v", got)
	}
	if err := client.FlagpoleV1beta1().Flags(ns).Delete(ctx, "gone-soon", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(series(t, legacyregistry.DefaultGatherer, successMetric, ns, "gone-soon")) == 0, nil
	}); err != nil {
		t.Errorf("a deleted flag's series remain: %v", series(t, legacyregistry.DefaultGatherer, successMetric, ns, "gone-soon"))
	}
	processSeries.mu.Lock()
	_, tracked := processSeries.flags[flagRef{ns, "gone-soon"}]
	processSeries.mu.Unlock()
	if tracked {
		t.Error("a deleted flag still holds a place under the cap")
	}
}
