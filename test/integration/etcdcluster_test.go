package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/registry/flagpole/guard"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
	"github.com/flagpole-dev/flagpole/test/process"
	"github.com/flagpole-dev/flagpole/test/tools"
)

// etcdCluster is a cluster of real etcd members, each a child process on
// loopback ports with its data in the test's temporary directory.
type etcdCluster struct {
	t       *testing.T
	bin     string
	members []*etcdMember
}

type etcdMember struct {
	name, clientURL, peerURL, dataDir, log string
	proc                                   *process.Process
}

// pinnedEtcd is the etcd that hack/build-tools.sh builds (hack/test.sh runs
// it first, and then a missing one fails the test).
func pinnedEtcd(t *testing.T) string {
	t.Helper()
	return tools.Bin(t, "etcd")
}

// startEtcdCluster starts n members and waits until each is healthy (the
// cluster has a leader and serves reads).
func startEtcdCluster(t *testing.T, n int) *etcdCluster {
	t.Helper()
	c := &etcdCluster{t: t, bin: pinnedEtcd(t)}
	dir := t.TempDir()
	var initial []string
	for i := range n {
		m := &etcdMember{
			name:      "m" + strconv.Itoa(i),
			clientURL: "http://127.0.0.1:" + strconv.Itoa(freePort(t)),
			peerURL:   "http://127.0.0.1:" + strconv.Itoa(freePort(t)),
		}
		m.dataDir = filepath.Join(dir, m.name)
		m.log = filepath.Join(dir, m.name+".log")
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	for i := range c.members {
		c.start(i, "new", strings.Join(initial, ","))
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m.proc != nil {
				_ = m.proc.Stop(10 * time.Second)
			}
		}
	})
	for i := range c.members {
		c.waitHealthy(i, 60*time.Second)
	}
	return c
}

func (c *etcdCluster) start(i int, state, initialCluster string) {
	c.t.Helper()
	m := c.members[i]
	p, err := process.Start("etcd "+m.name, m.log, c.bin,
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", initialCluster,
		"--initial-cluster-state", state,
		"--initial-cluster-token", "flagpole-test",
		"--log-level", "warn",
	)
	if err != nil {
		c.t.Fatal(err)
	}
	m.proc = p
}

// restart starts a killed member again on its data directory, as a process
// supervisor would.
func (c *etcdCluster) restart(i int) {
	c.t.Helper()
	var initial []string
	for _, m := range c.members {
		initial = append(initial, m.name+"="+m.peerURL)
	}
	c.start(i, "existing", strings.Join(initial, ","))
}

// kill kills member i with SIGKILL: no shutdown, no goodbye to its peers.
func (c *etcdCluster) kill(i int) {
	c.t.Helper()
	if err := c.members[i].proc.Kill(); err != nil {
		c.t.Fatalf("%s had exited before it was killed: %v\n%s", c.members[i].name, err, c.members[i].proc.Tail(4000))
	}
}

func (c *etcdCluster) clientURLs() string {
	var urls []string
	for _, m := range c.members {
		urls = append(urls, m.clientURL)
	}
	return strings.Join(urls, ",")
}

// waitHealthy waits until member i answers /health with health true, which
// it does only while the cluster has a leader.
func (c *etcdCluster) waitHealthy(i int, timeout time.Duration) {
	c.t.Helper()
	m := c.members[i]
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if m.proc.Exited() {
			return false, fmt.Errorf("%s exited: %v", m.name, m.proc.Err())
		}
		var health struct {
			Health string `json:"health"`
		}
		code, body, err := getJSON(ctx, http.DefaultClient, m.clientURL+"/health", &health)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = fmt.Sprintf("%d %s", code, body)
		return code == http.StatusOK && health.Health == "true", nil
	})
	if err != nil {
		c.t.Fatalf("%s not healthy: %v (last %s)\n%s", m.name, err, last, m.proc.Tail(4000))
	}
}

// leader is the index of the member that leads.
func (c *etcdCluster) leader() int {
	c.t.Helper()
	for i, m := range c.members {
		if m.proc == nil || m.proc.Exited() {
			continue
		}
		var status struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		req, _ := http.NewRequest(http.MethodPost, m.clientURL+"/v3/maintenance/status", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&status)
		resp.Body.Close()
		if err == nil && status.Leader != "" && status.Leader == status.Header.MemberID {
			return i
		}
	}
	c.t.Fatal("no etcd member says it leads")
	return -1
}

func getJSON(ctx context.Context, client *http.Client, url string, into any) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if into != nil {
		_ = json.Unmarshal(body, into)
	}
	return resp.StatusCode, string(body), nil
}

// rawClient is an HTTP client with the admin's credentials, for requests
// whose status code and headers the test reads itself.
func rawClient(t *testing.T, s *framework.Server) *http.Client {
	t.Helper()
	c, err := rest.HTTPClientFor(s.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type rawResponse struct {
	code    int
	header  http.Header
	body    string
	elapsed time.Duration
	err     error
}

func (r rawResponse) String() string {
	if r.err != nil {
		return fmt.Sprintf("error after %s: %v", r.elapsed.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("%d after %s (Retry-After %q): %s", r.code, r.elapsed.Round(time.Millisecond), r.header.Get("Retry-After"), strings.TrimSpace(r.body))
}

func rawDo(client *http.Client, method, url, body string, timeout time.Duration) rawResponse {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return rawResponse{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	if method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return rawResponse{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{code: resp.StatusCode, header: resp.Header, body: string(b), elapsed: time.Since(start)}
}

func clusterFlagJSON(name string) string {
	b, err := json.Marshal(boolFlag(name))
	if err != nil {
		panic(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	m["apiVersion"], m["kind"] = "flagpole.dev/v1beta1", "Flag"
	b, _ = json.Marshal(m)
	return string(b)
}

// waitReadyz polls /readyz until want(code) holds and returns how long that
// took.
func waitReadyz(t *testing.T, hc *http.Client, s *framework.Server, timeout time.Duration, what string, want func(int) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last rawResponse
	if err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		last = rawDo(hc, http.MethodGet, s.AdminConfig.Host+"/readyz?verbose", "", 5*time.Second)
		return last.err == nil && want(last.code), nil
	}); err != nil {
		t.Fatalf("/readyz not %s within %s: %v", what, timeout, last)
	}
	return time.Since(start)
}

// TestThreeMemberEtcdMemberLoss writes flags continuously while the etcd
// leader is killed: writes go on after a short burst of 503s (the election),
// no acknowledged write is lost, and /readyz answers 200 once a new leader
// serves. Not parallel: three etcd members and a server on a shared machine,
// and the election timeouts are what is measured.
func TestThreeMemberEtcdMemberLoss(t *testing.T) {
	cluster := startEtcdCluster(t, 3)
	s := framework.StartServer(t, t.TempDir(), "--etcd-servers", cluster.clientURLs())
	hc := rawClient(t, s)
	flags := s.Client.FlagpoleV1beta1().Flags("memberloss")

	const (
		maxCreates  = 200
		killAfter   = 60
		maxDuration = 25 * time.Second
		// An election takes about a second with etcd's defaults; writes
		// started later than this after the kill must all succeed.
		settle = 5 * time.Second
	)
	type failure struct {
		at, answered time.Time // sent, answered
		err          error
	}
	var (
		mu       sync.Mutex
		acked    []string
		failures []failure
		killedAt time.Time
	)
	killNow := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		deadline := time.Now().Add(maxDuration)
		for i := 0; time.Now().Before(deadline); i++ {
			name := fmt.Sprintf("w-%04d", i)
			started := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_, err := flags.Create(ctx, boolFlag(name), metav1.CreateOptions{})
			cancel()
			mu.Lock()
			if err == nil {
				acked = append(acked, name)
				if len(acked) == killAfter {
					close(killNow)
				}
			} else {
				failures = append(failures, failure{started, time.Now(), err})
			}
			n := len(acked)
			mu.Unlock()
			if n >= maxCreates {
				return
			}
		}
	}()

	select {
	case <-killNow:
	case <-writerDone:
		t.Fatalf("the writer stopped before %d creates succeeded: %d failures", killAfter, len(failures))
	}
	leader := cluster.leader()
	mu.Lock()
	killedAt = time.Now()
	mu.Unlock()
	cluster.kill(leader)
	t.Logf("killed the leader, %s, after %d acknowledged creates", cluster.members[leader].name, killAfter)
	<-writerDone

	mu.Lock()
	defer mu.Unlock()
	afterKill := 0
	for _, f := range failures {
		t.Logf("create failed %s after the kill: %v", f.at.Sub(killedAt).Round(time.Millisecond), f.err)
	}
	t.Logf("%d creates acknowledged, %d failed", len(acked), len(failures))
	if len(failures) > 20 {
		t.Errorf("%d creates failed, want at most 20 (a burst during the election)", len(failures))
	}
	for _, f := range failures {
		// A create sent just before the kill may fail through it; one
		// answered before it failed for another reason.
		if f.answered.Before(killedAt) {
			t.Errorf("a create failed before any member was killed: %v", f.err)
		} else if f.at.Sub(killedAt) > settle {
			t.Errorf("a create started %s after the kill failed: %v", f.at.Sub(killedAt).Round(time.Millisecond), f.err)
		}
		if !apierrors.IsServiceUnavailable(f.err) {
			t.Errorf("a create failed with %v, want a 503 (retry later)", f.err)
		}
	}
	afterKill = len(acked) - killAfter
	if afterKill < 50 {
		t.Errorf("only %d creates succeeded after the kill, want the service to go on (at least 50)", afterKill)
	}

	// Every acknowledged create is there, read from etcd (resourceVersion
	// unset: a quorum read).
	var list *v1beta1.FlagList
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 15*time.Second, true, func(ctx context.Context) (bool, error) {
		l, err := flags.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Logf("list: %v", err)
			return false, nil
		}
		list = l
		return true, nil
	})
	if err != nil {
		t.Fatalf("list after the member loss: %v", err)
	}
	stored := map[string]bool{}
	for _, f := range list.Items {
		stored[f.Name] = true
	}
	lost := 0
	for _, name := range acked {
		if !stored[name] {
			lost++
			t.Errorf("acknowledged flag %s is missing", name)
		}
	}
	t.Logf("listed %d flags: %d acknowledged, %d lost; %d beyond the acknowledged (creates answered with an error that were applied)", len(list.Items), len(acked), lost, len(list.Items)-len(acked)+lost)

	// Two of three members are quorum: the server stays ready.
	waitReadyz(t, hc, s, 10*time.Second, "200", func(code int) bool { return code == http.StatusOK })
	for range 8 {
		if r := rawDo(hc, http.MethodGet, s.AdminConfig.Host+"/readyz", "", 5*time.Second); r.code != http.StatusOK {
			t.Errorf("/readyz with two of three members: %v", r)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestEtcdQuorumLoss kills two of three etcd members: /readyz turns 500, a
// write is answered at once with 503 and Retry-After (upstream hangs for the
// create's 34s deadline and answers 504), a read within guard.ReadTimeout
// with 503 (upstream: 60s, then 504); when the members come back on their
// data, the server is ready again and writes succeed.
func TestEtcdQuorumLoss(t *testing.T) {
	cluster := startEtcdCluster(t, 3)
	s := framework.StartServer(t, t.TempDir(), "--etcd-servers", cluster.clientURLs())
	hc := rawClient(t, s)
	flagsURL := s.AdminConfig.Host + "/apis/flagpole.dev/v1beta1/namespaces/quorum/flags"
	if r := rawDo(hc, http.MethodPost, flagsURL, clusterFlagJSON("before"), 15*time.Second); r.code != http.StatusCreated {
		t.Fatalf("create before the quorum loss: %v", r)
	}

	leader := cluster.leader()
	killed := []int{leader, (leader + 1) % len(cluster.members)}
	for _, i := range killed {
		cluster.kill(i)
	}
	t.Logf("killed m%d and m%d (m%d led)", killed[0], killed[1], leader)

	took := waitReadyz(t, hc, s, 15*time.Second, "failing", func(code int) bool { return code != http.StatusOK })
	t.Logf("/readyz failed %s after the quorum loss", took.Round(time.Millisecond))

	checkUnavailable := func(what string, r rawResponse, within time.Duration) {
		t.Helper()
		if r.err != nil || r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != strconv.Itoa(guard.UnavailableRetryAfterSeconds) {
			t.Errorf("%s without quorum: %v; want 503 with Retry-After %d", what, r, guard.UnavailableRetryAfterSeconds)
			return
		}
		var status metav1.Status
		if err := json.Unmarshal([]byte(r.body), &status); err != nil || status.Reason != metav1.StatusReasonServiceUnavailable || status.Details == nil || status.Details.RetryAfterSeconds != guard.UnavailableRetryAfterSeconds {
			t.Errorf("%s without quorum: body %s (%v)", what, r.body, err)
		}
		if r.elapsed > within {
			t.Errorf("%s without quorum took %s, want at most %s", what, r.elapsed.Round(time.Millisecond), within)
		}
		t.Logf("%s without quorum: %v", what, r)
	}
	checkUnavailable("create", rawDo(hc, http.MethodPost, flagsURL, clusterFlagJSON("during"), 40*time.Second), 5*time.Second)
	checkUnavailable("patch", rawDo(hc, http.MethodPatch, flagsURL+"/before", `{"spec":{"state":"Disabled"}}`, 40*time.Second), guard.ReadTimeout+5*time.Second)
	checkUnavailable("get", rawDo(hc, http.MethodGet, flagsURL+"/before", "", 70*time.Second), guard.ReadTimeout+5*time.Second)

	for _, i := range killed {
		cluster.restart(i)
	}
	for _, i := range killed {
		cluster.waitHealthy(i, 30*time.Second)
	}
	took = waitReadyz(t, hc, s, 30*time.Second, "200", func(code int) bool { return code == http.StatusOK })
	t.Logf("/readyz passed %s after the members were restarted", took.Round(time.Millisecond))

	var last rawResponse
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 20*time.Second, true, func(ctx context.Context) (bool, error) {
		last = rawDo(hc, http.MethodPost, flagsURL, clusterFlagJSON("after"), 15*time.Second)
		return last.code == http.StatusCreated, nil
	})
	if err != nil {
		t.Fatalf("create after quorum returned: %v", last)
	}
	for _, name := range []string{"before", "after"} {
		if r := rawDo(hc, http.MethodGet, flagsURL+"/"+name, "", 15*time.Second); r.code != http.StatusOK {
			t.Errorf("get %s after quorum returned: %v", name, r)
		}
	}
}
