package segment

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/expression"
)

func TestStrategy(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	s := NewStrategy(scheme, expression.Compile)
	ctx := context.Background()

	seg := &flagpole.Segment{
		ObjectMeta: metav1.ObjectMeta{Name: "employees", Namespace: "default"},
		Spec:       flagpole.SegmentSpec{Include: []string{"a"}},
	}
	s.PrepareForCreate(ctx, seg)
	if seg.Generation != 1 {
		t.Errorf("generation = %d", seg.Generation)
	}
	if errs := s.Validate(ctx, seg); len(errs) != 0 {
		t.Errorf("valid segment rejected: %v", errs)
	}
	bad := seg.DeepCopy()
	bad.Spec.When = "context.email.endsWith("
	if errs := s.Validate(ctx, bad); len(errs) != 1 || errs[0].Field != "spec.when" {
		t.Errorf("a predicate that does not compile: %v, want one error at spec.when", errs)
	}
	if w := s.WarningsOnCreate(ctx, seg); len(w) != 0 {
		t.Errorf("warnings = %v", w)
	}

	seg.ResourceVersion = "1"
	updated := seg.DeepCopy()
	updated.Labels = map[string]string{"a": "b"}
	s.PrepareForUpdate(ctx, updated, seg)
	if updated.Generation != 1 {
		t.Errorf("label change bumped generation to %d", updated.Generation)
	}
	updated.Spec.Include = nil
	s.PrepareForUpdate(ctx, updated, seg)
	if updated.Generation != 2 {
		t.Errorf("spec change: generation = %d, want 2", updated.Generation)
	}
	if w := s.WarningsOnUpdate(ctx, updated, seg); len(w) != 1 {
		t.Errorf("a segment nobody can belong to must warn, got %v", w)
	}
}

func TestTableConvertor(t *testing.T) {
	seg := &flagpole.Segment{
		ObjectMeta: metav1.ObjectMeta{Name: "employees"},
		Spec:       flagpole.SegmentSpec{Include: []string{"a", "b"}, Exclude: []string{"c"}, When: "true"},
	}
	table, err := tableConvertor.ConvertToTable(context.Background(), seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cells := table.Rows[0].Cells
	if cells[0] != "employees" || cells[1] != int64(2) || cells[2] != int64(1) || cells[4] != "true" {
		t.Errorf("cells = %v", cells)
	}
}
