package leaderelection

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/component-base/metrics/testutil"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

func startEtcd(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	e, err := standalone.StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e.ClientURL
}

func newClient(t *testing.T, url string) *clientv3.Client {
	t.Helper()
	c, err := NewClient(storagebackend.TransportConfig{ServerList: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// candidate is one replica: an elector whose controllers record when they run.
type candidate struct {
	name    string
	elector *Elector
	cancel  context.CancelFunc
	running atomic.Bool
	terms   atomic.Int32
}

// world tracks every candidate, and fails the test if two ever run their
// controllers at once.
type world struct {
	t       *testing.T
	mu      sync.Mutex
	running int
	overlap atomic.Bool
	// allowOverlap: an election taken away from outside (a revoked lease)
	// leaves the old leader running until it notices, a few milliseconds.
	allowOverlap bool
}

func (w *world) candidate(client *clientv3.Client, name string, ttl time.Duration, lead func(context.Context) error) *candidate {
	w.t.Helper()
	c := &candidate{name: name}
	e, err := New(Config{
		Client:      client,
		Key:         Key("/registry/flagpole.dev") + "-" + w.t.Name(),
		Identity:    name,
		TTL:         ttl,
		RetryPeriod: 100 * time.Millisecond,
		Lead: func(ctx context.Context) error {
			w.mu.Lock()
			w.running++
			if w.running > 1 {
				w.overlap.Store(true)
			}
			w.mu.Unlock()
			c.running.Store(true)
			c.terms.Add(1)
			defer func() {
				c.running.Store(false)
				w.mu.Lock()
				w.running--
				w.mu.Unlock()
			}()
			if lead != nil {
				return lead(ctx)
			}
			<-ctx.Done()
			return nil
		},
	})
	if err != nil {
		w.t.Fatal(err)
	}
	c.elector = e
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go e.Run(ctx)
	w.t.Cleanup(func() {
		cancel()
		<-e.Done()
		if w.overlap.Load() && !w.allowOverlap {
			w.t.Error("two candidates ran their controllers at the same time")
		}
	})
	return c
}

// waitLeader waits until exactly one of cs leads and runs its controllers,
// and returns it.
func waitLeader(t *testing.T, timeout time.Duration, cs ...*candidate) *candidate {
	t.Helper()
	var leader *candidate
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		var leaders []*candidate
		for _, c := range cs {
			if c.elector.IsLeader() && c.running.Load() {
				leaders = append(leaders, c)
			}
		}
		if len(leaders) > 1 {
			return false, fmt.Errorf("%d leaders at once", len(leaders))
		}
		if len(leaders) == 1 {
			leader = leaders[0]
			return true, nil
		}
		return false, nil
	})
	if wait.Interrupted(err) {
		t.Fatalf("no leader within %s", timeout)
	}
	if err != nil {
		t.Fatal(err)
	}
	return leader
}

func gauge(t *testing.T) float64 {
	t.Helper()
	v, err := testutil.GetGaugeMetricValue(leader)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func other(leader, a, b *candidate) *candidate {
	if leader == a {
		return b
	}
	return a
}

func TestExactlyOneLeaderAndResignHandsOverAtOnce(t *testing.T) {
	url := startEtcd(t)
	w := &world{t: t}
	a := w.candidate(newClient(t, url), "a", 5*time.Second, nil)
	b := w.candidate(newClient(t, url), "b", 5*time.Second, nil)

	first := waitLeader(t, 10*time.Second, a, b)
	// The other stays a follower.
	time.Sleep(time.Second)
	if second := waitLeader(t, time.Second, a, b); second != first {
		t.Fatalf("leadership moved from %s to %s without cause", first.name, second.name)
	}
	if g := gauge(t); g != 1 {
		t.Errorf("flagpole_leader = %v, want 1", g)
	}

	// Shutting the leader down resigns: the follower takes over at once,
	// not after the 5s TTL.
	start := time.Now()
	first.cancel()
	<-first.elector.Done()
	if first.running.Load() || first.elector.IsLeader() {
		t.Fatal("the stopped leader still runs its controllers")
	}
	next := waitLeader(t, 2*time.Second, a, b)
	if next == first {
		t.Fatal("the stopped candidate leads")
	}
	t.Logf("handover after resignation took %s", time.Since(start))
	if g := gauge(t); g != 1 {
		t.Errorf("flagpole_leader = %v, want 1", g)
	}
	next.cancel()
	<-next.elector.Done()
	if g := gauge(t); g != 0 {
		t.Errorf("flagpole_leader = %v after both stopped, want 0", g)
	}
}

func TestCrashedLeaderHandsOverWithinTTL(t *testing.T) {
	url := startEtcd(t)
	w := &world{t: t}
	const ttl = 2 * time.Second
	clientA, clientB := newClient(t, url), newClient(t, url)
	a := w.candidate(clientA, "a", ttl, nil)
	b := w.candidate(clientB, "b", ttl, nil)
	first := waitLeader(t, 10*time.Second, a, b)
	second := other(first, a, b)

	// A crash: the leader's connection to etcd goes and nothing resigns;
	// its lease lapses TTL later.
	start := time.Now()
	if first == a {
		clientA.Close()
	} else {
		clientB.Close()
	}
	if got := waitLeader(t, ttl+5*time.Second, a, b); got != second {
		t.Fatalf("leader after the crash is %s, want %s", got.name, second.name)
	}
	t.Logf("handover after the leader's crash took %s (TTL %s)", time.Since(start), ttl)
	if first.running.Load() {
		t.Error("the cut-off leader still runs its controllers")
	}
}

func TestLostSessionEndsTheTerm(t *testing.T) {
	url := startEtcd(t)
	w := &world{t: t, allowOverlap: true}
	admin := newClient(t, url)
	a := w.candidate(newClient(t, url), "a", 5*time.Second, nil)
	b := w.candidate(newClient(t, url), "b", 5*time.Second, nil)
	first := waitLeader(t, 10*time.Second, a, b)

	// Revoking the leader's lease (an operator, or etcd expiring it while
	// the leader was paused) deletes its key: it must stop at once, and the
	// follower take over.
	leases, err := admin.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := admin.Get(context.Background(), Key("/registry/flagpole.dev")+"-"+t.Name()+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 2 || len(leases.Leases) < 2 {
		t.Fatalf("%d election keys and %d leases, want 2 each", len(resp.Kvs), len(leases.Leases))
	}
	if string(resp.Kvs[0].Value) != first.name {
		t.Fatalf("oldest election key is %q, leader is %q", resp.Kvs[0].Value, first.name)
	}
	termsBefore := first.terms.Load()
	start := time.Now()
	if _, err := admin.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 3*time.Second, true, func(context.Context) (bool, error) {
		got := waitLeader(t, 3*time.Second, a, b)
		if got != first || got.terms.Load() > termsBefore {
			t.Logf("%s leads %s after the revocation", got.name, time.Since(start))
			return true, nil
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%s kept leading after its lease was revoked", first.name)
	}
}

func TestControllersStoppingEndTheTerm(t *testing.T) {
	url := startEtcd(t)
	w := &world{t: t}
	var failures atomic.Int32
	failOnce := func(ctx context.Context) error {
		if failures.Add(1) == 1 {
			return errors.New("informer gone")
		}
		<-ctx.Done()
		return nil
	}
	a := w.candidate(newClient(t, url), "a", 5*time.Second, failOnce)
	b := w.candidate(newClient(t, url), "b", 5*time.Second, failOnce)
	// The first leader's controllers fail: it resigns, and a leader whose
	// controllers run emerges promptly.
	waitLeader(t, 5*time.Second, a, b)
	if failures.Load() < 2 {
		t.Fatalf("Lead called %d times, want a second term after the failure", failures.Load())
	}
}

func TestKeyOutsideStoragePrefix(t *testing.T) {
	for _, prefix := range []string{"/registry/flagpole.dev", "/registry", "/", "", "custom", "/a/b/"} {
		k := Key(prefix)
		if !strings.HasPrefix(k, keyRoot+"/") {
			t.Errorf("Key(%q) = %q, not under %s", prefix, k, keyRoot)
		}
		if p := strings.TrimSuffix("/"+strings.Trim(prefix, "/"), "/"); p != "" && strings.HasPrefix(k, p+"/") {
			t.Errorf("Key(%q) = %q is inside the storage prefix", prefix, k)
		}
	}
	if Key("/one") == Key("/two") {
		t.Error("different storage prefixes share an election")
	}
}
