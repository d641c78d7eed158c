package etcdrecords

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

func etcdClient(t *testing.T) *clientv3.Client {
	t.Helper()
	dir := t.TempDir()
	e, err := standalone.StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	c, err := leaderelection.NewClient(storagebackend.TransportConfig{ServerList: []string{e.ClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type replica struct {
	counter *usage.Counter
	view    *usage.View
	store   *Store
	cancel  context.CancelFunc
}

func startReplica(t *testing.T, client *clientv3.Client, name string, clock *clocktesting.FakeClock) *replica {
	t.Helper()
	counter := usage.NewCounter(clock, usage.DefaultMaxFlags)
	view := usage.NewView(counter)
	store, err := New(Config{Client: client, Prefix: Prefix("/registry/flagpole.dev"), Replica: name, Counter: counter, View: view,
		Interval: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go store.Run(ctx)
	return &replica{counter, view, store, cancel}
}

var flag = &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "f", UID: "uid-f"}}

func evaluate(r *replica, n int, now time.Time) {
	for i := 0; i < n; i++ {
		r.counter.Evaluated(flag, &v1beta1.FlagEvaluation{Variant: "on", Reason: flagpole.ReasonStatic}, now)
	}
}

func dayCount(r *replica, now time.Time) int64 {
	u := r.view.Usage(flag.UID, now)
	for _, w := range u.Windows {
		if w.Window == "24h" {
			return w.Evaluations
		}
	}
	return 0
}

func waitCount(t *testing.T, r *replica, now time.Time, want int64) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return dayCount(r, now) == want, nil
	}); err != nil {
		t.Fatalf("replica sees %d evaluations in 24h, want %d", dayCount(r, now), want)
	}
}

func keys(t *testing.T, client *clientv3.Client) []string {
	t.Helper()
	resp, err := client.Get(context.Background(), Prefix("/registry/flagpole.dev"), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, string(kv.Key))
	}
	return out
}

// Two replicas see each other's counts through etcd; a replica that stops
// is folded into the archive by the leader and its counts stay; a replica
// that comes back after it was folded does not count twice; a new process
// reads what the old ones stored.
func TestRecordsAcrossReplicas(t *testing.T) {
	client := etcdClient(t)
	clock := clocktesting.NewFakeClock(time.Now())
	ctx := context.Background()
	a := startReplica(t, client, "a", clock)
	b := startReplica(t, client, "b", clock)

	evaluate(a, 3, clock.Now())
	evaluate(b, 2, clock.Now())
	for _, r := range []*replica{a, b} {
		if err := r.store.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, a, clock.Now(), 5)
	waitCount(t, b, clock.Now(), 5)

	// b stops writing; past the fold window the leader (a) archives it.
	clock.Step(foldAfterIntervals*time.Hour + time.Minute)
	exists := func(_, _ string, uid types.UID) bool { return uid == flag.UID }
	if err := a.store.Fold(ctx, exists); err != nil {
		t.Fatal(err)
	}
	got := keys(t, client)
	if len(got) != 2 || got[0] != Prefix("/registry/flagpole.dev")+"archive" || got[1] != Prefix("/registry/flagpole.dev")+"replicas/a" {
		t.Fatalf("keys after the fold: %v", got)
	}
	waitCount(t, a, clock.Now(), 5)

	// b comes back: its stored record is gone, it writes only new counts.
	evaluate(b, 1, clock.Now())
	if err := b.store.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitCount(t, a, clock.Now(), 6)

	// Every process restarts under new names: the counts survive.
	a.cancel()
	b.cancel()
	a.store.Close()
	b.store.Close()
	c := startReplica(t, client, "c", clock)
	waitCount(t, c, clock.Now(), 6)

	// A deleted flag leaves the archive at the next fold.
	clock.Step(foldAfterIntervals*time.Hour + time.Minute)
	if err := c.store.Fold(ctx, func(string, string, types.UID) bool { return false }); err != nil {
		t.Fatal(err)
	}
	waitCount(t, c, clock.Now(), 0)
	if got := keys(t, client); len(got) != 1 {
		t.Errorf("keys after folding every stopped replica: %v", got)
	}
}

// Writes are one per flush, however many evaluations and flags.
func TestOneWritePerFlush(t *testing.T) {
	client := etcdClient(t)
	clock := clocktesting.NewFakeClock(time.Now())
	ctx := context.Background()
	r := startReplica(t, client, "a", clock)
	revision := func() int64 {
		resp, err := client.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Revision
	}
	before := revision()
	for round := 0; round < 3; round++ {
		for i := 0; i < 200; i++ {
			f := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "f", UID: types.UID(string(rune('a'+round)) + string(rune(i)))}}
			for j := 0; j < 10; j++ {
				r.counter.Evaluated(f, &v1beta1.FlagEvaluation{Variant: "on", Reason: flagpole.ReasonStatic}, clock.Now())
			}
		}
		if err := r.store.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if writes := revision() - before; writes != 3 {
		t.Errorf("%d etcd writes for 3 flushes of 200 to 600 flags and 6000 evaluations", writes)
	}
}
