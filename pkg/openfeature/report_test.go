package openfeature

import (
	"context"
	"sync"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
)

// reports captures the UsageReports the provider sends, answering each with
// the next error of fail (nil: accepted).
type reports struct {
	mu   sync.Mutex
	got  []*v1beta1.UsageReport
	fail []error
}

func (r *reports) react(action k8stesting.Action) (bool, runtime.Object, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.fail) > 0 {
		err := r.fail[0]
		r.fail = r.fail[1:]
		if err != nil {
			return true, nil, err
		}
	}
	report := action.(k8stesting.CreateAction).GetObject().(*v1beta1.UsageReport)
	r.got = append(r.got, report.DeepCopy())
	return true, report, nil
}

func (r *reports) counts(flag string) (evaluations int64, variants map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	variants = map[string]int64{}
	for _, report := range r.got {
		for _, f := range report.Spec.Flags {
			if f.Name != flag {
				continue
			}
			for _, rc := range f.Reasons {
				evaluations += rc.Count
			}
			for _, vc := range f.Variants {
				variants[vc.Name] += vc.Count
			}
		}
	}
	return evaluations, variants
}

// The provider reports what it evaluated; counts the server could not take
// for a reason that passes are sent with the next report, until they are
// older than the unsent limit; a refused report is dropped; evaluation
// never waits for any of it.
func TestProviderReportsUsage(t *testing.T) {
	client := fake.NewSimpleClientset()
	for _, f := range fixtures() {
		if _, err := client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), f, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &reports{}
	client.PrependReactor("create", "usagereports", rec.react)
	clock := clocktesting.NewFakeClock(time.Now())
	p, err := newProvider(client, ns, WithSyncTimeout(10*time.Second), WithClock(clock), WithUsageReportInterval(0), WithMaxUnsentUsage(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	r := &reporter{p: p}
	ctx := context.Background()
	vip := of.FlattenedContext{"targetingKey": "user-1", "plan": "vip"}

	for i := 0; i < 3; i++ {
		p.BooleanEvaluation(ctx, "bool-flag", false, vip)
	}
	p.BooleanEvaluation(ctx, "bool-flag", false, nil)
	p.BooleanEvaluation(ctx, "no-such-flag", false, nil)
	d := p.BooleanEvaluation(ctx, "bool-flag", false, vip)
	if d.FlagMetadata["flagSetId"] != ns || d.FlagMetadata["version"] != "1" {
		t.Errorf("flag metadata for the telemetry hooks: %v", d.FlagMetadata)
	}
	r.report(ctx)
	if n, variants := rec.counts("bool-flag"); n != 5 || variants["on"] != 4 || variants["off"] != 1 {
		t.Fatalf("first report: %d evaluations, %v", n, variants)
	}
	if n, _ := rec.counts("no-such-flag"); n != 0 {
		t.Errorf("a key without a flag was reported")
	}
	if got := len(rec.got[0].Spec.Flags); got != 1 {
		t.Errorf("the first report names %d flags, want 1", got)
	}

	// Flagpole unavailable: the counts wait for the next report.
	rec.fail = []error{apierrors.NewServiceUnavailable("etcd is down")}
	p.StringEvaluation(ctx, "string-flag", "x", nil)
	r.report(ctx)
	p.StringEvaluation(ctx, "string-flag", "x", nil)
	r.report(ctx)
	if n, variants := rec.counts("string-flag"); n != 2 || variants["greeting"] != 2 {
		t.Errorf("after a 503 and a success: %d evaluations, %v, want 2", n, variants)
	}

	// Unreachable for longer than the limit: the old counts are dropped.
	rec.fail = []error{apierrors.NewServiceUnavailable("down"), apierrors.NewServiceUnavailable("down")}
	p.StringEvaluation(ctx, "object-flag", "x", nil)
	p.ObjectEvaluation(ctx, "object-flag", nil, nil)
	r.report(ctx)
	clock.Step(2 * time.Minute)
	r.report(ctx)
	r.report(ctx)
	if n, _ := rec.counts("object-flag"); n != 0 {
		t.Errorf("counts older than the unsent limit were sent: %d", n)
	}

	// Refused (a flag deleted meanwhile, say): dropped, not retried.
	rec.fail = []error{apierrors.NewInvalid(schema.GroupKind{Group: "flagpole.dev", Kind: "UsageReport"}, "", nil)}
	p.FloatEvaluation(ctx, "number-flag", 0, nil)
	r.report(ctx)
	r.report(ctx)
	if n, _ := rec.counts("number-flag"); n != 0 {
		t.Errorf("a refused report was sent again: %d", n)
	}
	p.FloatEvaluation(ctx, "number-flag", 0, nil)
	r.report(ctx)
	if n, _ := rec.counts("number-flag"); n != 1 {
		t.Errorf("after a refusal: %d, want the new evaluation only", n)
	}
}
