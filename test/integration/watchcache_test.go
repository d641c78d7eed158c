package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// FlagRevisions have no watch cache (their store has no cacher,
// pkg/registry/flagpole/flagrevision): the server holds none of them in
// memory, and they are listed and watched from etcd, while flags, segments
// and overrides keep their caches.
func TestFlagRevisionsAreServedFromEtcd(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const ns = "revisions-etcd"
	createFlag(t, s.Client, ns, boolFlag("one"))
	revisions := s.Client.FlagpoleV1beta1().FlagRevisions(ns)
	// Written by the history controller a moment after the create.
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := revisions.List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 1, err
	})
	if err != nil {
		t.Fatalf("the flag's first revision: %v", err)
	}
	w, err := revisions.Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch revisions: %v", err)
	}
	w.Stop()

	// The metrics are the process's: every server this test binary runs
	// adds to them, and none may have a cache of revisions.
	const series = `apiserver_watch_cache_initialization_duration_seconds_count{group="flagpole.dev",resource="%s"}`
	for _, resource := range []string{"flags", "segments", "flagoverrides"} {
		if got := metricValue(t, s, fmt.Sprintf(series, resource)); got < 1 {
			t.Errorf("watch caches initialised for %s: %v, want at least this server's", resource, got)
		}
	}
	if got := metricValue(t, s, fmt.Sprintf(series, "flagrevisions")); got != 0 {
		t.Errorf("watch caches initialised for flagrevisions: %v, want none", got)
	}
}
