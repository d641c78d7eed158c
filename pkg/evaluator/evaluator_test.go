package evaluator

import (
	"context"
	"k8s.io/client-go/tools/cache"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

func boolFlag(ns, name string, rules ...v1beta1.Rule) *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), Generation: 1},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateEnabled,
			Variants:       []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
			DefaultVariant: "off", Rules: rules},
	}
}

// recorder is an Observer that remembers what it was told; the informers
// tell it of deletions on their own goroutine.
type recorder struct {
	mu        sync.Mutex
	evaluated []string
	notFound  []string
	deleted   []string
}

func (r *recorder) Evaluated(_ context.Context, f *v1beta1.Flag, res v1beta1.FlagEvaluation, _ time.Time, _ time.Duration, flags FlagExister) {
	if !flags.FlagExists(f.Namespace, f.Name) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evaluated = append(r.evaluated, f.Namespace+"/"+f.Name+"="+res.Variant)
}

func (r *recorder) NotFound(_ context.Context, namespace, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notFound = append(r.notFound, namespace+"/"+key)
}

func (r *recorder) Deleted(f *v1beta1.Flag) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, f.Namespace+"/"+f.Name)
}

func (r *recorder) deletions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.deleted)
}

func start(t *testing.T, now time.Time, observers []Observer, objects ...any) (*Evaluator, *fake.Clientset) {
	t.Helper()
	client := fake.NewSimpleClientset()
	for _, o := range objects {
		var err error
		switch o := o.(type) {
		case *v1beta1.Flag:
			_, err = client.FlagpoleV1beta1().Flags(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		case *v1beta1.Segment:
			_, err = client.FlagpoleV1beta1().Segments(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		case *v1beta1.FlagOverride:
			_, err = client.FlagpoleV1beta1().FlagOverrides(o.Namespace).Create(t.Context(), o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	e, err := New(factory, clocktesting.NewFakePassiveClock(now), observers...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Check(); err != ErrNotSynced {
		t.Errorf("Check before the informers ran: %v, want ErrNotSynced", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	// Its own index is fed by the informers' handlers, a moment later.
	cache.WaitForCacheSync(ctx.Done(), e.HasSynced)
	if err := e.Check(); err != nil {
		t.Fatalf("Check after sync: %v", err)
	}
	return e, client
}

// An override applies to its own flag in its own namespace only: the index
// is by namespace and flag, so a flag of the same name elsewhere is not
// overridden (the provider's index used to be by flag name alone).
func TestOverridesByNamespaceAndFlag(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	expires := metav1.NewTime(now.Add(time.Hour))
	override := &v1beta1.FlagOverride{
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "force-on", CreationTimestamp: metav1.NewTime(now)},
		Spec:       v1beta1.FlagOverrideSpec{Flag: "f", Variant: "on"},
		Status:     v1beta1.FlagOverrideStatus{ExpiresAt: &expires},
	}
	rec := &recorder{}
	e, _ := start(t, now, []Observer{rec}, boolFlag("a", "f"), boolFlag("b", "f"), boolFlag("a", "g"), override)

	ctx := &evaluation.Context{Attributes: map[string]any{}}
	for _, tc := range []struct{ ns, key, variant, reason, override string }{
		{"a", "f", "on", evaluation.ReasonTargetingMatch, "force-on"},
		{"b", "f", "off", evaluation.ReasonStatic, ""},
		{"a", "g", "off", evaluation.ReasonStatic, ""},
	} {
		res, found := e.Evaluate(t.Context(), tc.ns, tc.key, ctx, Options{})
		if !found || res.Variant != tc.variant || res.Reason != tc.reason || res.Metadata.Override != tc.override {
			t.Errorf("%s/%s: found=%v %+v, want %s %s override %q", tc.ns, tc.key, found, res, tc.variant, tc.reason, tc.override)
		}
	}
	if got := e.Overrides("b", "f"); len(got) != 0 {
		t.Errorf("overrides of b/f: %v", got)
	}
	if res, found := e.Evaluate(t.Context(), "b", "missing", ctx, Options{}); found || res.ErrorCode != evaluation.ErrorFlagNotFound {
		t.Errorf("missing flag: found=%v %+v", found, res)
	}
	if want := []string{"a/f=on", "b/f=off", "a/g=off"}; !slices.Equal(rec.evaluated, want) {
		t.Errorf("observed %v, want %v (a key without a flag is not observed as evaluated)", rec.evaluated, want)
	}
	if want := []string{"b/missing"}; !slices.Equal(rec.notFound, want) {
		t.Errorf("not found %v, want %v", rec.notFound, want)
	}
}

// EvaluateAll answers the named keys, or every flag the selector matches,
// ordered by key; FlagsNaming finds the flags a segment's change affects.
func TestEvaluateAllAndFlagsNaming(t *testing.T) {
	now := time.Now()
	beta := &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "beta", UID: "s1"}, Spec: v1beta1.SegmentSpec{Include: []string{"u1"}}}
	withSegment := boolFlag("a", "z-segmented", v1beta1.Rule{Name: "beta", Segments: []string{"beta"}, Variant: "on"})
	labelled := boolFlag("a", "m-labelled")
	labelled.Labels = map[string]string{"team": "x"}
	rec := &recorder{}
	e, client := start(t, now, []Observer{rec}, withSegment, labelled, boolFlag("a", "a-plain"), boolFlag("b", "z-segmented"), beta)

	ctx := &evaluation.Context{TargetingKey: "u1", HasTargetingKey: true, Attributes: map[string]any{}}
	all := e.EvaluateAll(t.Context(), "a", nil, labels.Everything(), ctx, Options{})
	if len(all) != 3 || all[0].Key != "a-plain" || all[1].Key != "m-labelled" || all[2].Key != "z-segmented" || all[2].Variant != "on" {
		t.Errorf("all of a: %+v", all)
	}
	selected := e.EvaluateAll(t.Context(), "a", nil, labels.SelectorFromSet(labels.Set{"team": "x"}), ctx, Options{})
	if len(selected) != 1 || selected[0].Key != "m-labelled" {
		t.Errorf("team=x: %+v", selected)
	}
	named := e.EvaluateAll(t.Context(), "a", []string{"z-segmented", "nope"}, labels.Everything(), ctx, Options{})
	if len(named) != 2 || named[0].Key != "nope" || named[0].ErrorCode != evaluation.ErrorFlagNotFound || named[1].Variant != "on" {
		t.Errorf("named: %+v", named)
	}
	naming := e.FlagsNaming(beta)
	if len(naming) != 1 || naming[0].Namespace != "a" || naming[0].Name != "z-segmented" {
		t.Errorf("flags naming a/beta: %v", naming)
	}

	// A deleted flag is forgotten: observers are told.
	if err := client.FlagpoleV1beta1().Flags("a").Delete(t.Context(), "a-plain", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(rec.deletions()) > 0, nil
	}); err != nil || !slices.Equal(rec.deletions(), []string{"a/a-plain"}) {
		t.Errorf("deleted: %v (%v), want [a/a-plain]", rec.deletions(), err)
	}
}

// durations remembers the took of every evaluation; untimedDurations also
// declares that it ignores them.
type durations struct {
	mu   sync.Mutex
	took []time.Duration
}

func (d *durations) Evaluated(_ context.Context, _ *v1beta1.Flag, _ v1beta1.FlagEvaluation, _ time.Time, took time.Duration, _ FlagExister) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.took = append(d.took, took)
}
func (*durations) NotFound(context.Context, string, string) {}
func (*durations) Deleted(*v1beta1.Flag)                    {}

type untimedDurations struct{ durations }

func (*untimedDurations) IgnoresDuration() {}

// An evaluation is timed when an observer reads the duration (the metrics
// do), and not when every observer declares it ignores it (usage counting
// and trace events in the Go provider): the clock read is skipped.
func TestEvaluationTimedOnlyForObserversThatReadIt(t *testing.T) {
	ctx := &evaluation.Context{TargetingKey: "u1", HasTargetingKey: true, Attributes: map[string]any{}}
	timed, untimed := &durations{}, &untimedDurations{}
	for _, tc := range []struct {
		name      string
		observers []Observer
		want      *durations
		wantTimed bool
	}{
		{"an observer reads durations", []Observer{timed, &untimedDurations{}}, timed, true},
		{"every observer ignores them", []Observer{untimed}, &untimed.durations, false},
	} {
		e, _ := start(t, time.Now(), tc.observers, boolFlag("a", "f"))
		for range 20 {
			if _, found := e.Evaluate(t.Context(), "a", "f", ctx, Options{}); !found {
				t.Fatal("flag not found")
			}
		}
		tc.want.mu.Lock()
		var positive int
		for _, d := range tc.want.took {
			if d > 0 {
				positive++
			}
		}
		n := len(tc.want.took)
		tc.want.mu.Unlock()
		if n != 20 {
			t.Fatalf("%s: %d evaluations observed, want 20", tc.name, n)
		}
		if tc.wantTimed && positive == 0 {
			t.Errorf("%s: no evaluation was timed", tc.name)
		}
		if !tc.wantTimed && positive != 0 {
			t.Errorf("%s: %d evaluations were timed", tc.name, positive)
		}
	}
}
