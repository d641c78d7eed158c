package edit

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

func testFlag() *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", ResourceVersion: "1"},
		Spec: v1beta1.FlagSpec{
			Type:     v1beta1.FlagTypeBoolean,
			Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
			Rules:    []v1beta1.Rule{{Name: "gradual", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 1}}}}},
		},
	}
}

// concurrentWriter makes the first n updates conflict, as another writer
// would: just before, it changes the stored flag's owner.
func concurrentWriter(client *fake.Clientset, n int) *int {
	conflicts := 0
	client.PrependReactor("update", "flags", func(action k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts >= n {
			return false, nil, nil
		}
		conflicts++
		stored, _ := client.Tracker().Get(v1beta1.SchemeGroupVersion.WithResource("flags"), "ns", "f")
		other := stored.(*v1beta1.Flag).DeepCopy()
		other.Spec.Owner = "the-other-writer"
		other.ResourceVersion += "+"
		if err := client.Tracker().Update(v1beta1.SchemeGroupVersion.WithResource("flags"), other, "ns"); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewConflict(v1beta1.Resource("flags"), "f", errors.New("the object has been modified"))
	})
	return &conflicts
}

func TestUpdateRecomputesOnConflict(t *testing.T) {
	client := fake.NewSimpleClientset(testFlag())
	conflicts := concurrentWriter(client, 2)
	mutations := 0
	res, err := Update(context.Background(), client, "ns", "f", WriteFlags{}, func(f *v1beta1.Flag) error {
		mutations++
		f.Spec.Rules[0].Rollout.Distribution[0].Weight = 7
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if *conflicts != 2 || mutations != 3 || res.Retries != 2 || res.Note() != " (recomputed on 2 concurrent changes)" {
		t.Errorf("conflicts %d, mutations %d, retries %d %q: want the change recomputed after each of 2 conflicts", *conflicts, mutations, res.Retries, res.Note())
	}
	stored, _ := client.FlagpoleV1beta1().Flags("ns").Get(context.Background(), "f", metav1.GetOptions{})
	if stored.Spec.Owner != "the-other-writer" || stored.Spec.Rules[0].Rollout.Distribution[0].Weight != 7 {
		t.Errorf("stored: owner %q weight %d: a change was lost", stored.Spec.Owner, stored.Spec.Rules[0].Rollout.Distribution[0].Weight)
	}
}

func TestUpdateReportsWhatItCannotGetPast(t *testing.T) {
	// Every attempt conflicts: reported with exit 5, never written.
	client := fake.NewSimpleClientset(testFlag())
	concurrentWriter(client, 1000)
	_, err := Update(context.Background(), client, "ns", "f", WriteFlags{}, func(f *v1beta1.Flag) error { f.Spec.DefaultVariant = "on"; return nil })
	if exit.CodeOf(err) != exit.Conflict {
		t.Errorf("endless conflicts: %v (exit %d), want exit %d", err, exit.CodeOf(err), exit.Conflict)
	}

	// A precondition on a revision the flag has left: reported, not retried.
	client = fake.NewSimpleClientset(testFlag())
	mutations := 0
	_, err = Update(context.Background(), client, "ns", "f", WriteFlags{IfResourceVersion: "0"}, func(*v1beta1.Flag) error { mutations++; return nil })
	if exit.CodeOf(err) != exit.Conflict || mutations != 0 {
		t.Errorf("stale --if-resource-version: %v (exit %d), %d mutations", err, exit.CodeOf(err), mutations)
	}

	// A precondition that holds, then a conflict: the retry finds the flag
	// changed and reports it instead of writing over the other change.
	client = fake.NewSimpleClientset(testFlag())
	concurrentWriter(client, 1)
	_, err = Update(context.Background(), client, "ns", "f", WriteFlags{IfResourceVersion: "1"}, func(f *v1beta1.Flag) error { f.Spec.DefaultVariant = "on"; return nil })
	if exit.CodeOf(err) != exit.Conflict {
		t.Errorf("a conflict under --if-resource-version: %v, want exit %d", err, exit.Conflict)
	}
	stored, _ := client.FlagpoleV1beta1().Flags("ns").Get(context.Background(), "f", metav1.GetOptions{})
	if stored.Spec.DefaultVariant != "" {
		t.Errorf("written despite the precondition: %q", stored.Spec.DefaultVariant)
	}

	// Unchanged: nothing written.
	client = fake.NewSimpleClientset(testFlag())
	res, err := Update(context.Background(), client, "ns", "f", WriteFlags{}, func(*v1beta1.Flag) error { return ErrUnchanged })
	if err != nil || !res.Unchanged {
		t.Errorf("unchanged: %v %+v", err, res)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "update" {
			t.Errorf("an unchanged flag was written: %v", a)
		}
	}
}

func TestParseDistribution(t *testing.T) {
	d, err := ParseDistribution([]string{"on=10", "off=90%"})
	if err != nil || len(d) != 2 || d[0].Weight != 10 || d[1].Variant != "off" || d[1].Weight != 90 {
		t.Errorf("%+v %v", d, err)
	}
	for _, bad := range [][]string{{"on"}, {"on=x"}, {"on=-1"}, {"=1"}, {"on=0", "off=0"}, {"on=1", "on=2"}, {"on=2147483647", "off=1"}} {
		if _, err := ParseDistribution(bad); exit.CodeOf(err) != exit.Usage {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
}
