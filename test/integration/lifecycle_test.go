package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/openfeature"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// usageWindow returns a flag's usage window by name (zero when absent).
func usageWindow(f *v1beta1.Flag, name string) v1beta1.UsageWindow {
	if f.Status.Usage == nil {
		return v1beta1.UsageWindow{}
	}
	for _, w := range f.Status.Usage.Windows {
		if w.Window == name {
			return w
		}
	}
	return v1beta1.UsageWindow{}
}

func served(w v1beta1.UsageWindow, variant string) int64 {
	for _, v := range w.Variants {
		if v.Name == variant {
			return v.Count
		}
	}
	return 0
}

// hourCount is how many evaluations of the flag the last hour counts now
// (the test helpers that wait for a flag evaluate it too).
func hourCount(t *testing.T, client clientset.Interface, ns, name string) int64 {
	t.Helper()
	f, err := client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return usageWindow(f, "1h").Evaluations
}

// waitUsage polls the flag until its last hour counts want evaluations.
func waitUsage(t *testing.T, client clientset.Interface, ns, name string, want int64) *v1beta1.Flag {
	t.Helper()
	var f *v1beta1.Flag
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.FlagpoleV1beta1().Flags(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		f = got
		u, _ := json.Marshal(f.Status.Usage)
		last = string(u)
		return usageWindow(f, "1h").Evaluations == want, nil
	})
	if err != nil {
		t.Fatalf("%s/%s: usage %s, want %d evaluations in the last hour", ns, name, last, want)
	}
	return f
}

func appToken(t *testing.T, dataDir string) string {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(dataDir, standalone.AppTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(token))
}

// table reads flags as kubectl does, a server-side Table, and returns the
// cells of each row by column name.
func table(t *testing.T, cfg *rest.Config, path string) map[string]map[string]any {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, cfg.Host+path, nil)
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tbl metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&tbl); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("table %s: %s %v", path, resp.Status, err)
	}
	rows := map[string]map[string]any{}
	for _, r := range tbl.Rows {
		cells := map[string]any{}
		for i, c := range tbl.ColumnDefinitions {
			cells[c.Name] = r.Cells[i]
		}
		rows[cells["Name"].(string)] = cells
	}
	return rows
}

// usageFlag serves on to the enterprise plan and off to everyone else, with
// no rule that fails for a context without a targeting key.
func usageFlag(name string) *v1beta1.Flag {
	f := boolFlag(name)
	f.Spec.Rules = []v1beta1.Rule{{Name: "enterprise", When: `context.plan == "enterprise"`, Variant: "on"}}
	return f
}

// Every evaluation path counts (flags/evaluate, evaluations, OFREP single
// and bulk, the Go provider's reports), GET and the table show it, the
// OpenTelemetry-named metrics count it, and the counts survive a restart.
func TestUsageFromEveryPath(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// An hour: nothing is written before the server stops, so the counts
	// that survive the restart are those written as it stopped.
	s := startServerIn(t, dir, "--usage-flush-interval", "1h")
	const ns = "usage"
	createFlag(t, s.Client, ns, usageFlag("counted"))
	ctx := context.Background()
	base := hourCount(t, s.Client, ns, "counted")

	vip := v1beta1.JSON{Raw: []byte(`{"targetingKey":"u1","plan":"enterprise"}`)}
	for i := 0; i < 3; i++ {
		if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "counted", &v1beta1.EvaluationRequest{Context: vip}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Client.FlagpoleV1beta1().Evaluations(ns).Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Flags: []string{"counted"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app := tokenConfig(s.AdminConfig, appToken(t, dir))
	code, body := ofrep(t, app, "/namespaces/"+ns+"/ofrep/v1/evaluate/flags/counted", map[string]any{"targetingKey": "u2"})
	md, _ := body["metadata"].(map[string]any)
	if code != http.StatusOK || md["flagSetId"] != ns || md["version"] != "1" {
		t.Errorf("OFREP: %d, metadata %v: want flagSetId %q and version \"1\" for the telemetry hooks", code, body["metadata"], ns)
	}
	if code, _ := ofrep(t, app, "/namespaces/"+ns+"/ofrep/v1/evaluate/flags", map[string]any{"targetingKey": "u3"}); code != http.StatusOK {
		t.Fatalf("OFREP bulk: %d", code)
	}
	// 3 + 1 + 1 + 1: flags/evaluate, evaluations, OFREP single and bulk.
	got := waitUsage(t, s.Client, ns, "counted", base+6)
	w := usageWindow(got, "1h")
	if u := got.Status.Usage; u.LastEvaluated == nil || u.FirstEvaluated == nil || u.CountingSince == nil {
		t.Errorf("usage times: %+v", u)
	}
	if served(w, "on") != 3 || w.Errors != 0 {
		t.Errorf("the enterprise context got variant on 3 times: %+v", w)
	}

	// The in-process Go provider reports what it evaluated.
	p, err := openfeature.NewProvider(s.AdminConfig, ns, openfeature.WithUsageReportInterval(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		p.BooleanEvaluation(ctx, "counted", false, of.FlattenedContext{"targetingKey": fmt.Sprint("local-", i), "plan": "enterprise"})
	}
	got = waitUsage(t, s.Client, ns, "counted", base+10)
	if served(usageWindow(got, "24h"), "on") != 7 {
		t.Errorf("the provider's evaluations of on are not counted: %+v", usageWindow(got, "24h"))
	}
	p.Shutdown()

	// A flag nothing evaluated (created without the helper that evaluates).
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Create(ctx, boolFlag("untouched"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rows := table(t, s.AdminConfig, "/apis/flagpole.dev/v1beta1/namespaces/"+ns+"/flags")
	if last := rows["counted"]["Last-Evaluated"]; last == "never" || last == "" {
		t.Errorf("LAST-EVALUATED of an evaluated flag: %v", last)
	}
	if last := rows["untouched"]["Last-Evaluated"]; last != "never" {
		t.Errorf("LAST-EVALUATED of a flag never evaluated: %v, want never", last)
	}
	metrics := scrape(t, s.AdminConfig)
	if !strings.Contains(metrics, `feature_flag_evaluation_success_total{feature_flag_key="counted",feature_flag_provider_name="flagpole",feature_flag_result_reason="targeting_match",feature_flag_result_variant="on",feature_flag_set_id="usage",feature_flag_version="1"} 3`) {
		t.Errorf("/metrics lacks the OpenTelemetry-named success counter of the enterprise evaluations:\n%s", grepLines(metrics, "feature_flag_evaluation"))
	}
	if strings.Contains(metrics, "u1") || strings.Contains(metrics, "enterprise") {
		t.Error("/metrics holds a targeting key or a context value")
	}

	// A restart: what was not written yet is written as the server stops.
	s.Stop(t)
	s = startServerIn(t, dir, "--usage-flush-interval", "1h")
	got = waitUsage(t, s.Client, ns, "counted", base+10)
	if got.Status.Usage.LastEvaluated == nil {
		t.Error("lastEvaluated lost in the restart")
	}
}

// A usage report that lies is refused with a 4xx and counts nothing; the
// application token may report, as it may evaluate.
func TestUsageReportHostile(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--usage-flush-interval", "1s")
	const ns = "reports"
	createFlag(t, s.Client, ns, boolFlag("reported"))
	other := createFlag(t, s.Client, "elsewhere", boolFlag("secret"))
	ctx := context.Background()
	base := hourCount(t, s.Client, ns, "reported")
	otherBase := hourCount(t, s.Client, "elsewhere", "secret")
	app := clientset.NewForConfigOrDie(tokenConfig(s.AdminConfig, appToken(t, s.DataDir)))
	report := func(flags ...v1beta1.FlagUsageReport) error {
		_, err := app.FlagpoleV1beta1().UsageReports(ns).Create(ctx, &v1beta1.UsageReport{Spec: v1beta1.UsageReportSpec{Flags: flags}}, metav1.CreateOptions{})
		return err
	}
	entry := func(name string, count int64, variants ...v1beta1.VariantCount) v1beta1.FlagUsageReport {
		return v1beta1.FlagUsageReport{Name: name, Reasons: []v1beta1.ReasonCount{{Reason: flagpole.ReasonSplit, Count: count}}, Variants: variants}
	}
	if err := report(entry("reported", 5, v1beta1.VariantCount{Name: "on", Count: 5})); err != nil {
		t.Fatalf("an honest report: %v", err)
	}
	waitUsage(t, s.Client, ns, "reported", base+5)

	for name, err := range map[string]error{
		"negative counts":          report(entry("reported", -3)),
		"a billion evaluations":    report(entry("reported", 1_000_000_000)),
		"an unknown flag":          report(entry("reported", 1), entry("no-such-flag", 1)),
		"another namespace's":      report(entry("secret", 1)),
		"another flag's uid":       report(v1beta1.FlagUsageReport{Name: "reported", UID: other.UID, Reasons: []v1beta1.ReasonCount{{Reason: "STATIC", Count: 1}}}),
		"an unknown variant":       report(entry("reported", 2, v1beta1.VariantCount{Name: "maybe", Count: 2})),
		"more served than counted": report(entry("reported", 1, v1beta1.VariantCount{Name: "on", Count: 2})),
	} {
		if !apierrors.IsInvalid(err) {
			t.Errorf("%s: %v, want 422", name, err)
		}
	}
	// 10 MB: refused before it is read.
	big := bytes.Repeat([]byte("x"), 10<<20)
	body := append([]byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"UsageReport","spec":{"flags":[{"name":"reported","reasons":[{"reason":"STATIC","count":1}],"uid":"`), big...)
	body = append(body, []byte(`"}]}}`)...)
	httpClient, err := rest.HTTPClientFor(tokenConfig(s.AdminConfig, appToken(t, s.DataDir)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post(s.AdminConfig.Host+"/apis/flagpole.dev/v1beta1/namespaces/"+ns+"/usagereports", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 10 MB report: %s, want 413", resp.Status)
	}

	// Nothing of the refused reports was counted, here or elsewhere.
	f := waitUsage(t, s.Client, ns, "reported", base+5)
	if served(usageWindow(f, "1h"), "on") != 5 {
		t.Errorf("after the refused reports: %+v", usageWindow(f, "1h"))
	}
	if n := hourCount(t, s.Client, "elsewhere", "secret"); n != otherBase {
		t.Errorf("another namespace's flag was counted: %d evaluations, %d before", n, otherBase)
	}
	// The application token may report, not read.
	if _, err := app.FlagpoleV1beta1().Flags(ns).Get(ctx, "reported", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("the application token read a flag: %v", err)
	}
}

// impersonating is the admin's client acting as user (in the one group
// standalone mode lets change flags).
func impersonating(s *rest.Config, user string) clientset.Interface {
	cfg := rest.CopyConfig(s)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters"}}
	return clientset.NewForConfigOrDie(cfg)
}

func revisions(t *testing.T, client clientset.Interface, ns, flag string) []v1beta1.FlagRevision {
	t.Helper()
	list, err := client.FlagpoleV1beta1().FlagRevisions(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "flag.name=" + flag})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func waitRevisions(t *testing.T, client clientset.Interface, ns, flag string, done func([]v1beta1.FlagRevision) bool) []v1beta1.FlagRevision {
	t.Helper()
	var got []v1beta1.FlagRevision
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		got = revisions(t, client, ns, flag)
		return done(got), nil
	}); err != nil {
		var lines []string
		for _, r := range got {
			lines = append(lines, fmt.Sprintf("%s gen %d by %q: %v", r.Name, r.Change.Generation, r.Change.User, r.Diff))
		}
		t.Fatalf("revisions of %s/%s:\n%s", ns, flag, strings.Join(lines, "\n"))
	}
	return got
}

// Every change is a revision with who (the impersonated user), when and
// what; a JSON patch restores an earlier one in one request and is itself a
// revision; history is bounded and goes with its flag; clients cannot
// write it.
func TestHistoryAndRollback(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--flag-revision-limit", "3")
	const ns = "history"
	ctx := context.Background()
	createFlag(t, s.Client, ns, boolFlag("audited"))
	dave := impersonating(s.AdminConfig, "dave")
	f, err := dave.FlagpoleV1beta1().Flags(ns).Get(ctx, "audited", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Spec.State = v1beta1.FlagStateDisabled
	f, err = dave.FlagpoleV1beta1().Flags(ns).Update(ctx, f, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if lc := f.Status.LastChange; lc == nil || lc.User != "dave" || lc.Generation != 2 {
		t.Errorf("lastChange after dave's update: %+v", lc)
	}
	revs := waitRevisions(t, s.Client, ns, "audited", func(r []v1beta1.FlagRevision) bool { return len(r) == 2 })
	first, second := revs[0], revs[1]
	if first.Name != "audited.1" || first.Change.User != "flagpole-admin" || len(first.Diff) != 0 {
		t.Errorf("revision 1: %s by %q, diff %v", first.Name, first.Change.User, first.Diff)
	}
	if second.Change.User != "dave" || len(second.Diff) != 1 || second.Diff[0] != `spec.state: "Enabled" → "Disabled"` {
		t.Errorf("revision 2: by %q, diff %v", second.Change.User, second.Diff)
	}

	// Restore generation 1 in one request: replace the spec.
	spec, err := json.Marshal(first.Spec)
	if err != nil {
		t.Fatal(err)
	}
	patch := []byte(`[{"op":"replace","path":"/spec","value":` + string(spec) + `}]`)
	erin := impersonating(s.AdminConfig, "erin")
	restored, err := erin.FlagpoleV1beta1().Flags(ns).Patch(ctx, "audited", types.JSONPatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if restored.Spec.State != v1beta1.FlagStateEnabled || restored.Generation != 3 || restored.Status.LastChange.User != "erin" {
		t.Errorf("after the rollback: state %s, generation %d, lastChange %+v", restored.Spec.State, restored.Generation, restored.Status.LastChange)
	}
	revs = waitRevisions(t, s.Client, ns, "audited", func(r []v1beta1.FlagRevision) bool { return len(r) == 3 })
	if third := revs[2]; third.Change.User != "erin" || len(third.Diff) != 1 || third.Diff[0] != `spec.state: "Disabled" → "Enabled"` {
		t.Errorf("the rollback's revision: by %q, diff %v", third.Change.User, third.Diff)
	}

	// Two more changes: the limit keeps the newest three.
	for _, owner := range []string{"a", "b"} {
		cur, err := s.Client.FlagpoleV1beta1().Flags(ns).Get(ctx, "audited", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Owner = owner
		if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitRevisions(t, s.Client, ns, "audited", func(r []v1beta1.FlagRevision) bool {
		return len(r) == 3 && r[0].Change.Generation == 3 && r[2].Change.Generation == 5
	})

	// Clients cannot write history.
	httpClient, err := rest.HTTPClientFor(s.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Post(s.AdminConfig.Host+"/apis/flagpole.dev/v1beta1/namespaces/"+ns+"/flagrevisions", "application/json",
		strings.NewReader(`{"apiVersion":"flagpole.dev/v1beta1","kind":"FlagRevision","metadata":{"name":"audited.9"},"flag":{"name":"audited"},"change":{"time":null,"generation":9},"spec":{"type":"Boolean","variants":[{"name":"x","value":true}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST flagrevisions: %s, want 405", resp.Status)
	}
	if err := s.Client.FlagpoleV1beta1().Flags(ns).Delete(ctx, "audited", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitRevisions(t, s.Client, ns, "audited", func(r []v1beta1.FlagRevision) bool { return len(r) == 0 })
}

// staleReason is the flag's Stale condition's reason when True, "" otherwise.
func staleReason(f *v1beta1.Flag) string {
	if c := meta.FindStatusCondition(f.Status.Conditions, flagpole.FlagConditionStale); c != nil && c.Status == metav1.ConditionTrue {
		return c.Reason
	}
	return ""
}

// A flag never evaluated turns stale after the unused period, one that
// serves a single variant after its period, a Release flag past its
// lifetime; each is selectable with status.stale=true, and evaluating an
// unused flag makes it fresh again.
func TestStaleFromUsage(t *testing.T) {
	t.Parallel()
	s := startServer(t, "--usage-flush-interval", "1s", "--stale-unused-period", "4s", "--stale-single-variant-period", "3s",
		"--lifecycle-lifetimes", "Release=2s")
	const ns = "stale"
	ctx := context.Background()
	createFlag(t, s.Client, ns, boolFlag("forgotten"))
	onlyOn := boolFlag("rolled-out")
	onlyOn.Spec.DefaultVariant = "on"
	onlyOn.Spec.Rules = nil
	createFlag(t, s.Client, ns, onlyOn)
	release := boolFlag("release")
	release.Spec.Lifecycle = &v1beta1.FlagLifecycle{Kind: v1beta1.FlagLifecycleRelease}
	release.Spec.Rules = []v1beta1.Rule{{Name: "vip", When: `context.plan == "vip"`, Variant: "on"}}
	createFlag(t, s.Client, ns, release)
	killSwitch := boolFlag("kill-switch")
	killSwitch.Spec.Lifecycle = &v1beta1.FlagLifecycle{Kind: v1beta1.FlagLifecycleKillSwitch}
	killSwitch.Spec.DefaultVariant = "on"
	killSwitch.Spec.Rules = nil
	createFlag(t, s.Client, ns, killSwitch)

	// rolled-out, release and kill-switch are evaluated all along; only ever
	// one variant for the first and the last, both for the release.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, name := range []string{"rolled-out", "release", "kill-switch"} {
					_, _ = s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, name, &v1beta1.EvaluationRequest{}, metav1.CreateOptions{})
				}
				vip := v1beta1.JSON{Raw: []byte(`{"plan":"vip"}`)}
				_, _ = s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "release", &v1beta1.EvaluationRequest{Context: vip}, metav1.CreateOptions{})
			}
		}
	}()
	defer func() { close(stop); <-done }()

	want := map[string]string{"forgotten": "Unused", "rolled-out": "SingleVariant", "release": "LifetimeExceeded"}
	for name, reason := range want {
		waitFlag(t, s.Client, ns, name, "Stale "+reason, func(f *v1beta1.Flag) bool { return staleReason(f) == reason })
	}
	list, err := s.Client.FlagpoleV1beta1().Flags(ns).List(ctx, metav1.ListOptions{FieldSelector: "status.stale=true"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range list.Items {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "forgotten,release,rolled-out" {
		t.Errorf("status.stale=true lists %v; the kill switch serving one variant is not stale", names)
	}
	if ks, _ := s.Client.FlagpoleV1beta1().Flags(ns).Get(ctx, "kill-switch", metav1.GetOptions{}); staleReason(ks) != "" {
		t.Errorf("a kill switch turned stale: %+v", ks.Status.Conditions)
	}
	if rows := table(t, s.AdminConfig, "/apis/flagpole.dev/v1beta1/namespaces/"+ns+"/flags"); rows["forgotten"]["Stale"] != "Unused" || rows["kill-switch"]["Stale"] != "<none>" {
		t.Errorf("STALE column: forgotten %v, kill-switch %v", rows["forgotten"]["Stale"], rows["kill-switch"]["Stale"])
	}

	// Evaluated again: no longer unused.
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "forgotten", &v1beta1.EvaluationRequest{}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFlag(t, s.Client, ns, "forgotten", "no longer stale", func(f *v1beta1.Flag) bool { return staleReason(f) == "" })
}

// The sample Grafana dashboard reads only metrics the server exports: every
// metric name in its queries is on /metrics once evaluations, an error, a
// key without a flag and a usage flush have happened.
func TestGrafanaDashboardMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "artifacts", "grafana", "flagpole-evaluations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	metricName := regexp.MustCompile(`\b(feature_flag_[a-z_]+|flagpole_[a-z_]+)\b`)
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			for _, m := range metricName.FindAllString(target.Expr, -1) {
				if !strings.HasPrefix(m, "feature_flag_set_id") && !strings.HasPrefix(m, "feature_flag_key") &&
					!strings.HasPrefix(m, "feature_flag_result") && !strings.HasPrefix(m, "feature_flag_version") {
					names[m] = p.Title
				}
			}
		}
	}
	if len(names) < 8 {
		t.Fatalf("the dashboard reads %d metrics: %v", len(names), names)
	}

	s := startServer(t, "--usage-flush-interval", "1s")
	const ns = "dashboard"
	createFlag(t, s.Client, ns, boolFlag("watched")) // its gradual rollout fails without a targeting key
	ctx := context.Background()
	for _, c := range []string{`{"targetingKey":"u1"}`, `{}`} {
		if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "watched", &v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(c)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Client.FlagpoleV1beta1().Evaluations(ns).Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Flags: []string{"no-such-flag"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var metrics string
	if err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		metrics = scrape(t, s.AdminConfig)
		return strings.Contains(metrics, "flagpole_usage_record_writes_total{"), nil
	}); err != nil {
		t.Fatal("no usage record write on /metrics")
	}
	for name, panel := range names {
		if !regexp.MustCompile(`(?m)^` + name + `[{ ]`).MatchString(metrics) {
			t.Errorf("panel %q reads %s, which /metrics does not have", panel, name)
		}
	}
}
