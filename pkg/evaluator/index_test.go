package evaluator

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func override(ns, name, flag string) *v1beta1.FlagOverride {
	return &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1beta1.FlagOverrideSpec{Flag: flag}}
}

// The index follows adds, updates (an override moved to another flag),
// deletes and tombstones, and never changes a list it handed out.
func TestIndex(t *testing.T) {
	x := newIndex()
	h := x.overrideHandler()
	a, b := override("ns", "a", "f"), override("ns", "b", "f")
	h.OnAdd(a, false)
	h.OnAdd(b, false)
	handedOut := x.flagOverrides("ns", "f")
	if len(handedOut) != 2 {
		t.Fatalf("f: %v", handedOut)
	}
	moved := override("ns", "b", "g")
	h.OnUpdate(b, moved)
	if got := x.flagOverrides("ns", "f"); len(got) != 1 || got[0].Name != "a" {
		t.Errorf("f after b moved: %v", got)
	}
	if got := x.flagOverrides("ns", "g"); len(got) != 1 || got[0] != moved {
		t.Errorf("g: %v", got)
	}
	if len(handedOut) != 2 || handedOut[1] != b {
		t.Errorf("a list handed out changed: %v", handedOut)
	}
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/a", Obj: a})
	h.OnDelete(moved)
	if len(x.overrides) != 0 {
		t.Errorf("left behind: %v", x.overrides)
	}

	fh := x.flagHandler()
	f := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "f", ResourceVersion: "1"}}
	fh.OnAdd(f, false)
	f2 := f.DeepCopy()
	f2.ResourceVersion = "2"
	fh.OnUpdate(f, f2)
	if got := x.flag("ns", "f"); got != f2 {
		t.Errorf("flag: %v", got)
	}
	if x.flag("other", "f") != nil {
		t.Error("a flag of another namespace")
	}
	fh.OnDelete(f2)
	if x.flag("ns", "f") != nil || len(x.flags) != 0 {
		t.Errorf("after delete: %v", x.flags)
	}
}
