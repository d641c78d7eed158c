package flagstatus

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// delays records every AddAfter; the rest of the queue is real.
type delays struct {
	workqueue.TypedRateLimitingInterface[string]
	added []time.Duration
}

func (q *delays) AddAfter(key string, d time.Duration) {
	q.added = append(q.added, d)
	q.TypedRateLimitingInterface.AddAfter(key, d)
}

// The wake-up for a flag that turns stale in the far future must be a
// positive delay no longer than maxRequeueDelay. expiresAt-now saturates at
// the largest time.Duration after ~2318, and adding the safety second used to
// overflow into a negative delay: an immediate requeue, in a loop, for ever.
func TestSyncRequeueDelay(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expiresAt time.Time
		want      time.Duration
	}{
		{now.Add(time.Hour), time.Hour + time.Second},
		{now.Add(300 * 24 * time.Hour), maxRequeueDelay},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), maxRequeueDelay},
	} {
		expiresAt := metav1.NewTime(tc.expiresAt)
		f := &v1beta1.Flag{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "f", Generation: 1},
			Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, ExpiresAt: &expiresAt,
				Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}}},
		}
		client := fake.NewSimpleClientset(f)
		factory := informers.NewSharedInformerFactory(client, 0)
		source, err := evaluator.New(factory, clocktesting.NewFakeClock(now))
		if err != nil {
			t.Fatal(err)
		}
		ctrl, err := New(client, factory, source, clocktesting.NewFakeClock(now))
		if err != nil {
			t.Fatal(err)
		}
		q := &delays{TypedRateLimitingInterface: ctrl.queue}
		ctrl.queue = q
		if err := factory.Flagpole().V1beta1().Flags().Informer().GetIndexer().Add(f); err != nil {
			t.Fatal(err)
		}
		if err := ctrl.sync(context.Background(), "default/f"); err != nil {
			t.Fatal(err)
		}
		q.ShutDown()
		if len(q.added) != 1 || q.added[0] != tc.want {
			t.Errorf("expiresAt %s: AddAfter delays %v, want [%v]", tc.expiresAt.Format(time.RFC3339), q.added, tc.want)
		}
	}
}
