package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func TestCRUD(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("crud")

	created, err := flags.Create(ctx, boolFlag("new-checkout"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.Spec.State != v1beta1.FlagStateEnabled {
		t.Errorf("state not defaulted: %q", created.Spec.State)
	}
	if created.Generation != 1 || created.UID == "" || created.ResourceVersion == "" {
		t.Errorf("metadata not set: %+v", created.ObjectMeta)
	}
	if _, err := flags.Create(ctx, boolFlag("new-checkout"), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want 409 AlreadyExists", err)
	}

	got := waitForStatus(t, s.Client, "crud", "new-checkout")
	if string(got.Spec.Variants[0].Value.Raw) != "true" || got.Spec.Rules[1].Rollout.Distribution[1].Weight != 90 {
		t.Errorf("stored spec differs: %+v", got.Spec)
	}

	got.Spec.State = v1beta1.FlagStateDisabled
	updated, err := flags.Update(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Generation != 2 {
		t.Errorf("generation after spec change = %d", updated.Generation)
	}

	segments := s.Client.FlagpoleV1beta1().Segments("crud")
	seg := &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"}, Spec: v1beta1.SegmentSpec{When: "true", Include: []string{"a"}}}
	if _, err := segments.Create(ctx, seg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := segments.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("segments: %v, %v", list, err)
	}

	if err := flags.Delete(ctx, "new-checkout", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := flags.Get(ctx, "new-checkout", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get after delete: %v, want 404", err)
	}
	if err := flags.Delete(ctx, "new-checkout", metav1.DeleteOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("second delete: %v, want 404", err)
	}
}

func TestStaleUpdateConflicts(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("conflict")
	created := createFlag(t, s.Client, "conflict", boolFlag("f"))
	first := created.DeepCopy()
	first.Spec.Description = "first writer"
	if _, err := flags.Update(ctx, first, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	stale := created.DeepCopy()
	stale.Spec.Description = "second writer, stale"
	_, err := flags.Update(ctx, stale, metav1.UpdateOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("update with stale resourceVersion: %v, want 409 Conflict", err)
	}
	got, _ := flags.Get(ctx, "f", metav1.GetOptions{})
	if got.Spec.Description != "first writer" {
		t.Errorf("stale write was not rejected whole: %q", got.Spec.Description)
	}
}

func TestWatchFromResourceVersion(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flags := s.Client.FlagpoleV1beta1().Flags("watch")

	list, err := flags.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := createFlag(t, s.Client, "watch", boolFlag("f"))
	f.Spec.State = v1beta1.FlagStateDisabled
	if _, err := flags.Update(ctx, f, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := flags.Delete(ctx, "f", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// Watching from the list's resourceVersion replays what happened since, in
	// order: ADDED, MODIFIED (ours, and the status controller's if it wrote), DELETED.
	w, err := flags.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var seen []string
	sawDisabled := false
	for done := false; !done; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch closed after %v", seen)
			}
			got := ev.Object.(*v1beta1.Flag)
			seen = append(seen, fmt.Sprintf("%s/%s", ev.Type, got.Spec.State))
			switch {
			case len(seen) == 1:
				if ev.Type != watch.Added || got.Spec.State != v1beta1.FlagStateEnabled {
					t.Fatalf("first event %v, want ADDED/Enabled", seen)
				}
			case ev.Type == watch.Modified:
				if sawDisabled && got.Spec.State != v1beta1.FlagStateDisabled {
					t.Fatalf("events out of order: %v", seen)
				}
				sawDisabled = sawDisabled || got.Spec.State == v1beta1.FlagStateDisabled
			case ev.Type == watch.Deleted:
				done = true
			default:
				t.Fatalf("unexpected event in %v", seen)
			}
		case <-ctx.Done():
			t.Fatalf("timed out; events so far %v", seen)
		}
	}
	if !sawDisabled {
		t.Errorf("no MODIFIED event with the update: %v", seen)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("dryrun")
	out, err := flags.Create(ctx, boolFlag("f"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != "f" || out.Spec.State != v1beta1.FlagStateEnabled {
		t.Errorf("dry-run answer is not the would-be object: %+v", out)
	}
	if _, err := flags.Get(ctx, "f", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("dry-run create was stored: %v", err)
	}

	// A dry-run update or delete of a real object leaves it as it was.
	real := createFlag(t, s.Client, "dryrun", boolFlag("g"))
	changed := real.DeepCopy()
	changed.Spec.State = v1beta1.FlagStateDisabled
	if _, err := flags.Update(ctx, changed, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if err := flags.Delete(ctx, "g", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	after, err := flags.Get(ctx, "g", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != real.ResourceVersion || after.Spec.State != v1beta1.FlagStateEnabled {
		t.Errorf("dry-run update/delete changed the object: rv %s→%s state %s", real.ResourceVersion, after.ResourceVersion, after.Spec.State)
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()

	first := startServerIn(t, dir)
	created := createFlag(t, first.Client, "restart", boolFlag("kept"))
	first.Stop(t)

	second := startServerIn(t, dir)
	got, err := second.Client.FlagpoleV1beta1().Flags("restart").Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion {
		t.Errorf("flag changed across restart: %s/%s vs %s/%s", got.UID, got.ResourceVersion, created.UID, created.ResourceVersion)
	}
}
