package usagereport

import (
	"context"
	"net/http"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
)

type added struct {
	uid      types.UID
	name     string
	total    int64
	variants int
}

type recorder struct{ added []added }

func (r *recorder) Add(uid types.UID, _, name string, reasons []flagpole.ReasonCount, variants []flagpole.VariantCount, _ time.Time) {
	var total int64
	for _, rc := range reasons {
		total += rc.Count
	}
	r.added = append(r.added, added{uid, name, total, len(variants)})
}

func lister(t *testing.T, flags ...*v1beta1.Flag) listers.FlagLister {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, f := range flags {
		if err := indexer.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	return listers.NewFlagLister(indexer)
}

func flag(ns, name string) *v1beta1.Flag {
	return &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(ns + "-" + name)},
		Spec: v1beta1.FlagSpec{Variants: []v1beta1.Variant{{Name: "on"}, {Name: "off"}}}}
}

// A report that lies about anything is refused whole with 422 and counts
// nothing; an honest one counts every flag it names.
func TestCreate(t *testing.T) {
	rec := &recorder{}
	r := NewREST(lister(t, flag("shop", "new-checkout"), flag("shop", "banner"), flag("other", "secret")), rec, clocktesting.NewFakePassiveClock(time.Now()))
	ctx := genericapirequest.WithNamespace(context.Background(), "shop")
	entry := func(name string, mutate ...func(*flagpole.FlagUsageReport)) flagpole.FlagUsageReport {
		e := flagpole.FlagUsageReport{Name: name, Reasons: []flagpole.ReasonCount{{Reason: flagpole.ReasonSplit, Count: 5}},
			Variants: []flagpole.VariantCount{{Name: "on", Count: 5}}}
		for _, m := range mutate {
			m(&e)
		}
		return e
	}
	for _, tc := range []struct {
		name  string
		flags []flagpole.FlagUsageReport
		field string
	}{
		{"unknown flag", []flagpole.FlagUsageReport{entry("banner"), entry("nope")}, "spec.flags[1].name"},
		{"another namespace's flag", []flagpole.FlagUsageReport{entry("secret")}, "spec.flags[0].name"},
		{"another flag's uid", []flagpole.FlagUsageReport{entry("banner", func(e *flagpole.FlagUsageReport) { e.UID = "other-secret" })}, "spec.flags[0].uid"},
		{"unknown variant", []flagpole.FlagUsageReport{entry("banner", func(e *flagpole.FlagUsageReport) { e.Variants[0].Name = "maybe" })}, "spec.flags[0].variants[0].name"},
		{"negative count", []flagpole.FlagUsageReport{entry("banner", func(e *flagpole.FlagUsageReport) { e.Reasons[0].Count = -1; e.Variants = nil })}, "spec.flags[0].reasons[0].count"},
		{"a billion", []flagpole.FlagUsageReport{entry("banner", func(e *flagpole.FlagUsageReport) { e.Reasons[0].Count = 1e9 })}, "spec.flags[0].reasons[0].count"},
	} {
		_, err := r.Create(ctx, &flagpole.UsageReport{Spec: flagpole.UsageReportSpec{Flags: tc.flags}}, nil, nil)
		var status apierrors.APIStatus
		if !apierrors.IsInvalid(err) || !asStatus(err, &status) || status.Status().Code != http.StatusUnprocessableEntity {
			t.Errorf("%s: %v, want 422", tc.name, err)
			continue
		}
		found := false
		for _, c := range status.Status().Details.Causes {
			found = found || c.Field == tc.field
		}
		if !found {
			t.Errorf("%s: causes %+v, want one at %s", tc.name, status.Status().Details.Causes, tc.field)
		}
	}
	if len(rec.added) != 0 {
		t.Fatalf("refused reports counted: %+v", rec.added)
	}
	if _, err := r.Create(ctx, &flagpole.UsageReport{Spec: flagpole.UsageReportSpec{Flags: []flagpole.FlagUsageReport{entry("banner")}}}, nil,
		&metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil || len(rec.added) != 0 {
		t.Fatalf("a dry run: %v, counted %+v", err, rec.added)
	}

	out, err := r.Create(ctx, &flagpole.UsageReport{Spec: flagpole.UsageReportSpec{Flags: []flagpole.FlagUsageReport{entry("new-checkout"), entry("banner", func(e *flagpole.FlagUsageReport) { e.UID = "shop-banner" })}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.added) != 2 || rec.added[0] != (added{"shop-new-checkout", "new-checkout", 5, 1}) || rec.added[1].uid != "shop-banner" {
		t.Errorf("counted %+v", rec.added)
	}
	if out.(*flagpole.UsageReport).ManagedFields != nil {
		t.Error("a report that is never stored reports managed fields")
	}
}

func asStatus(err error, status *apierrors.APIStatus) bool {
	s, ok := err.(apierrors.APIStatus)
	if ok {
		*status = s
	}
	return ok
}
