package integration

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
)

// TestLeaderElectedControllers runs two Flagpole servers on one etcd: only
// one runs the status controller, flags created on either get their status,
// and when the leader stops the other takes over within seconds.
//
// Not parallel: flagpole_leader is process-wide, the sum over every server in
// this test process, and parallel tests' servers (each leading its own
// embedded etcd) would add to it.
func TestLeaderElectedControllers(t *testing.T) {
	dir := t.TempDir()
	etcd, err := standalone.StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close) // after both servers have stopped

	// Standalone authentication (each its own data directory and PKI),
	// shared external storage.
	a := framework.StartServer(t, filepath.Join(dir, "a"), "--etcd-servers", etcd.ClientURL)
	b := framework.StartServer(t, filepath.Join(dir, "b"), "--etcd-servers", etcd.ClientURL)
	servers := []*framework.Server{a, b}

	etcdClient, err := leaderelection.NewClient(storagebackend.TransportConfig{ServerList: []string{etcd.ClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer etcdClient.Close()
	key := leaderelection.Key("/registry/flagpole.dev")

	leader := waitForLeader(t, etcdClient, key, servers, 2)
	follower := a
	if leader == a {
		follower = b
	}
	t.Logf("leader serves at %s", leader.AdminConfig.Host)
	for _, s := range servers {
		if got := leaderGauge(t, s); got != 1 {
			t.Fatalf("flagpole_leader = %v across both servers, want exactly 1", got)
		}
	}

	// A flag created through the follower names a segment that does not
	// exist yet: the write stores Ready=False. Once the segment is created
	// the leader's controller writes Ready=True, and the follower reads it.
	ctx := context.Background()
	created := createFlag(t, follower.Client, "default", boolFlag("via-follower"))
	if writtenByStatusController(created) {
		t.Errorf("the controller wrote the status of a new flag a second time: %+v", created.ManagedFields)
	}
	if _, err := follower.Client.FlagpoleV1beta1().Segments("default").Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFlag(t, follower.Client, "default", created.Name, "Ready=True written by the leader's controller", func(f *v1beta1.Flag) bool {
		return readyStatus(f) == metav1.ConditionTrue && writtenByStatusController(f)
	})
	// Still one leader.
	if got := leaderGauge(t, follower); got != 1 {
		t.Fatalf("flagpole_leader = %v, want 1", got)
	}

	// Stop the leader: it resigns on shutdown, and the follower takes over
	// without waiting for the session's TTL.
	start := time.Now()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		leader.Stop(t)
	}()
	if got := waitForLeader(t, etcdClient, key, []*framework.Server{follower}, 1); got != follower {
		t.Fatal("the survivor does not lead")
	}
	handover := time.Since(start)
	t.Logf("handover took %s from the start of the leader's shutdown", handover)
	if handover >= leaderelection.DefaultTTL {
		t.Errorf("handover took %s: the leader did not resign, its lease lapsed (TTL %s)", handover, leaderelection.DefaultTTL)
	}
	<-stopped
	if got := leaderGauge(t, follower); got != 1 {
		t.Fatalf("flagpole_leader = %v after handover, want 1", got)
	}

	// After the handover the survivor's controller keeps status current:
	// deleting the segment turns the flag's Ready to False.
	if err := follower.Client.FlagpoleV1beta1().Segments("default").Delete(ctx, "employees", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFlag(t, follower.Client, "default", created.Name, "Ready=False after the handover", func(f *v1beta1.Flag) bool {
		return readyStatus(f) == metav1.ConditionFalse
	})
}

func readyStatus(f *v1beta1.Flag) metav1.ConditionStatus {
	if c := meta.FindStatusCondition(f.Status.Conditions, flagpole.FlagConditionReady); c != nil {
		return c.Status
	}
	return ""
}

// waitForLeader waits until the election at key has want candidates and its
// leader (the oldest key) is one of servers, and returns that server. The
// candidates' identities end with the address they serve on.
func waitForLeader(t *testing.T, c *clientv3.Client, key string, servers []*framework.Server, want int) *framework.Server {
	t.Helper()
	var leader *framework.Server
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		resp, err := c.Get(ctx, key+"/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend))
		if err != nil {
			last = err.Error()
			return false, nil
		}
		var ids []string
		for _, kv := range resp.Kvs {
			ids = append(ids, string(kv.Value))
		}
		last = fmt.Sprint(ids)
		if len(ids) != want {
			return false, nil
		}
		for _, s := range servers {
			u, err := url.Parse(s.AdminConfig.Host)
			if err != nil {
				return false, err
			}
			if strings.HasSuffix(ids[0], "_"+u.Host) {
				leader = s
				// The gauge is the test process's: servers of parallel
				// tests that lead their own elections add to it, so at
				// least this one (TestLeaderElectedControllers, which runs
				// alone, checks it is exactly one).
				return leaderGauge(t, s) >= 1, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("election %s: no leader among the expected servers: %v (candidates, oldest first: %s)", key, err, last)
	}
	return leader
}

func writtenByStatusController(f *v1beta1.Flag) bool {
	for _, m := range f.ManagedFields {
		if m.Manager == "flag-status-controller" && m.Subresource == "status" {
			return true
		}
	}
	return false
}

// leaderGauge reads flagpole_leader from s's /metrics: in this test process,
// the number of servers that lead.
func leaderGauge(t *testing.T, s *framework.Server) float64 {
	t.Helper()
	for _, line := range strings.Split(scrape(t, s.AdminConfig), "\n") {
		if v, ok := strings.CutPrefix(line, "flagpole_leader "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("/metrics has no flagpole_leader")
	return 0
}
