package integration

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
)

func evalContext(v any) v1beta1.JSON { return raw(v) }

// metricValue reads one series (name and labels as the text format prints
// them) from the server's /metrics; 0 when it has none yet.
func metricValue(t *testing.T, s *framework.Server, series string) float64 {
	t.Helper()
	code, body := do(t, s.AdminConfig, "GET", "/metrics", "", nil)
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if value, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func evaluate(t *testing.T, s *framework.Server, ns, flag string, ctx any) *v1beta1.EvaluationResult {
	t.Helper()
	res, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(context.Background(), flag, &v1beta1.EvaluationRequest{Context: evalContext(ctx)}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("evaluate %s: %v", flag, err)
	}
	return res
}

// warnings collects the Warning headers a client receives.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := strings.Join(w.msgs, "\n")
	w.msgs = nil
	return out
}

func clientWithWarnings(t *testing.T, s *framework.Server) (clientset.Interface, *warnings) {
	w := &warnings{}
	cfg := rest.CopyConfig(s.AdminConfig)
	cfg.WarningHandler = w
	return clientset.NewForConfigOrDie(cfg), w
}

func TestEvaluateSubresource(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	const ns = "eval"
	// No has() guards: a key the context lacks makes a rule (or a segment's
	// when) not match, and evaluation goes on to the next rule.
	segments := s.Client.FlagpoleV1beta1().Segments(ns)
	if _, err := segments.Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"},
		Spec: v1beta1.SegmentSpec{When: `context.email.endsWith("@example.com")`}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := boolFlag("new-checkout")
	f.Spec.Rules[0].When = `context.plan == "enterprise"`
	created := createFlag(t, s.Client, ns, f)

	staffSeries := `feature_flag_evaluation_success_total{feature_flag_key="new-checkout",feature_flag_provider_name="flagpole",feature_flag_result_reason="targeting_match",feature_flag_result_variant="on",feature_flag_set_id="eval",feature_flag_version="1"}`
	staffBefore := metricValue(t, s, staffSeries)
	res := evaluate(t, s, ns, "new-checkout", map[string]any{"targetingKey": "u1", "email": "ann@example.com", "plan": "enterprise"})
	if res.Reason != "TARGETING_MATCH" || res.Variant != "on" || string(res.Value.Raw) != "true" || res.Metadata.Rule != "staff" {
		t.Errorf("staff: %+v", res.FlagEvaluation)
	}
	if res.Metadata.Generation != created.Generation || res.Metadata.ResourceVersion == "" || res.Key != "new-checkout" {
		t.Errorf("result not traced to the flag revision: %+v", res.Metadata)
	}
	if res := evaluate(t, s, ns, "new-checkout", map[string]any{"targetingKey": "u1", "plan": "free"}); res.Reason != "SPLIT" || res.Metadata.Rule != "gradual" {
		t.Errorf("rollout: %+v", res.FlagEvaluation)
	}
	if res := evaluate(t, s, ns, "new-checkout", map[string]any{"plan": "free"}); res.Reason != "ERROR" || res.ErrorCode != "TARGETING_KEY_MISSING" {
		t.Errorf("rollout without targeting key: %+v", res.FlagEvaluation)
	}
	// Neither email (the segment's when) nor plan (the rule's): the rollout decides.
	if res := evaluate(t, s, ns, "new-checkout", map[string]any{"targetingKey": "u1"}); res.Reason != "SPLIT" || res.Metadata.Rule != "gradual" {
		t.Errorf("a context without the keys the first rule reads: %+v", res.FlagEvaluation)
	}
	typed, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "new-checkout", &v1beta1.EvaluationRequest{Type: v1beta1.FlagTypeString}, metav1.CreateOptions{})
	if err != nil || typed.ErrorCode != "TYPE_MISMATCH" {
		t.Errorf("type mismatch: %+v %v", typed, err)
	}

	// Client mistakes are 4xx with field paths, never 5xx.
	_, err = s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "missing", &v1beta1.EvaluationRequest{}, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("missing flag: %v, want 404", err)
	}
	for _, tc := range []struct {
		req   v1beta1.EvaluationRequest
		field string
	}{
		{v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`[1,2]`)}}, "context"},
		{v1beta1.EvaluationRequest{Context: evalContext(map[string]any{"targetingKey": strings.Repeat("k", 300)})}, "context"},
		{v1beta1.EvaluationRequest{Context: evalContext(map[string]any{"pad": strings.Repeat("x", 17000)})}, "context"},
		{v1beta1.EvaluationRequest{Context: evalContext(map[string]any{"targetingKey": 7})}, "context"},
		{v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":null}`)}}, "context"},
		{v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`)}}, "context"},
		{v1beta1.EvaluationRequest{Type: "Integer"}, "type"},
	} {
		_, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(ctx, "new-checkout", &tc.req, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasCause(err, tc.field) {
			t.Errorf("%.60s: %v, want 422 at %s", tc.req.Context.Raw, err, tc.field)
		}
	}
	code, body := do(t, s.AdminConfig, "POST", "/apis/flagpole.dev/v1beta1/namespaces/eval/flags/new-checkout/evaluate", "application/json", []byte(`{"context":`))
	if code != http.StatusBadRequest {
		t.Errorf("malformed body: %d %s", code, body)
	}

	// Every answer is counted, by flag, variant and reason: the staff answer
	// above once. (The counter is process-wide and outlives this server: with
	// -count=2 it starts where the previous run left it.)
	if got := metricValue(t, s, staffSeries); got != staffBefore+1 {
		t.Errorf("%s went from %v to %v, want one more", staffSeries, staffBefore, got)
	}
	if metricValue(t, s, "flagpole_evaluation_duration_seconds_count") == 0 {
		t.Error("no evaluation durations observed")
	}

	// The kill switch.
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Patch(ctx, "new-checkout", "application/merge-patch+json", []byte(`{"spec":{"state":"Disabled"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		r := evaluate(t, s, ns, "new-checkout", map[string]any{"email": "ann@example.com", "plan": "enterprise"})
		return r.Reason == "DISABLED" && r.Variant == "off", nil
	}); err != nil {
		t.Errorf("kill switch never took effect: %v", err)
	}
}

func TestBulkEvaluation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	const ns = "bulk"
	a := boolFlag("a")
	a.Spec.Rules = nil
	b := boolFlag("b")
	b.Spec.Rules = nil
	b.Labels = map[string]string{"team": "growth"}
	createFlag(t, s.Client, ns, a)
	createFlag(t, s.Client, ns, b)

	bulk := s.Client.FlagpoleV1beta1().Evaluations(ns)
	keys := func(ev *v1beta1.Evaluation) string {
		var out []string
		for _, r := range ev.Status.Results {
			out = append(out, r.Key+":"+r.Reason+r.ErrorCode)
		}
		return strings.Join(out, ",")
	}
	all, err := bulk.Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Context: evalContext(map[string]any{"targetingKey": "u"})}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(all); got != "a:STATIC,b:STATIC" {
		t.Errorf("all flags: %s", got)
	}
	if len(all.ManagedFields) != 0 {
		t.Errorf("a never-stored evaluation reports managed fields: %v", all.ManagedFields)
	}
	byKey, err := bulk.Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Flags: []string{"b", "nope"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(byKey); got != "b:STATIC,nope:ERRORFLAG_NOT_FOUND" {
		t.Errorf("by key: %s", got)
	}
	bySelector, err := bulk.Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "growth"}}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(bySelector); got != "b:STATIC" {
		t.Errorf("by selector: %s", got)
	}
	_, err = bulk.Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Flags: []string{"Not_A_Name"}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.flags[0]") {
		t.Errorf("bad key: %v", err)
	}
	// Never stored: there is nothing to list.
	code, _ := do(t, s.AdminConfig, "GET", "/apis/flagpole.dev/v1beta1/namespaces/bulk/evaluations", "", nil)
	if code != http.StatusMethodNotAllowed {
		t.Errorf("list evaluations: %d, want 405", code)
	}
}

func TestOverridePrecedenceAndExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	const ns = "override"
	f := boolFlag("f")
	f.Spec.Rules = nil
	createFlag(t, s.Client, ns, f)
	overrides := s.Client.FlagpoleV1beta1().FlagOverrides(ns)

	// The variant is checked against the flag by admission.
	_, err := overrides.Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: v1beta1.FlagOverrideSpec{Flag: "f", Variant: "maybe"}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.variant") {
		t.Errorf("unknown variant: %v, want 422 at spec.variant", err)
	}
	_, err = overrides.Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "short"},
		Spec: v1beta1.FlagOverrideSpec{Flag: "f", Variant: "on", TTL: &metav1.Duration{Duration: time.Second}}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.ttl") {
		t.Errorf("ttl below 10s: %v, want 422 at spec.ttl", err)
	}
	def, err := overrides.Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "defaulted"},
		Spec: v1beta1.FlagOverrideSpec{Flag: "f", Variant: "off", TargetingKeys: []string{"someone-else"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if def.Spec.TTL == nil || def.Spec.TTL.Duration != time.Hour || def.Status.ExpiresAt == nil {
		t.Errorf("ttl default and expiresAt: %+v %+v", def.Spec, def.Status)
	}

	o, err := overrides.Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "force-on"},
		Spec: v1beta1.FlagOverrideSpec{Flag: "f", Variant: "on", TTL: &metav1.Duration{Duration: 10 * time.Second}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expiresAt := o.Status.ExpiresAt.Time
	if l, err := overrides.List(ctx, metav1.ListOptions{FieldSelector: "spec.flag=f"}); err != nil || len(l.Items) != 2 {
		t.Errorf("field selector spec.flag=f: %v items, %v", len(l.Items), err)
	}
	if l, err := overrides.List(ctx, metav1.ListOptions{FieldSelector: "spec.flag=other"}); err != nil || len(l.Items) != 0 {
		t.Errorf("field selector spec.flag=other: %v", err)
	}
	if d := time.Until(expiresAt); d < 8*time.Second || d > 12*time.Second {
		t.Errorf("expiresAt %s is not ~10s away", expiresAt)
	}

	// An update can change the variant but never the deadline.
	o.Spec.TTL = &metav1.Duration{Duration: time.Hour}
	if _, err := overrides.Update(ctx, o, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "spec.ttl") {
		t.Errorf("ttl change: %v, want 422", err)
	}
	o.Spec.TTL = &metav1.Duration{Duration: 10 * time.Second}
	o.Status.ExpiresAt = &metav1.Time{Time: expiresAt.Add(time.Hour)}
	updated, err := overrides.Update(ctx, o, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !updated.Status.ExpiresAt.Time.Equal(expiresAt) {
		t.Errorf("update moved expiresAt from %s to %s", expiresAt, updated.Status.ExpiresAt)
	}

	var before *v1beta1.EvaluationResult
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		before = evaluate(t, s, ns, "f", map[string]any{"targetingKey": "u"})
		return before.Metadata.Override == "force-on", nil
	}); err != nil {
		t.Fatalf("override not in effect: %+v", before)
	}
	if before.Variant != "on" || before.Reason != "TARGETING_MATCH" {
		t.Errorf("override result: %+v", before.FlagEvaluation)
	}
	// Precedence: for the key it targets, the older targeted override
	// ("defaulted", off) beats the newer one for everyone ("force-on", on).
	targeted := evaluate(t, s, ns, "f", map[string]any{"targetingKey": "someone-else"})
	if targeted.Metadata.Override != "defaulted" || targeted.Variant != "off" || targeted.Reason != "TARGETING_MATCH" {
		t.Errorf("a targeted override did not win over a newer global one: %+v", targeted.FlagEvaluation)
	}

	// At expiresAt the engine ignores the override at once, lease or not.
	time.Sleep(time.Until(expiresAt) + 100*time.Millisecond)
	after := evaluate(t, s, ns, "f", map[string]any{"targetingKey": "u"})
	if after.Metadata.Override != "" || after.Variant != "off" || after.Reason != "STATIC" {
		t.Errorf("after expiresAt: %+v", after.FlagEvaluation)
	}
	if still := evaluate(t, s, ns, "f", map[string]any{"targetingKey": "someone-else"}); still.Metadata.Override != "defaulted" {
		t.Errorf("an unexpired targeted override stopped applying: %+v", still.FlagEvaluation)
	}
	// And the etcd lease removes the object soon after.
	if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := overrides.Get(ctx, "force-on", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Errorf("expired override still stored 90s after expiresAt: %v", err)
	}
	if _, err := overrides.Get(ctx, "defaulted", metav1.GetOptions{}); err != nil {
		t.Errorf("an unexpired override disappeared: %v", err)
	}
}

func TestExpressionsCheckedOnWrite(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("cel")

	for _, tc := range []struct {
		mutate func(*v1beta1.Flag)
		field  string
		msg    string
	}{
		{func(f *v1beta1.Flag) { f.Spec.Rules[0].When = `context.plan ==` }, "spec.rules[0].when", "compilation failed"},
		{func(f *v1beta1.Flag) { f.Spec.Rules[0].When = `"not a bool"` }, "spec.rules[0].when", "must evaluate to bool"},
		{func(f *v1beta1.Flag) {
			f.Spec.Rules[0].When = `context.xs.all(a, context.xs.all(b, context.xs.all(c, a == b && b == c)))`
		}, "spec.rules[0].when", "exceeds the limit"},
		{func(f *v1beta1.Flag) { f.Spec.Rules[1].Rollout.BucketBy = `1 + 1` }, "spec.rules[1].rollout.bucketBy", "must evaluate to string"},
	} {
		f := boolFlag("bad-cel")
		tc.mutate(f)
		_, err := flags.Create(ctx, f, metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !hasCause(err, tc.field) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want 422 at %s with %q", tc.field, err, tc.field, tc.msg)
		}
	}
	_, err := s.Client.FlagpoleV1beta1().Segments("cel").Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec: v1beta1.SegmentSpec{When: `unknown.field`}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.when") {
		t.Errorf("segment when: %v", err)
	}
}

func condition(f *v1beta1.Flag, typ string) *metav1.Condition {
	return meta.FindStatusCondition(f.Status.Conditions, typ)
}

func waitCondition(t *testing.T, client clientset.Interface, ns, name, typ string, status metav1.ConditionStatus, reason string) *v1beta1.Flag {
	t.Helper()
	return waitFlag(t, client, ns, name, fmt.Sprintf("%s never became %s/%s", typ, status, reason), func(f *v1beta1.Flag) bool {
		c := condition(f, typ)
		return c != nil && c.Status == status && c.Reason == reason
	})
}

func TestReferencesAndStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	const ns = "refs"
	client, warned := clientWithWarnings(t, s)

	// GitOps order: the flag before its segment. Accepted, with a warning.
	f := boolFlag("f")
	if _, err := client.FlagpoleV1beta1().Flags(ns).Create(ctx, f, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := warned.take(); !strings.Contains(w, `spec.rules[0].segments[0]: Segment "employees" does not exist`) {
		t.Errorf("warnings: %q", w)
	}
	got := waitCondition(t, s.Client, ns, "f", "Ready", metav1.ConditionFalse, "SegmentNotFound")
	if c := condition(got, "Ready"); !strings.Contains(c.Message, "employees") {
		t.Errorf("Ready message does not name the missing segment: %q", c.Message)
	}
	if res := evaluate(t, s, ns, "f", map[string]any{"plan": "enterprise"}); res.Metadata.Rule == "staff" {
		t.Errorf("a rule with an unresolved segment matched: %+v", res.FlagEvaluation)
	}

	if _, err := client.FlagpoleV1beta1().Segments(ns).Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"},
		Spec: v1beta1.SegmentSpec{Include: []string{"ann"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, s.Client, ns, "f", "Ready", metav1.ConditionTrue, "Resolved")
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return evaluate(t, s, ns, "f", map[string]any{"targetingKey": "ann", "plan": "enterprise"}).Metadata.Rule == "staff", nil
	}); err != nil {
		t.Errorf("the rule did not match once its segment existed")
	}

	warned.take()
	if err := client.FlagpoleV1beta1().Segments(ns).Delete(ctx, "employees", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if w := warned.take(); !strings.Contains(w, `Segment "employees" is used by flag(s) f`) {
		t.Errorf("delete warnings: %q", w)
	}
	waitCondition(t, s.Client, ns, "f", "Ready", metav1.ConditionFalse, "SegmentNotFound")

	// Stale: past spec.expiresAt, now or a moment from now.
	got = waitCondition(t, s.Client, ns, "f", "Stale", metav1.ConditionFalse, "NoExpiry")
	soon := metav1.NewTime(time.Now().Add(3 * time.Second).Truncate(time.Second))
	got.Spec.ExpiresAt = &soon
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Update(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCondition(t, s.Client, ns, "f", "Stale", metav1.ConditionFalse, "NotExpired")
	waitCondition(t, s.Client, ns, "f", "Stale", metav1.ConditionTrue, "Expired")
}
