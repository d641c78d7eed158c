package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// contextString is a context holding one string as long as the cap allows.
func contextString(key string) map[string]any {
	return map[string]any{key: strings.Repeat("a", evaluation.MaxContextBytes-len(`{"":""}`)-len(key))}
}

// An expression that would build far more than it reads is refused when
// written, with its estimate; an expression that stays within its estimate
// but whose rules together exceed a request's budget answers ERROR/GENERAL
// (never a 5xx), and so does each later flag of a bulk evaluation that
// needs CEL.
func TestHostileExpressions(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	const ns = "hostile"
	flags := s.Client.FlagpoleV1beta1().Flags(ns)

	// The example: a 16 KiB string replaced into itself.
	bomb := boolFlag("bomb")
	bomb.Spec.Rules = []v1beta1.Rule{{Name: "r", When: `size(context.s.replace("a", context.s)) > 0`, Variant: "on"}}
	_, err := flags.Create(ctx, bomb, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.rules[0].when") || !regexp.MustCompile(`estimated cost [0-9]{8,} exceeds the limit 1000000`).MatchString(err.Error()) {
		t.Errorf("replace bomb: %v, want 422 at spec.rules[0].when with the estimate", err)
	}
	_, err = s.Client.FlagpoleV1beta1().Segments(ns).Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "bomb"},
		Spec: v1beta1.SegmentSpec{When: `"%s".format([context.xs.map(x, context.s)]) != ""`}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !hasCause(err, "spec.when") || !strings.Contains(err.Error(), "string.format needs a literal format string") {
		t.Errorf("format bomb: %v, want 422 at spec.when", err)
	}

	// Accepted: about 660,000 units per rule (it builds a 2.6 MB string).
	// Four rules fit a request's budget of 10,000,000; twenty do not.
	costly := `!(context.s.replace("a", "` + strings.Repeat("b", 160) + `") != "")`
	withRules := func(name string, n int) *v1beta1.Flag {
		f := boolFlag(name)
		f.Spec.Rules = nil
		for i := range n {
			f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: costly, Variant: "on"})
		}
		return f
	}
	createFlag(t, s.Client, ns, withRules("many-rules", 20))
	for _, name := range []string{"a-four", "b-four", "c-four", "d-four", "e-four"} {
		createFlag(t, s.Client, ns, withRules(name, 4))
	}
	static := boolFlag("z-static")
	static.Spec.Rules = nil
	createFlag(t, s.Client, ns, static)
	hostileContext := contextString("s")

	// The request's CEL time limit (1 s of wall clock) is the other bound:
	// under -race on a busy machine the 16 rules it takes to spend the
	// budget can outlast it, which answers ERROR/GENERAL too but says
	// nothing of the budget. A few attempts give the machine the chance.
	res := evaluate(t, s, ns, "many-rules", hostileContext)
	for attempt := 1; attempt < 4 && strings.Contains(res.ErrorMessage, "time limit"); attempt++ {
		t.Logf("attempt %d hit the time limit before the budget; again", attempt)
		res = evaluate(t, s, ns, "many-rules", hostileContext)
	}
	if res.Reason != "ERROR" || res.ErrorCode != "GENERAL" || !strings.Contains(res.ErrorMessage, "cost budget of 10000000 is spent") {
		t.Errorf("a flag whose rules exceed the budget: %+v", res.FlagEvaluation)
	}
	if res := evaluate(t, s, ns, "a-four", hostileContext); res.Reason != "DEFAULT" {
		t.Errorf("a flag within the budget: %+v", res.FlagEvaluation)
	}

	// A bulk evaluation shares one budget: 4 rules × 660,000 units per
	// flag run out during the fourth flag; the static flag needs none.
	var bulk *v1beta1.Evaluation
	for attempt := 1; ; attempt++ {
		var err error
		bulk, err = s.Client.FlagpoleV1beta1().Evaluations(ns).Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{
			Flags:   []string{"a-four", "b-four", "c-four", "d-four", "e-four", "z-static"},
			Context: evalContext(hostileContext)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		timedOut := slices.ContainsFunc(bulk.Status.Results, func(r v1beta1.FlagEvaluation) bool { return strings.Contains(r.ErrorMessage, "time limit") })
		if !timedOut || attempt == 4 {
			break
		}
		t.Logf("bulk attempt %d hit the time limit before the budget; again", attempt)
	}
	var got []string
	for _, r := range bulk.Status.Results {
		got = append(got, r.Key+":"+r.Reason+r.ErrorCode)
	}
	if want := "a-four:DEFAULT,b-four:DEFAULT,c-four:DEFAULT,d-four:ERRORGENERAL,e-four:ERRORGENERAL,z-static:STATIC"; strings.Join(got, ",") != want {
		t.Errorf("bulk evaluation on one budget:\n got %s\nwant %s", strings.Join(got, ","), want)
	}
}

// A loop CEL charges little for but that takes long stops at the request's
// time limit: the answer comes back, as ERROR/GENERAL, within about a
// second.
func TestSlowLoopsStopAtTheTimeLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const ns = "slow"
	f := boolFlag("slow")
	f.Spec.Rules = nil
	for i := range 40 {
		f.Spec.Rules = append(f.Spec.Rules, v1beta1.Rule{Name: fmt.Sprintf("r%d", i), When: `!context.xs.all(x, x == 1)`, Variant: "on"})
	}
	createFlag(t, s.Client, ns, f)
	n := (evaluation.MaxContextBytes - len(`{"context":{"xs":[]}}`)) / 2
	xs := make([]int, n)
	for i := range xs {
		xs[i] = 1
	}
	body, _ := json.Marshal(map[string]any{"context": map[string]any{"xs": xs}})

	start := time.Now()
	code, out := do(t, s.AdminConfig, "POST", "/apis/flagpole.dev/v1beta1/namespaces/slow/flags/slow/evaluate", "application/json", body)
	took := time.Since(start)
	var res v1beta1.EvaluationResult
	if err := json.Unmarshal(out, &res); err != nil || code != http.StatusCreated {
		t.Fatalf("%d %s", code, out)
	}
	if res.Reason != "ERROR" || res.ErrorCode != "GENERAL" || !strings.Contains(res.ErrorMessage, "time limit") {
		t.Errorf("%+v", res.FlagEvaluation)
	}
	if took > evaluation.RequestTimeLimit+5*time.Second {
		t.Errorf("answered after %s", took)
	}
}

// An explicit null context is not an object: 422 at context, on both
// evaluation endpoints, as docs/evaluation.md says; an absent one is empty.
func TestNullContextIsInvalid(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const ns = "null-context"
	createFlag(t, s.Client, ns, boolFlag("target"))
	base := "/apis/flagpole.dev/v1beta1/namespaces/" + ns
	for path, body := range map[string]string{
		base + "/flags/target/evaluate": `{"context":null}`,
		base + "/evaluations":           `{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation","spec":{"context":null}}`,
	} {
		code, out := do(t, s.AdminConfig, "POST", path, "application/json", []byte(body))
		if code != http.StatusUnprocessableEntity || !strings.Contains(string(out), `"field":"`) || !strings.Contains(string(out), "context") {
			t.Errorf("POST %s %s: %d %s, want 422 at the context", path, body, code, out)
		}
	}
	for path, body := range map[string]string{
		base + "/flags/target/evaluate": `{}`,
		base + "/evaluations":           `{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation","spec":{}}`,
	} {
		if code, out := do(t, s.AdminConfig, "POST", path, "application/json", []byte(body)); code != http.StatusCreated {
			t.Errorf("POST %s %s: %d %s, want 201 (an absent context is empty)", path, body, code, out)
		}
	}
	// Typed clients leave an unset context out rather than sending null.
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Evaluate(context.Background(), "target", &v1beta1.EvaluationRequest{}, metav1.CreateOptions{}); err != nil {
		t.Errorf("typed client without a context: %v", err)
	}
}
