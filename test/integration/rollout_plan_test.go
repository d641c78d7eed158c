package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
	"github.com/flagpole-dev/flagpole/test/process"
	"github.com/flagpole-dev/flagpole/test/tools"
)

func seconds(n int) *metav1.Duration {
	return &metav1.Duration{Duration: time.Duration(n) * time.Second}
}

// plannedFlag rolls "on" out over a rule that serves "off" to everyone.
func plannedFlag(name string, steps ...v1beta1.RolloutStep) *v1beta1.Flag {
	f := boolFlag(name)
	f.Spec.Rules = []v1beta1.Rule{{Name: "gradual", Rollout: &v1beta1.Rollout{
		Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 0}, {Variant: "off", Weight: 100}},
		Plan:         &v1beta1.RolloutPlan{Variant: "on", Steps: steps},
	}}}
	return f
}

func planStatus(f *v1beta1.Flag) v1beta1.RolloutStatus {
	for _, s := range f.Status.Rollouts {
		if s.Rule == "gradual" {
			return s
		}
	}
	return v1beta1.RolloutStatus{}
}

// waitPlan waits until the plan's status satisfies done and evaluation
// answers from that status.
func waitPlan(t *testing.T, client clientset.Interface, ns, name, what string, timeout time.Duration, done func(v1beta1.RolloutStatus) bool) *v1beta1.Flag {
	t.Helper()
	var last *v1beta1.Flag
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		f, err := client.FlagpoleV1beta1().Flags(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = f
		return done(planStatus(f)), nil
	})
	if err != nil {
		t.Fatalf("%s/%s: %s: %v (last %+v)", ns, name, what, err, planStatus(last))
	}
	waitEvaluable(t, client, last)
	return last
}

const planKeys = 400

// onKeys evaluates the flag for planKeys targeting keys and returns those
// that got "on".
func onKeys(t *testing.T, client clientset.Interface, ns, name string) map[string]bool {
	t.Helper()
	on := map[string]bool{}
	for i := range planKeys {
		key := fmt.Sprintf("user-%d", i)
		res, err := client.FlagpoleV1beta1().Flags(ns).Evaluate(context.Background(), name,
			&v1beta1.EvaluationRequest{Context: raw(map[string]any{"targetingKey": key})}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Variant == "on" {
			on[key] = true
		}
	}
	return on
}

func expectShare(t *testing.T, on map[string]bool, percent int) {
	t.Helper()
	got := 100 * len(on) / planKeys
	// 400 keys: a standard deviation of 2.5 points at 50%.
	if got < percent-10 || got > percent+10 {
		t.Errorf("%d%% of keys on, want about %d%%", got, percent)
	}
}

func act(t *testing.T, client clientset.Interface, ns, name string, a v1beta1.RolloutAction) (*v1beta1.Flag, error) {
	t.Helper()
	return client.FlagpoleV1beta1().Flags(ns).Rollout(context.Background(), name, &a, metav1.CreateOptions{})
}

// A plan through its steps: started on create, the first step ended on
// time, a step waiting for approval, pause and resume, approval, abort —
// and the split evaluation answers moving with it, sticky.
func TestRolloutPlan(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const ns = "default"
	c := s.Client
	created := time.Now()
	if _, err := c.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("checkout",
		v1beta1.RolloutStep{Weight: 10, Duration: seconds(5)},
		v1beta1.RolloutStep{Weight: 50, Approval: true},
		v1beta1.RolloutStep{Weight: 100},
	), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := waitPlan(t, c, ns, "checkout", "the plan started", 10*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Phase == v1beta1.RolloutPhaseProgressing && s.Weight == 10
	})
	at10 := onKeys(t, c, ns, "checkout")
	expectShare(t, at10, 10)

	f = waitPlan(t, c, ns, "checkout", "the second step, waiting for approval", 20*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Phase == v1beta1.RolloutPhaseWaiting && s.Step == 1 && s.Weight == 50
	})
	st := planStatus(f)
	if took := st.Steps[1].StartedAt.Sub(st.Steps[0].StartedAt.Time); took < 4*time.Second || took > 8*time.Second {
		t.Errorf("the 5s step took %s", took)
	}
	t.Logf("step 2 began %s after the create", st.Steps[1].StartedAt.Sub(created).Round(100*time.Millisecond))
	at50 := onKeys(t, c, ns, "checkout")
	expectShare(t, at50, 50)
	for k := range at10 {
		if !at50[k] {
			t.Errorf("%s had on at 10%% and lost it at 50%%", k)
		}
	}
	// Waiting: time does not move it.
	time.Sleep(2 * time.Second)
	if got, _ := c.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "checkout", metav1.GetOptions{}); planStatus(got).Step != 1 {
		t.Fatalf("a step waiting for approval moved: %+v", planStatus(got))
	}

	// Actions: what the phase does not allow is a 409 that says why.
	_, err := act(t, c, ns, "checkout", v1beta1.RolloutAction{Action: v1beta1.RolloutActionResume})
	if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "cannot Resume: the plan is Waiting (step 2 of 3)") {
		t.Errorf("resume of a waiting plan: %v", err)
	}
	paused, err := act(t, c, ns, "checkout", v1beta1.RolloutAction{Action: v1beta1.RolloutActionPause, Message: "looking at the dashboards"})
	if err != nil || planStatus(paused).Phase != v1beta1.RolloutPhasePaused || !strings.Contains(planStatus(paused).Message, "paused by flagpole-admin: looking at the dashboards") {
		t.Fatalf("pause: %v %+v", err, planStatus(paused))
	}
	if _, err := act(t, c, ns, "checkout", v1beta1.RolloutAction{Action: v1beta1.RolloutActionResume}); err != nil {
		t.Fatal(err)
	}
	approved, err := act(t, c, ns, "checkout", v1beta1.RolloutAction{Rule: "gradual", Action: v1beta1.RolloutActionApprove})
	if err != nil || planStatus(approved).Phase != v1beta1.RolloutPhaseCompleted || planStatus(approved).Weight != 100 {
		t.Fatalf("approve: %v %+v", err, planStatus(approved))
	}
	waitEvaluable(t, c, approved)
	if on := onKeys(t, c, ns, "checkout"); len(on) != planKeys {
		t.Errorf("completed at 100%%: %d of %d keys on", len(on), planKeys)
	}

	// Abort: everyone back on the distribution (off) at once.
	aborted, err := act(t, c, ns, "checkout", v1beta1.RolloutAction{Action: v1beta1.RolloutActionAbort, Message: "errors up"})
	if err != nil || planStatus(aborted).Phase != v1beta1.RolloutPhaseAborted || planStatus(aborted).Weight != 0 {
		t.Fatalf("abort: %v %+v", err, planStatus(aborted))
	}
	waitEvaluable(t, c, aborted)
	if on := onKeys(t, c, ns, "checkout"); len(on) != 0 {
		t.Errorf("aborted: %d keys still on", len(on))
	}
	_, err = act(t, c, ns, "checkout", v1beta1.RolloutAction{Action: v1beta1.RolloutActionAbort})
	if !apierrors.IsConflict(err) {
		t.Errorf("a second abort: %v", err)
	}

	// Bad requests: field paths, 422 and 404.
	for _, tc := range []struct {
		name   string
		flag   string
		action v1beta1.RolloutAction
		check  func(error) bool
		want   string
	}{
		{"unknown action", "checkout", v1beta1.RolloutAction{Action: "Skip"}, apierrors.IsInvalid, `action: Unsupported value: "Skip"`},
		{"unknown rule", "checkout", v1beta1.RolloutAction{Rule: "nope", Action: v1beta1.RolloutActionPause}, apierrors.IsInvalid, "rules with one: gradual"},
		{"no such flag", "missing", v1beta1.RolloutAction{Action: v1beta1.RolloutActionPause}, apierrors.IsNotFound, "not found"},
		{"a flag without a plan", "plain", v1beta1.RolloutAction{Action: v1beta1.RolloutActionPause}, apierrors.IsInvalid, "has no rule with a rollout plan"},
	} {
		if tc.flag == "plain" {
			createFlag(t, c, ns, boolFlag("plain"))
		}
		_, err := act(t, c, ns, tc.flag, tc.action)
		if !tc.check(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}

	// An invalid plan is refused with its field path.
	_, err = c.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("bad",
		v1beta1.RolloutStep{Weight: 50, Duration: seconds(1)}, v1beta1.RolloutStep{Weight: 20}), metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.rules[0].rollout.plan.steps[0].duration") || !strings.Contains(err.Error(), "spec.rules[0].rollout.plan.steps[1].weight") {
		t.Errorf("invalid plan: %v", err)
	}
}

// exporter is what Prometheus scrapes: one gauge, checkout_error_ratio,
// at the value set, or 503 while failing (Prometheus then marks the series
// stale, and the query answers nothing).
type exporter struct {
	mu      sync.Mutex
	value   string
	failing bool
}

func (e *exporter) set(value string, failing bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.value, e.failing = value, failing
}

func (e *exporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failing {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE checkout_error_ratio gauge\ncheckout_error_ratio %s\n", e.value)
}

// startPrometheus runs Debian's Prometheus (hack/install-debian-tools.sh)
// on a free port, scraping target every second, until the test ends.
func startPrometheus(t *testing.T, target string) (url string, p *process.Process) {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		tools.Missing(t, "Prometheus is not installed (%v): run hack/install-debian-tools.sh (apt-get install prometheus), or hack/test.sh which runs it", err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: checkout
  static_configs:
  - targets: [%q]
`, strings.TrimPrefix(target, "http://"))), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := tcluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url = fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err = process.Start("prometheus", filepath.Join(dir, "prometheus.log"), bin,
		"--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	// Ready, and the first scrape in: the guard's query has its sample.
	if err := tcluster.WaitFor(context.Background(), p, 60*time.Second, func() error {
		resp, err := http.Get(url + "/api/v1/query?query=checkout_error_ratio")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"checkout_error_ratio"`) {
			return fmt.Errorf("%d %s", resp.StatusCode, body)
		}
		return nil
	}); err != nil {
		t.Fatalf("Prometheus: %v\n%s", err, p.Tail(20))
	}
	return url, p
}

// A guarded step against a real Prometheus: a guard with no value (the
// scraped target failing, its series stale) pauses the plan and never
// advances it; a value again resumes it; a value over the bound aborts it
// with the reading in the status; Prometheus gone pauses a plan.
func TestRolloutPlanGuard(t *testing.T) {
	t.Parallel()
	target := &exporter{value: "0.01"}
	ts := httptest.NewServer(target)
	t.Cleanup(ts.Close)
	promURL, prom := startPrometheus(t, ts.URL)
	s := startServer(t, "--rollout-prometheus-url", promURL, "--rollout-guard-interval", "1s")
	c := s.Client
	const ns = "default"
	limit := resource.MustParse("0.05")
	guard := &v1beta1.RolloutGuard{Query: `max(checkout_error_ratio)`, AbortAbove: &limit}
	if _, err := c.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("guarded",
		v1beta1.RolloutStep{Weight: 10, Duration: seconds(6), Guard: guard},
		v1beta1.RolloutStep{Weight: 50, Duration: seconds(600), Guard: guard},
		v1beta1.RolloutStep{Weight: 100},
	), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPlan(t, c, ns, "guarded", "started", 10*time.Second, func(s v1beta1.RolloutStatus) bool { return s.Weight == 10 })
	target.set("0.01", true)
	f := waitPlan(t, c, ns, "guarded", "paused, the guard's series stale", 20*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Phase == v1beta1.RolloutPhasePaused && s.Reason == "GuardUnavailable"
	})
	if st := planStatus(f); st.Step != 0 || !strings.Contains(st.Message, "the query answered 0 samples, not one") {
		t.Errorf("paused: %+v", st)
	}
	// Without a value past the step's end: it does not advance.
	time.Sleep(7 * time.Second)
	if got, _ := c.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "guarded", metav1.GetOptions{}); planStatus(got).Step != 0 {
		t.Fatalf("advanced while its guard had no value: %+v", planStatus(got))
	}
	target.set("0.01", false)
	waitPlan(t, c, ns, "guarded", "resumed, then the next step", 20*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Step == 1 && s.Phase == v1beta1.RolloutPhaseProgressing
	})
	target.set("0.07", false)
	f = waitPlan(t, c, ns, "guarded", "aborted by the guard", 20*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Phase == v1beta1.RolloutPhaseAborted
	})
	if st := planStatus(f); st.Reason != "GuardTripped" || st.Weight != 0 || !strings.Contains(st.Message, "read 0.07, above 50m") {
		t.Errorf("aborted: %+v", st)
	}

	// Prometheus gone: a guarded plan pauses, and says why.
	target.set("0.01", false)
	if err := tcluster.WaitFor(context.Background(), prom, 20*time.Second, func() error {
		resp, err := http.Get(promURL + "/api/v1/query?query=checkout_error_ratio")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `"0.01"`) {
			return fmt.Errorf("not scraped yet: %s", body)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("unreachable",
		v1beta1.RolloutStep{Weight: 10, Duration: seconds(60), Guard: guard}, v1beta1.RolloutStep{Weight: 100},
	), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPlan(t, c, ns, "unreachable", "started", 10*time.Second, func(s v1beta1.RolloutStatus) bool { return s.Weight == 10 })
	if err := prom.Stop(10 * time.Second); err != nil {
		t.Logf("prometheus: %v", err)
	}
	f = waitPlan(t, c, ns, "unreachable", "paused, Prometheus gone", 20*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Phase == v1beta1.RolloutPhasePaused
	})
	if st := planStatus(f); !strings.Contains(st.Message, "connection refused") {
		t.Errorf("Prometheus gone: %+v", st)
	}

	// A server without Prometheus pauses a guarded plan and says why.
	bare := startServer(t)
	if _, err := bare.Client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("guarded",
		v1beta1.RolloutStep{Weight: 10, Duration: seconds(60), Guard: guard}, v1beta1.RolloutStep{Weight: 100},
	), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f = waitPlan(t, bare.Client, ns, "guarded", "paused without Prometheus", 10*time.Second, func(s v1beta1.RolloutStatus) bool {
		return s.Phase == v1beta1.RolloutPhasePaused
	})
	if st := planStatus(f); !strings.Contains(st.Message, "the server has no --rollout-prometheus-url") {
		t.Errorf("without Prometheus: %+v", st)
	}
}

// A server stopped during a step and started after the step's end, and
// after the end the next step would have had: the plan advances once, and
// the new step gets its whole duration.
func TestRolloutPlanAfterARestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServerIn(t, dir)
	const ns = "default"
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("restarted",
		v1beta1.RolloutStep{Weight: 10, Duration: seconds(5)},
		v1beta1.RolloutStep{Weight: 20, Duration: seconds(5)},
		v1beta1.RolloutStep{Weight: 30, Duration: seconds(5)},
		v1beta1.RolloutStep{Weight: 100},
	), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := waitPlan(t, s.Client, ns, "restarted", "started", 10*time.Second, func(s v1beta1.RolloutStatus) bool { return s.Weight == 10 })
	end := planStatus(f).NextStepAt.Time
	s.Stop(t)
	// Past the first step's end and the second's.
	time.Sleep(time.Until(end.Add(6 * time.Second)))
	restarted := time.Now()
	s = startServerIn(t, dir)
	f = waitPlan(t, s.Client, ns, "restarted", "the next step", 15*time.Second, func(s v1beta1.RolloutStatus) bool { return s.Step >= 1 })
	st := planStatus(f)
	if st.Step != 1 || st.Weight != 20 || len(st.Steps) != 2 {
		t.Fatalf("after the restart: step %d, weight %d, steps %+v: one step, not one per missed end", st.Step, st.Weight, st.Steps)
	}
	if st.StepStartedAt.Time.Before(restarted.Add(-time.Second)) || st.NextStepAt.Sub(st.StepStartedAt.Time) != 5*time.Second {
		t.Errorf("the new step began %s and ends %s: it should begin after the restart (%s) and last 5s", st.StepStartedAt, st.NextStepAt, restarted)
	}
}

// Two replicas on one etcd: the leader is stopped in the middle of a step,
// and the survivor ends that step on time, once.
func TestRolloutPlanLeaderStopped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	etcd, err := standalone.StartEtcd(filepath.Join(dir, "etcd"), filepath.Join(dir, "run"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	a := framework.StartServer(t, filepath.Join(dir, "a"), "--etcd-servers", etcd.ClientURL)
	b := framework.StartServer(t, filepath.Join(dir, "b"), "--etcd-servers", etcd.ClientURL)
	etcdClient, err := leaderelection.NewClient(storagebackend.TransportConfig{ServerList: []string{etcd.ClientURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer etcdClient.Close()
	leader := waitForLeader(t, etcdClient, leaderelection.Key("/registry/flagpole.dev"), []*framework.Server{a, b}, 2)
	survivor := a
	if leader == a {
		survivor = b
	}
	const ns = "default"
	if _, err := survivor.Client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), plannedFlag("led",
		v1beta1.RolloutStep{Weight: 10, Duration: seconds(8)},
		v1beta1.RolloutStep{Weight: 20, Duration: seconds(8)},
		v1beta1.RolloutStep{Weight: 100},
	), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := waitPlan(t, survivor.Client, ns, "led", "started by the leader", 10*time.Second, func(s v1beta1.RolloutStatus) bool { return s.Weight == 10 })
	end := planStatus(f).NextStepAt.Time
	leader.Stop(t)
	f = waitPlan(t, survivor.Client, ns, "led", "the second step, by the survivor", 20*time.Second, func(s v1beta1.RolloutStatus) bool { return s.Step == 1 })
	st := planStatus(f)
	if late := st.StepStartedAt.Sub(end); late < -time.Second || late > 4*time.Second {
		t.Errorf("the step ended %s after its end time", late)
	}
	if st.Weight != 20 || len(st.Steps) != 2 || st.Steps[0].Step != 0 || st.Steps[1].Step != 1 {
		t.Errorf("after the handover: %+v", st)
	}
}
