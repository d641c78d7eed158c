package flag

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/expression"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
)

func newFlag() *flagpole.Flag {
	return &flagpole.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "new-checkout", Namespace: "default", ResourceVersion: "7", Generation: 3},
		Spec: flagpole.FlagSpec{
			Type:  flagpole.FlagTypeObject,
			State: flagpole.FlagStateEnabled,
			Variants: []flagpole.Variant{
				{Name: "a", Value: flagpole.JSON{Raw: []byte(`{"x":1}`)}},
				{Name: "b", Value: flagpole.JSON{Raw: []byte(`{"x":2}`)}},
			},
			DefaultVariant: "a",
			Rules:          []flagpole.Rule{{Name: "r", When: "true", Variant: "b"}},
		},
		Status: flagpole.FlagStatus{ObservedGeneration: 3},
	}
}

func testStrategy() Strategy {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	return NewStrategy(scheme, expression.Compile, nil, clock.RealClock{})
}

// The strategy runs the engine's compiler: an expression the engine cannot
// run is refused on write.
func TestValidateCompilesExpressions(t *testing.T) {
	s := testStrategy()
	ctx := context.Background()
	f := newFlag()
	f.ResourceVersion = ""
	if errs := s.Validate(ctx, f); len(errs) != 0 {
		t.Fatalf("valid flag rejected: %v", errs)
	}
	f.Spec.Rules[0].When = "context.plan =="
	errs := s.Validate(ctx, f)
	if len(errs) != 1 || errs[0].Field != "spec.rules[0].when" {
		t.Errorf("a rule that does not compile: %v, want one error at spec.rules[0].when", errs)
	}
	f.Spec.Rules[0].When = `"not a boolean"`
	f.ResourceVersion = "7"
	if errs := s.ValidateUpdate(ctx, f, newFlag()); len(errs) != 1 || errs[0].Field != "spec.rules[0].when" {
		t.Errorf("a rule that is not a predicate: %v, want one error at spec.rules[0].when", errs)
	}
}

// sizeGuarded is how NewStorage guards flags and flags/status, with the
// JSON storage encoding.
func sizeGuarded(s Strategy, limit guard.SizeLimit) guard.Store {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	limit.Storage = guard.JSONStorage(scheme)
	return guard.Store{Store: &genericregistry.Store{CreateStrategy: s}, Size: limit}
}

// sizeErrors is the field errors of a 422, nil for nil.
func sizeErrors(t *testing.T, err error) field.ErrorList {
	t.Helper()
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != http.StatusUnprocessableEntity || status.Status().Details == nil {
		t.Fatalf("size check: %v, want a 422", err)
	}
	var errs field.ErrorList
	for _, c := range status.Status().Details.Causes {
		e := &field.Error{Field: c.Field, Type: field.ErrorType(c.Type), Detail: c.Message}
		errs = append(errs, e)
	}
	return errs
}

// Field limits each hold and still add up to more than etcd accepts; the
// stored size is checked as a whole, by the store, on the object the
// strategy made.
func TestValidateStoredSize(t *testing.T) {
	s := testStrategy()
	ctx := context.Background()
	f := newFlag()
	f.ResourceVersion = ""
	// 200 rules of 4 KiB expressions and 16 segment names of 253 bytes:
	// every field within its own limit, 1.6 MiB together.
	f.Spec.Rules = nil
	when := "context.plan == '" + strings.Repeat("x", validation.MaxExpressionLength-20) + "'"
	label := strings.Repeat("s", 63)
	segments := make([]string, validation.MaxSegmentsPerRule)
	for i := range segments {
		segments[i] = label + "." + label + "." + label + "." + strings.Repeat("s", 61)
	}
	for i := 0; i < validation.MaxRules; i++ {
		f.Spec.Rules = append(f.Spec.Rules, flagpole.Rule{Name: fmt.Sprint("r", i), When: when, Segments: segments, Variant: "b"})
	}
	if errs := s.Validate(ctx, f); len(errs) != 0 {
		t.Fatalf("every field is within its limit: %v", errs)
	}
	errs := sizeErrors(t, sizeGuarded(s, specSize).CheckSize(f))
	if len(errs) != 1 || errs[0].Field != "spec" || errs[0].Type != field.ErrorTypeTooLong || !strings.Contains(errs[0].Detail, "bytes as stored") {
		t.Fatalf("an object over MaxObjectBytes: %v, want one TooLong at spec naming its size", errs)
	}

	// A status write may go StatusHeadroomBytes beyond, no further.
	f.Spec.Rules = f.Spec.Rules[:120]
	f.ResourceVersion = "1"
	status := NewStatusStrategy(s)
	statusStore := sizeGuarded(s, statusSize)
	old := f.DeepCopy()
	f.Status.Conditions = []metav1.Condition{{Type: "Audited", Status: metav1.ConditionTrue, Reason: "Checked", Message: strings.Repeat("m", 30000), LastTransitionTime: metav1.Now()}}
	if errs := append(status.ValidateUpdate(ctx, f, old), sizeErrors(t, statusStore.CheckSize(f))...); len(errs) != 0 {
		t.Errorf("a status write within the headroom: %v", errs)
	}
	for i := 0; i < 10; i++ {
		f.Status.Conditions = append(f.Status.Conditions, metav1.Condition{Type: fmt.Sprint("T", i), Status: metav1.ConditionTrue, Reason: "Checked", Message: strings.Repeat("m", 30000), LastTransitionTime: metav1.Now()})
	}
	if errs := append(status.ValidateUpdate(ctx, f, old), sizeErrors(t, statusStore.CheckSize(f))...); len(errs) != 1 || errs[0].Field != "status" {
		t.Errorf("a status write beyond the headroom: %v, want one error at status", errs)
	}
}

func TestPrepareForCreate(t *testing.T) {
	f := newFlag()
	testStrategy().PrepareForCreate(context.Background(), f)
	if f.Generation != 1 {
		t.Errorf("generation = %d, want 1", f.Generation)
	}
	if f.Status.ObservedGeneration != 0 || f.Status.Conditions != nil {
		t.Errorf("status was not cleared: %+v", f.Status)
	}
}

func TestPrepareForUpdate(t *testing.T) {
	s := testStrategy()
	ctx := context.Background()

	old := newFlag()
	f := old.DeepCopy()
	f.Status = flagpole.FlagStatus{ObservedGeneration: 99}
	f.Labels = map[string]string{"team": "x"}
	s.PrepareForUpdate(ctx, f, old)
	if f.Status.ObservedGeneration != 3 {
		t.Errorf("a write to the main resource changed status: %+v", f.Status)
	}
	if f.Generation != 3 {
		t.Errorf("metadata-only change bumped generation to %d", f.Generation)
	}

	f = old.DeepCopy()
	f.Spec.Variants[0].Value.Raw = []byte("{ \"x\" :\n 1 }")
	s.PrepareForUpdate(ctx, f, old)
	if f.Generation != 3 {
		t.Errorf("re-spacing a JSON value bumped generation to %d", f.Generation)
	}

	f = old.DeepCopy()
	f.Spec.State = flagpole.FlagStateDisabled
	s.PrepareForUpdate(ctx, f, old)
	if f.Generation != 4 {
		t.Errorf("spec change: generation = %d, want 4", f.Generation)
	}
}

func TestStatusStrategy(t *testing.T) {
	s := NewStatusStrategy(testStrategy())
	old := newFlag()
	old.Labels = map[string]string{"team": "checkout"}
	f := old.DeepCopy()
	f.Spec.State = flagpole.FlagStateDisabled
	f.Status.ObservedGeneration = 4
	f.Labels = map[string]string{"team": "other"}
	f.Annotations = map[string]string{"a": "b"}
	f.Finalizers = []string{"x/y"}
	s.PrepareForUpdate(context.Background(), f, old)
	if f.Spec.State != flagpole.FlagStateEnabled {
		t.Error("a write to flags/status changed spec")
	}
	if f.Labels["team"] != "checkout" || f.Annotations != nil || f.Finalizers != nil {
		t.Errorf("a write to flags/status changed metadata: labels=%v annotations=%v finalizers=%v", f.Labels, f.Annotations, f.Finalizers)
	}
	if f.Status.ObservedGeneration != 4 {
		t.Error("a write to flags/status lost its status")
	}
	if errs := s.ValidateUpdate(context.Background(), f, old); len(errs) != 0 {
		t.Errorf("valid status update rejected: %v", errs)
	}

	spec := fieldpath.MakePathOrDie("spec")
	status := fieldpath.MakePathOrDie("status")
	if reset := s.GetResetFields()["flagpole.dev/v1beta1"]; !reset.Has(spec) || !reset.Has(fieldpath.MakePathOrDie("metadata", "labels")) || reset.Has(status) {
		t.Errorf("status strategy resets %v, want spec and metadata, not status", reset)
	}
	if reset := testStrategy().GetResetFields()["flagpole.dev/v1beta1"]; !reset.Has(status) || reset.Has(spec) {
		t.Errorf("main strategy resets %v, want status only", reset)
	}
}

func TestCanonicalize(t *testing.T) {
	f := newFlag()
	f.Spec.Variants[0].Value.Raw = []byte("{ \"x\": 1 }")
	testStrategy().Canonicalize(f)
	if got := string(f.Spec.Variants[0].Value.Raw); got != `{"x":1}` {
		t.Errorf("value stored as %s, want compact JSON", got)
	}
}

func TestWarnings(t *testing.T) {
	s := testStrategy()
	f := newFlag()
	if w := s.WarningsOnCreate(context.Background(), f); len(w) != 0 {
		t.Errorf("unexpected warnings: %v", w)
	}
	past := metav1.NewTime(time.Now().Add(-time.Hour))
	f.Spec.ExpiresAt = &past
	f.Spec.Rules = []flagpole.Rule{{Name: "all", Variant: "a"}, {Name: "never", When: "true", Variant: "b"}}
	w := s.WarningsOnUpdate(context.Background(), f, newFlag())
	if len(w) != 2 || !strings.Contains(w[0], "spec.expiresAt") || !strings.Contains(w[1], "never reached") {
		t.Errorf("warnings = %q", w)
	}

	// "In the past" is the strategy's clock's past.
	s.clock = clocktesting.NewFakePassiveClock(past.Add(-time.Minute))
	if w := s.WarningsOnUpdate(context.Background(), f, newFlag()); len(w) != 1 || strings.Contains(w[0], "spec.expiresAt") {
		t.Errorf("warnings a minute before expiresAt = %q, want only the unreachable rule", w)
	}
}

func TestFieldSelectors(t *testing.T) {
	f := newFlag()
	f.Labels = map[string]string{"team": "checkout"}
	for _, tc := range []struct {
		selector string
		match    bool
	}{
		{"spec.state=Enabled", true},
		{"spec.state=Disabled", false},
		{"spec.type=Object,metadata.name=new-checkout", true},
		{"spec.type!=Object", false},
		{"metadata.namespace=other", false},
	} {
		sel, err := fields.ParseSelector(tc.selector)
		if err != nil {
			t.Fatal(err)
		}
		pred := Matcher(labels.Everything(), sel)
		ok, err := pred.Matches(f)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.match {
			t.Errorf("%s: match = %v, want %v", tc.selector, ok, tc.match)
		}
	}
	pred := Matcher(labels.SelectorFromSet(labels.Set{"team": "growth"}), fields.Everything())
	ok, _ := pred.Matches(f)
	if ok {
		t.Error("label selector team=growth matched a checkout flag")
	}
}

func TestTableConvertor(t *testing.T) {
	f := newFlag()
	f.CreationTimestamp = metav1.NewTime(time.Now().Add(-2 * time.Hour))
	f.Spec.Owner = "team-checkout"
	other := newFlag()
	other.Name = "kill-switch"
	other.Spec.DefaultVariant = ""
	other.Spec.Rules = nil
	list := &flagpole.FlagList{ListMeta: metav1.ListMeta{ResourceVersion: "42", Continue: "c"}, Items: []flagpole.Flag{*f, *other}}

	lastEvaluated := time.Now().Add(-3 * time.Minute)
	f.UID = "uid-evaluated"
	f.Status.Conditions = []metav1.Condition{{Type: flagpole.FlagConditionStale, Status: metav1.ConditionTrue, Reason: "Unused"}}
	list.Items[0] = *f
	source := fakeUsage{"uid-evaluated": {LastEvaluated: &metav1.Time{Time: lastEvaluated},
		Windows: []flagpole.UsageWindow{{Window: "24h", Evaluations: 12}}}}
	tableConvertor := newTableConvertor(source)
	table, err := tableConvertor.ConvertToTable(context.Background(), list, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range table.ColumnDefinitions {
		if c.Priority == 0 {
			names = append(names, c.Name)
		}
	}
	if got := strings.Join(names, ","); got != "Name,Type,State,Default,Rules,Last-Evaluated,Stale,Age" {
		t.Errorf("default columns = %s", got)
	}
	if table.ResourceVersion != "42" || table.Continue != "c" {
		t.Errorf("list metadata lost: %+v", table.ListMeta)
	}
	if len(table.Rows) != 2 {
		t.Fatalf("rows = %d", len(table.Rows))
	}
	row := table.Rows[0].Cells
	if row[0] != "new-checkout" || row[1] != "Object" || row[2] != "Enabled" || row[3] != "a" || row[4] != int64(1) ||
		row[5] != "3m" || row[6] != "Unused" || row[7] != "120m" || row[8] != "<none>" || row[9] != int64(12) || row[10] != "team-checkout" {
		t.Errorf("row = %v", row)
	}
	if other := table.Rows[1].Cells; other[3] != "<none>" || other[5] != "never" || other[6] != "<none>" || other[9] != int64(0) {
		t.Errorf("a flag without defaultVariant, never evaluated, not stale: %v", other)
	}
	if len(table.Rows[0].Cells) != len(table.ColumnDefinitions) {
		t.Errorf("%d cells for %d columns", len(table.Rows[0].Cells), len(table.ColumnDefinitions))
	}

	single, err := tableConvertor.ConvertToTable(context.Background(), f, &metav1.TableOptions{NoHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(single.Rows) != 1 || single.ColumnDefinitions != nil || single.ResourceVersion != "7" {
		t.Errorf("single object table = %+v", single)
	}
}

// A write that creates a flag or changes its spec stores the status derived
// for it (one etcd write, not one more by the controller), and derives it
// only after validation has passed; writes that keep the spec, and writes of
// status, keep the status they carry.
func TestStatusDerivedInTheWrite(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	var derived []int64
	status := func(f *flagpole.Flag) flagpole.FlagStatus {
		derived = append(derived, f.Generation)
		return flagpole.FlagStatus{ObservedGeneration: f.Generation, Conditions: []metav1.Condition{{Type: flagpole.FlagConditionReady, Status: metav1.ConditionTrue, Reason: "Derived"}}}
	}
	s := NewStrategy(scheme, expression.Compile, status, clock.RealClock{})
	ctx := genericapirequest.WithNamespace(context.Background(), "default")

	f := newFlag()
	f.ResourceVersion, f.Generation, f.Status = "", 0, flagpole.FlagStatus{ObservedGeneration: 42}
	rest.FillObjectMetaSystemFields(f)
	if err := rest.BeforeCreate(s, ctx, f); err != nil {
		t.Fatal(err)
	}
	if f.Status.ObservedGeneration != 1 || len(f.Status.Conditions) != 1 || f.Status.Conditions[0].Reason != "Derived" {
		t.Errorf("created with status %+v, want the derived one for generation 1", f.Status)
	}

	bad := newFlag()
	bad.ResourceVersion = ""
	bad.Spec.Rules[0].When = strings.Repeat("(", 5000)
	rest.FillObjectMetaSystemFields(bad)
	if err := rest.BeforeCreate(s, ctx, bad); err == nil {
		t.Fatal("an invalid flag was accepted")
	}
	if len(derived) != 1 {
		t.Errorf("status derived %d times, want once: never for a flag that fails validation", len(derived))
	}

	// An update that leaves the spec as it is keeps the stored status.
	old := f.DeepCopy()
	old.ResourceVersion = "5"
	same := old.DeepCopy()
	same.Labels = map[string]string{"team": "x"}
	if err := rest.BeforeUpdate(s, ctx, same, old); err != nil {
		t.Fatal(err)
	}
	if len(derived) != 1 || same.Status.ObservedGeneration != 1 {
		t.Errorf("a metadata-only update derived status (%d derivations, %+v)", len(derived), same.Status)
	}
	// A spec change derives it again, for the new generation.
	changed := old.DeepCopy()
	changed.Spec.DefaultVariant = "b"
	if err := rest.BeforeUpdate(s, ctx, changed, old); err != nil {
		t.Fatal(err)
	}
	if changed.Generation != 2 || changed.Status.ObservedGeneration != 2 || len(derived) != 2 {
		t.Errorf("spec change: generation %d, status %+v after %d derivations", changed.Generation, changed.Status, len(derived))
	}
	// flags/status stores what its writer wrote.
	written := changed.DeepCopy()
	written.Status = flagpole.FlagStatus{ObservedGeneration: 1}
	if err := rest.BeforeUpdate(NewStatusStrategy(s), ctx, written, changed); err != nil {
		t.Fatal(err)
	}
	if written.Status.ObservedGeneration != 1 || len(derived) != 2 {
		t.Errorf("a status write was overridden: %+v after %d derivations", written.Status, len(derived))
	}
}

// fakeUsage is a UsageSource from a map by UID.
type fakeUsage map[types.UID]*flagpole.FlagUsage

func (f fakeUsage) Usage(uid types.UID, _ time.Time) *flagpole.FlagUsage {
	if u, ok := f[uid]; ok {
		return u
	}
	return &flagpole.FlagUsage{}
}

func (f fakeUsage) LastEvaluated(uid types.UID) time.Time {
	if u, ok := f[uid]; ok && u.LastEvaluated != nil {
		return u.LastEvaluated.Time
	}
	return time.Time{}
}

// The write that changes the spec records who made it, and when, with the
// generation it made; a write that changes nothing else keeps the record,
// and a status writer can neither set it nor store usage.
func TestLastChangeCapturedInTheWrite(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	scheme := runtime.NewScheme()
	install.Install(scheme)
	s := NewStrategy(scheme, expression.Compile, nil, clocktesting.NewFakePassiveClock(now))
	dave := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "dave", Groups: []string{"oncall"}})

	f := newFlag()
	f.Status.LastChange = &flagpole.FlagChange{User: "mallory", Generation: 99}
	s.PrepareForCreate(dave, f)
	if c := f.Status.LastChange; c == nil || c.User != "dave" || c.Generation != 1 || !c.Time.Time.Equal(now) {
		t.Fatalf("on create: %+v", c)
	}

	old := f.DeepCopy()
	erin := genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "erin"})
	relabelled := old.DeepCopy()
	relabelled.Labels = map[string]string{"x": "y"}
	s.PrepareForUpdate(erin, relabelled, old)
	if c := relabelled.Status.LastChange; c.User != "dave" || c.Generation != 1 {
		t.Errorf("a metadata-only write changed lastChange: %+v", c)
	}
	disabled := old.DeepCopy()
	disabled.Spec.State = flagpole.FlagStateDisabled
	s.PrepareForUpdate(erin, disabled, old)
	if c := disabled.Status.LastChange; c.User != "erin" || c.Generation != 2 {
		t.Errorf("a spec change: %+v", c)
	}

	status := NewStatusStrategy(s)
	forged := disabled.DeepCopy()
	forged.Status.LastChange = &flagpole.FlagChange{User: "mallory", Generation: 7}
	forged.Status.Usage = &flagpole.FlagUsage{LastEvaluated: &metav1.Time{Time: now}}
	status.PrepareForUpdate(erin, forged, disabled)
	if forged.Status.LastChange.User != "erin" || forged.Status.Usage != nil {
		t.Errorf("a status write set lastChange %+v or usage %+v", forged.Status.LastChange, forged.Status.Usage)
	}
	reset := status.GetResetFields()["flagpole.dev/v1beta1"]
	if !reset.Has(fieldpath.MakePathOrDie("status", "lastChange")) || !reset.Has(fieldpath.MakePathOrDie("status", "usage")) {
		t.Error("a status writer would own lastChange or usage under server-side apply")
	}
}

// status.stale selects flags by their Stale condition.
func TestStaleFieldSelector(t *testing.T) {
	f := newFlag()
	if SelectableFields(f)[flagpole.FlagFieldStale] != "false" {
		t.Error("a flag without conditions is not stale")
	}
	f.Status.Conditions = []metav1.Condition{{Type: flagpole.FlagConditionStale, Status: metav1.ConditionTrue, Reason: "Expired"}}
	pred := Matcher(labels.Everything(), fields.OneTermEqualSelector(flagpole.FlagFieldStale, "true"))
	if ok, err := pred.Matches(f); !ok || err != nil {
		t.Errorf("a stale flag does not match status.stale=true: %v", err)
	}
}

// Every flag a read returns carries its usage; nothing else changes.
func TestDecorateUsage(t *testing.T) {
	f := newFlag()
	f.UID = "u1"
	source := fakeUsage{"u1": {Windows: []flagpole.UsageWindow{{Window: "1h", Evaluations: 3}}}}
	decorate := decorateUsage(source, clock.RealClock{})
	list := &flagpole.FlagList{Items: []flagpole.Flag{*f, *newFlag()}}
	decorate(list)
	if u := list.Items[0].Status.Usage; u == nil || u.Windows[0].Evaluations != 3 {
		t.Errorf("list item 0: %+v", u)
	}
	if u := list.Items[1].Status.Usage; u == nil || len(u.Windows) != 0 {
		t.Errorf("list item 1: %+v", u)
	}
	decorate(f)
	if f.Status.Usage == nil {
		t.Error("a single flag was not decorated")
	}
}
