package revisions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/session"
)

func TestSource(t *testing.T) {
	client := fake.NewSimpleClientset(
		&v1beta1.FlagRevision{ObjectMeta: metav1.ObjectMeta{Name: "f.2", Namespace: "ns"}, Change: v1beta1.FlagChange{Generation: 2, User: "bob"}, Spec: spec("on")},
		&v1beta1.FlagRevision{ObjectMeta: metav1.ObjectMeta{Name: "f.1", Namespace: "ns"}, Change: v1beta1.FlagChange{Generation: 1, User: "ann"}, Spec: spec("off")},
	)
	revs, err := Discover(client).List(context.Background(), "ns", "f")
	if err != nil || len(revs) != 2 || revs[0].Number != 1 || revs[0].User != "ann" || revs[1].Number != 2 || revs[1].Object == nil {
		t.Errorf("List: %v %+v (oldest first)", err, revs)
	}

	// A 404 for the list: a server without revisions, or without Flagpole.
	for _, tc := range []struct {
		resources []metav1.APIResource
		code      exit.Code
		want      string
	}{
		{[]metav1.APIResource{{Name: "flags"}, {Name: "flags/status"}}, exit.Unsupported, ErrNoRevisions.Error()},
		{nil, exit.NotFound, "does not serve flagpole.dev"},
	} {
		client := fake.NewSimpleClientset()
		client.PrependReactor("list", "flagrevisions", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewGenericServerResponse(404, "GET", schema.GroupResource{}, "", "the server could not find the requested resource", 0, true)
		})
		if tc.resources != nil {
			client.Resources = []*metav1.APIResourceList{{GroupVersion: "flagpole.dev/v1beta1", APIResources: tc.resources}}
		}
		_, err := Discover(client).List(context.Background(), "ns", "f")
		if exit.CodeOf(err) != tc.code || !strings.Contains(err.Error()+fmt.Sprint(err.(*exit.Error).Hint), tc.want) {
			t.Errorf("%v: %v (exit %d), want %q, exit %d", tc.resources, err, exit.CodeOf(err), tc.want, tc.code)
		}
	}
}

func TestChange(t *testing.T) {
	for diff, want := range map[string]string{"": "created", "a": "a", "a|b|c": "a (+2 more)"} {
		var lines []string
		if diff != "" {
			lines = strings.Split(diff, "|")
		}
		if got := change(lines); got != want {
			t.Errorf("change(%q) = %q, want %q", lines, got, want)
		}
	}
}

// fakeSource is a server that keeps revisions.
type fakeSource []Revision

func (s fakeSource) List(context.Context, string, string) ([]Revision, error) { return s, nil }

func spec(def v1beta1.VariantName) v1beta1.FlagSpec {
	return v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, DefaultVariant: def,
		Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}}}
}

func TestRollback(t *testing.T) {
	revs := fakeSource{
		{Number: 1, Spec: spec("off"), User: "ann", Time: time.Unix(0, 0)},
		{Number: 2, Spec: spec("on"), User: "bob", Time: time.Unix(60, 0)},
	}
	current := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", Generation: 2, ResourceVersion: "5"}, Spec: spec("on")}
	client := fake.NewSimpleClientset(current)
	var out, errOut bytes.Buffer
	s := session.New(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	o := &RollbackOptions{Options: Options{s: s, flag: "f", Scope: session.Scope{Namespace: "ns", Client: client}, source: revs}}

	// Without --yes and without a terminal: shown, refused, unchanged.
	if err := o.Run(context.Background(), 1); exit.CodeOf(err) != exit.Cancelled {
		t.Fatalf("rollback without --yes: %v", err)
	}
	if !strings.Contains(errOut.String(), "-defaultVariant: \"on\"") || !strings.Contains(errOut.String(), "+defaultVariant: \"off\"") {
		t.Errorf("the diff shown before asking:\n%s", errOut.String())
	}
	o.Yes = true
	if err := o.Run(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f, _ := client.FlagpoleV1beta1().Flags("ns").Get(context.Background(), "f", metav1.GetOptions{})
	if f.Spec.DefaultVariant != "off" || !strings.Contains(out.String(), "rolled back to revision 1") {
		t.Errorf("after rollback: default %q, output %q", f.Spec.DefaultVariant, out.String())
	}
	if err := o.Run(context.Background(), 1); err != nil || !strings.Contains(out.String(), "already has the spec of revision 1") {
		t.Errorf("rolling back to the spec it has: %v %q", err, out.String())
	}
	if err := o.Run(context.Background(), 9); exit.CodeOf(err) != exit.NotFound {
		t.Errorf("an unknown revision: %v", err)
	}

	text, err := Diff(revs[0], revs[1])
	if err != nil || !strings.HasPrefix(text, "--- revision 1\n+++ revision 2\n") {
		t.Errorf("diff: %v\n%s", err, text)
	}
	if _, err := parseRevision("x"); exit.CodeOf(err) != exit.Usage {
		t.Errorf("parseRevision(x): %v", err)
	}
	if !errors.Is(&exit.Error{Code: exit.Unsupported, Err: ErrNoRevisions}, ErrNoRevisions) {
		t.Error("ErrNoRevisions is not recognisable through exit.Error")
	}
}
