package metrics

import (
	"context"
	"fmt"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
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

// series returns the evaluations_total series of a namespace/flag pair, by
// "variant/reason".
func series(t *testing.T, g gatherer, namespace, flag string) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "flagpole_evaluations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["namespace"] == namespace && labels["flag"] == flag {
				out[labels["variant"]+"/"+labels["reason"]] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func newTestSeries(t *testing.T, limit int) (*flagSeries, gatherer) {
	counter := metrics.NewCounterVec(&metrics.CounterOpts{Name: "flagpole_evaluations_total", StabilityLevel: metrics.ALPHA},
		[]string{"namespace", "flag", "variant", "reason"})
	registry := metrics.NewKubeRegistry()
	registry.MustRegister(counter)
	return newFlagSeries(counter, limit), registry
}

func answer(variant, reason string) *v1beta1.FlagEvaluation {
	return &v1beta1.FlagEvaluation{Variant: variant, Reason: reason}
}

// existsFunc is a FlagExister answering with a function.
type existsFunc func(namespace, name string) bool

func (f existsFunc) FlagExists(namespace, name string) bool { return f(namespace, name) }

var exists = existsFunc(func(string, string) bool { return true })

// The cap counts flags with series of their own; forgetting a flag deletes
// its series and frees its place for another.
func TestFlagSeriesCapAndForget(t *testing.T) {
	s, g := newTestSeries(t, 2)
	s.count("ns", "a", answer("on", "TARGETING_MATCH"), exists)
	s.count("ns", "a", answer("off", "DEFAULT"), exists)
	s.count("ns", "b", answer("on", "STATIC"), exists)
	s.count("ns", "c", answer("on", "STATIC"), exists)
	if got := series(t, g, "ns", "c"); len(got) != 0 {
		t.Errorf("a flag over the cap has series: %v", got)
	}
	if got := series(t, g, "_other", "_other"); got["on/STATIC"] != 1 {
		t.Errorf("a flag over the cap is not counted as _other: %v", got)
	}

	s.forget("ns", "a")
	if got := series(t, g, "ns", "a"); len(got) != 0 {
		t.Errorf("a forgotten flag keeps series: %v", got)
	}
	s.count("ns", "c", answer("on", "STATIC"), exists)
	if got := series(t, g, "ns", "c"); got["on/STATIC"] != 1 {
		t.Errorf("a flag did not take a forgotten flag's place: %v", got)
	}
	if got := series(t, g, "ns", "b"); got["on/STATIC"] != 1 {
		t.Errorf("another flag's series changed: %v", got)
	}

	// An answer for a flag that no longer exists (racing its deletion)
	// never brings its series back, nor takes a place.
	s.forget("ns", "c")
	s.count("ns", "c", answer("on", "STATIC"), existsFunc(func(string, string) bool { return false }))
	if got := series(t, g, "ns", "c"); len(got) != 0 {
		t.Errorf("a deleted flag's series came back: %v", got)
	}
	s.count("ns", "d", answer("on", "STATIC"), exists)
	if got := series(t, g, "ns", "d"); got["on/STATIC"] != 1 {
		t.Errorf("the place was not free: %v", got)
	}
}

// Every evaluator in the process counts with the one tracker of the one
// counter, and forgets a flag when it is deleted.
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
	observer, otherObserver := Observer(), Observer()
	e, err := evaluator.New(factory, clocktesting.NewFakePassiveClock(time.Now()), observer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evaluator.New(informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0), clocktesting.NewFakePassiveClock(time.Now()), otherObserver); err != nil {
		t.Fatal(err)
	}
	if observer != evaluator.Observer(processSeries) || otherObserver != evaluator.Observer(processSeries) {
		t.Fatal("evaluators do not share the process's tracker")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())

	before := series(t, legacyregistry.DefaultGatherer, ns, "gone-soon")["on/STATIC"]
	if res, found := e.Evaluate(ctx, ns, "gone-soon", &evaluation.Context{Attributes: map[string]any{}}, ""); !found || res.Reason != "STATIC" {
		t.Fatalf("%+v", res)
	}
	if got := series(t, legacyregistry.DefaultGatherer, ns, "gone-soon")["on/STATIC"]; got != before+1 {
		t.Fatalf("counted %v, then %v", before, got)
	}

	if err := client.FlagpoleV1beta1().Flags(ns).Delete(ctx, "gone-soon", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(series(t, legacyregistry.DefaultGatherer, ns, "gone-soon")) == 0, nil
	}); err != nil {
		t.Errorf("a deleted flag's series remain: %v", series(t, legacyregistry.DefaultGatherer, ns, "gone-soon"))
	}
	processSeries.mu.Lock()
	_, tracked := processSeries.flags[flagRef{ns, "gone-soon"}]
	processSeries.mu.Unlock()
	if tracked {
		t.Error("a deleted flag still holds a place under the cap")
	}
}

// Past the cap, across evaluators: the process counts MaxMetricFlags flags
// on their own, whichever evaluator answered.
func TestCapIsProcessWide(t *testing.T) {
	s, g := newTestSeries(t, MaxMetricFlags)
	for i := 0; i < MaxMetricFlags+5; i++ {
		s.count("ns", fmt.Sprintf("f%d", i), answer("on", "STATIC"), exists)
	}
	if got := series(t, g, "_other", "_other")["on/STATIC"]; got != 5 {
		t.Errorf("_other counted %v, want 5", got)
	}
	for i := 0; i < 5; i++ {
		s.forget("ns", fmt.Sprintf("f%d", i))
	}
	for i := MaxMetricFlags; i < MaxMetricFlags+5; i++ {
		s.count("ns", fmt.Sprintf("f%d", i), answer("on", "STATIC"), exists)
		if got := series(t, g, "ns", fmt.Sprintf("f%d", i)); got["on/STATIC"] != 1 {
			t.Errorf("f%d after five flags were deleted: %v", i, got)
		}
	}
}
