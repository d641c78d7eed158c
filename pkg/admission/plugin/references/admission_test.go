package references

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/warning"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

type recorder []string

func (r *recorder) AddWarning(_, text string) { *r = append(*r, text) }

func newPlugin(t testing.TB, objs ...any) *Plugin {
	t.Helper()
	f := informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *v1beta1.Flag:
			err = f.Flagpole().V1beta1().Flags().Informer().GetIndexer().Add(o)
		case *v1beta1.Segment:
			err = f.Flagpole().V1beta1().Segments().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p := New()
	p.SetFlagpoleInformers(f)
	p.SetReadyFunc(func() bool { return true })
	if err := p.ValidateInitialization(); err != nil {
		t.Fatal(err)
	}
	return p
}

func attrs(obj any, op admission.Operation, resource, subresource, name string) admission.Attributes {
	var o runtime.Object
	if obj != nil {
		o = obj.(runtime.Object)
	}
	kind := flagpole.Kind("Flag").WithVersion("v1beta1")
	if resource == "flagoverrides" {
		kind = flagpole.Kind("FlagOverride").WithVersion("v1beta1")
	}
	return admission.NewAttributesRecord(o, nil, kind, "default", name,
		flagpole.Resource(resource).WithVersion("v1beta1"), subresource, op, nil, false, nil)
}

func TestFlagWithMissingSegmentWarns(t *testing.T) {
	p := newPlugin(t, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "present", Namespace: "default"}})
	f := &flagpole.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "default"},
		Spec: flagpole.FlagSpec{Rules: []flagpole.Rule{{Name: "r", Segments: []string{"present", "absent"}}}}}
	var w recorder
	ctx := warning.WithWarningRecorder(context.Background(), &w)
	if err := p.Validate(ctx, attrs(f, admission.Create, "flags", "", "f"), nil); err != nil {
		t.Fatalf("a missing segment must not block the write: %v", err)
	}
	if len(w) != 1 || !strings.Contains(w[0], `spec.rules[0].segments[1]: Segment "absent"`) {
		t.Errorf("warnings = %q", w)
	}
}

func TestOverrideVariantChecked(t *testing.T) {
	p := newPlugin(t, &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "default"},
		Spec: v1beta1.FlagSpec{Variants: []v1beta1.Variant{{Name: "on"}, {Name: "off"}}}})
	o := &flagpole.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "o", Namespace: "default"}, Spec: flagpole.FlagOverrideSpec{Flag: "f", Variant: "maybe"}}
	err := p.Validate(context.Background(), attrs(o, admission.Create, "flagoverrides", "", "o"), nil)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.variant") || !strings.Contains(err.Error(), "off, on") {
		t.Errorf("unknown variant: %v", err)
	}
	o.Spec.Variant = "on"
	if err := p.Validate(context.Background(), attrs(o, admission.Update, "flagoverrides", "", "o"), nil); err != nil {
		t.Errorf("known variant: %v", err)
	}
	var w recorder
	o.Spec.Flag = "later"
	if err := p.Validate(warning.WithWarningRecorder(context.Background(), &w), attrs(o, admission.Create, "flagoverrides", "", "o"), nil); err != nil || len(w) != 1 {
		t.Errorf("override of a missing flag: %v, warnings %q", err, w)
	}
}

func TestSegmentDeleteWarnsUsers(t *testing.T) {
	p := newPlugin(t,
		&v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "default"}, Spec: v1beta1.FlagSpec{Rules: []v1beta1.Rule{{Segments: []string{"beta"}}}}},
		&v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}, Spec: v1beta1.FlagSpec{Rules: []v1beta1.Rule{{}, {Segments: []string{"x", "beta"}}}}},
		&v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}},
	)
	var w recorder
	a := admission.NewAttributesRecord(nil, nil, flagpole.Kind("Segment").WithVersion("v1beta1"), "default", "beta",
		flagpole.Resource("segments").WithVersion("v1beta1"), "", admission.Delete, nil, false, nil)
	if err := p.Validate(warning.WithWarningRecorder(context.Background(), &w), a, nil); err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.Contains(w[0], "flag(s) a, b") {
		t.Errorf("warnings = %q", w)
	}
}

// Evaluation requests skip the plugin entirely.
func TestEvaluateSkipped(t *testing.T) {
	p := newPlugin(t)
	p.SetReadyFunc(func() bool { t.Fatal("evaluate must not wait for caches"); return false })
	req := &flagpole.EvaluationRequest{}
	if err := p.Validate(context.Background(), attrs(req, admission.Create, "flags", "evaluate", "f"), nil); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkValidateEvaluate is what this plugin adds to every flags/evaluate
// request (docs/evaluation.md reports it).
func BenchmarkValidateEvaluate(b *testing.B) {
	p := newPlugin(b)
	a := attrs(&flagpole.EvaluationRequest{}, admission.Create, "flags", "evaluate", "f")
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := p.Validate(ctx, a, nil); err != nil {
			b.Fatal(err)
		}
	}
}
