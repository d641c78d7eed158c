package apiserver

import (
	"io"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// cached stands in for the watch cache's shared event objects: readers must
// take their own copy (GetObject), never the shared one.
type cached struct {
	runtime.Object
	copies int
}

func (c *cached) CacheEncode(runtime.Identifier, func(runtime.Object, io.Writer) error, io.Writer) error {
	return nil
}

func (c *cached) GetObject() runtime.Object {
	c.copies++
	return c.Object.DeepCopyObject()
}

// The informers get v1beta1 objects of their own from the watch cache's
// internal, shared ones, and error events as they are, so that the
// reflector can act on them (e.g. relist after "too old resource version").
func TestLocalInformersEvents(t *testing.T) {
	l := &LocalInformers{scheme: Scheme}
	shared := &cached{Object: &flagpole.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", ResourceVersion: "7"},
		Spec: flagpole.FlagSpec{DefaultVariant: "on"}}}
	ev, ok := l.versionedEvent(watch.Event{Type: watch.Modified, Object: shared})
	f, isFlag := ev.Object.(*v1beta1.Flag)
	if !ok || ev.Type != watch.Modified || !isFlag || f.Name != "f" || f.ResourceVersion != "7" || f.Spec.DefaultVariant != "on" {
		t.Fatalf("event %v %#v, want the v1beta1 flag", ev.Type, ev.Object)
	}
	if shared.copies != 1 {
		t.Errorf("the shared object was read %d times through GetObject, want once", shared.copies)
	}
	f.Spec.DefaultVariant = "changed"
	if shared.Object.(*flagpole.Flag).Spec.DefaultVariant != "on" {
		t.Error("the informer's object aliases the watch cache's")
	}

	tooOld := &metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired}
	if ev, ok := l.versionedEvent(watch.Event{Type: watch.Error, Object: tooOld}); !ok || ev.Type != watch.Error || ev.Object != tooOld {
		t.Errorf("error event became %v %#v", ev.Type, ev.Object)
	}
}

// Serve refuses storage that cannot feed an informer.
func TestLocalInformersServeNeedsEveryStore(t *testing.T) {
	l := &LocalInformers{scheme: Scheme, stores: map[string]localStore{}, served: make(chan struct{})}
	if err := l.Serve(map[string]rest.Storage{}); err == nil || !strings.Contains(err.Error(), "flags") {
		t.Errorf("Serve without stores: %v", err)
	}
}
