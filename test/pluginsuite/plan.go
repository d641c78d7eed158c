package pluginsuite

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
)

// releaseFlag rolls "on" out in steps that each wait for approval, so the
// suite moves it by hand, never waiting on time.
func releaseFlag() *v1beta1.Flag {
	f := checkoutFlag()
	f.Name = "release"
	f.Spec.Rules = []v1beta1.Rule{{Name: "gradual", Rollout: &v1beta1.Rollout{
		Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 0}, {Variant: "off", Weight: 100}},
		Plan: &v1beta1.RolloutPlan{Variant: "on", Steps: []v1beta1.RolloutStep{
			{Weight: 10, Approval: true}, {Weight: 50, Approval: true}, {Weight: 100},
		}},
	}}}
	return f
}

func runPlan(t *testing.T, env Env, admin, denied Plugin) {
	ns := env.Namespaces[0]
	if _, err := env.Client.FlagpoleV1beta1().Flags(ns).Create(context.Background(), releaseFlag(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFlag(t, env.Client, ns, "release", "the plan started", func(f *v1beta1.Flag) bool {
		return len(f.Status.Rollouts) == 1 && f.Status.Rollouts[0].Phase == v1beta1.RolloutPhaseWaiting
	})
	out := admin.Must(t, "plan", "release")
	for _, want := range []string{`Rule gradual: rolls on out — Waiting, step 1 of 3, 10% on on\n`, `\n  STEP +WEIGHT +ENDS +GUARD +STARTED\n`,
		`\n▶ 1 +10% +waiting for approval +— +\d{4}-\d\d-\d\dT[0-9:]+Z \(\d+s ago\)\n`, `\n  3 +100% +completes the plan +—`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("plan: no %s in\n%s", want, out)
		}
	}
	if out := admin.Must(t, "status", "release"); !strings.Contains(out, "Waiting, step 1 of 3: 10% on on (kubectl flagpole plan release)") || !strings.Contains(out, "(before the plan, and after an abort)") {
		t.Errorf("status of a flag with a plan:\n%s", out)
	}
	out = admin.Must(t, "plan", "approve", "release", "--message", "dashboards flat")
	if !strings.Contains(out, "flag "+ns+"/release rule gradual: Waiting — step 1 approved by") || !strings.Contains(out, ": dashboards flat; step 2 of 3: 50% on on") {
		t.Errorf("approve: %s", out)
	}
	if out := admin.Must(t, "plan", "pause", "release"); !strings.Contains(out, "Paused — paused by") {
		t.Errorf("pause: %s", out)
	}
	admin.Fails(t, exit.Conflict, []string{"plan", "approve", "release"}, "cannot Approve: the plan is Paused (step 2 of 3)", "hint: see where the plan is: kubectl flagpole plan release -n "+ns)
	admin.Must(t, "plan", "resume", "release")
	// Abort asks; without a terminal it refuses and changes nothing.
	admin.Fails(t, exit.Cancelled, []string{"plan", "abort", "release"}, "pass --yes")
	if out := admin.Must(t, "plan", "abort", "release", "--yes", "--message", "errors up"); !strings.Contains(out, "Aborted — aborted by") || !strings.Contains(out, "everyone is back on the distribution") {
		t.Errorf("abort: %s", out)
	}
	var f v1beta1.Flag
	if err := json.Unmarshal([]byte(admin.Must(t, "plan", "release", "-o", "json")), &f); err != nil || len(f.Status.Rollouts) != 1 || f.Status.Rollouts[0].Phase != v1beta1.RolloutPhaseAborted || f.Spec.Rules[0].Rollout.Plan == nil {
		t.Errorf("plan -o json: %v %+v", err, f)
	}
	admin.Fails(t, exit.NotFound, []string{"plan", "checkout"}, "flag "+ns+"/checkout has no rollout plan", "docs/rollouts.md")
	admin.Fails(t, exit.NotFound, []string{"plan", "release", "--rule", "staff"}, `no rule "staff" with a rollout plan`)
	admin.Fails(t, exit.NotFound, []string{"plan", "approve", "nothing-here"}, "not found")
	denied.Fails(t, exit.Forbidden, []string{"plan", "pause", "release"}, "forbidden", "kubectl auth can-i create flags.flagpole.dev --subresource=rollout -n "+ns)
}
