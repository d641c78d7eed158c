package integration

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/controllers/flagstatus"
)

// quietWindow is how long a watch must stay silent after a write for the
// test to conclude that the status controller wrote nothing more: it reacts
// within milliseconds (see the positive control at the end).
const quietWindow = 2 * time.Second

// A create, and an update of the spec, is one etcd write: the write itself
// stores the derived status, and the status controller, which sees the flag,
// finds nothing to change. It writes once a segment the flag names appears.
func TestOneWritePerSpecWrite(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("writes")

	created, err := flags.Create(ctx, boolFlag("f"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Status.ObservedGeneration != 1 || readyReason(created) != flagstatus.ReasonSegmentNotFound {
		t.Fatalf("created with status %+v, want observedGeneration 1 and Ready=False (%s)", created.Status, flagstatus.ReasonSegmentNotFound)
	}
	w, err := flags.Watch(ctx, metav1.ListOptions{ResourceVersion: created.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	expectQuiet(t, w, "after the create")

	cur := created.DeepCopy()
	cur.Spec.DefaultVariant = "on"
	updated, err := flags.Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Generation != 2 || updated.Status.ObservedGeneration != 2 {
		t.Fatalf("spec update stored generation %d with status for %d", updated.Generation, updated.Status.ObservedGeneration)
	}
	expectWrite(t, w, updated.ResourceVersion)
	expectQuiet(t, w, "after the spec update")

	// Positive control: the controller is running and does write when
	// something outside the flag changes its status.
	if _, err := s.Client.FlagpoleV1beta1().Segments("writes").Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		f, ok := ev.Object.(*v1beta1.Flag)
		if !ok || ev.Type != watch.Modified || readyReason(f) != flagstatus.ReasonResolved || !writtenByStatusController(f) {
			t.Fatalf("after the segment appeared: %s %+v, want the controller's Ready=True", ev.Type, ev.Object)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the status controller did not write Ready=True after the segment appeared")
	}
}

func readyReason(f *v1beta1.Flag) string {
	for _, c := range f.Status.Conditions {
		if c.Type == "Ready" {
			return c.Reason
		}
	}
	return ""
}

func expectQuiet(t *testing.T, w watch.Interface, when string) {
	t.Helper()
	select {
	case ev := <-w.ResultChan():
		t.Fatalf("a second write %s: %s %+v", when, ev.Type, ev.Object)
	case <-time.After(quietWindow):
	}
}

func expectWrite(t *testing.T, w watch.Interface, rv string) {
	t.Helper()
	select {
	case ev := <-w.ResultChan():
		if f, ok := ev.Object.(*v1beta1.Flag); !ok || f.ResourceVersion != rv {
			t.Fatalf("watch: %s %+v, want the update at resourceVersion %s", ev.Type, ev.Object, rv)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the update did not reach the watch")
	}
}
