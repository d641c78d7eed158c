package pluginsuite

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/manifest"
)

// Run runs every command against env, in order: they share the namespace's
// flags.
func Run(t *testing.T, env Env) {
	ctx := context.Background()
	ns := env.Namespaces[0]
	home := t.TempDir()
	admin := Plugin{Bin: env.Plugin, Kubeconfig: env.Admin, Home: home, Namespace: ns}
	denied := Plugin{Bin: env.Plugin, Kubeconfig: env.Denied, Home: t.TempDir(), Namespace: ns}
	fp := env.Client.FlagpoleV1beta1()
	Fixtures(t, env.Client, ns)

	t.Run("usage errors", func(t *testing.T) {
		admin.Fails(t, exit.Usage, []string{"frobnicate"}, `unknown command "frobnicate"`, "hint: see: kubectl flagpole --help")
		admin.Fails(t, exit.Usage, []string{"get", "--frobnicate"}, "unknown flag: --frobnicate")
		admin.Fails(t, exit.Usage, []string{"status"}, "accepts 1 arg(s), received 0")
		admin.Fails(t, exit.Usage, []string{"get", "-o", "bogus"}, "bogus")
		admin.Fails(t, exit.Usage, []string{"rollout", "checkout", "on=ten"}, `"on=ten": not VARIANT=WEIGHT`)
		admin.Fails(t, exit.Usage, []string{"evaluate"}, "no flag to evaluate")
		admin.Fails(t, exit.Usage, []string{"evaluate", "checkout", "-c", "plan"}, `-c "plan": not key=value`)
	})

	t.Run("get", func(t *testing.T) {
		out := admin.Must(t, "get")
		if !regexp.MustCompile(`(?m)^NAME\s+TYPE\s+STATE\s+DEFAULT\s+RULES\s+LAST-EVALUATED\s+STALE\s+AGE$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^checkout\s+Boolean\s+Enabled\s+off\s+3\s`).MatchString(out) || !strings.Contains(out, "banner-color") {
			t.Errorf("get: the server's table, with both flags:\n%s", out)
		}
		if out := admin.Must(t, "get", "-o", "wide"); !strings.Contains(out, "OWNER") || !strings.Contains(out, "team-checkout") {
			t.Errorf("get -o wide:\n%s", out)
		}
		if out := admin.Must(t, "get", "-A"); !regexp.MustCompile(`(?m)^NAMESPACE\s+NAME`).MatchString(out) || !regexp.MustCompile(`(?m)^`+ns+`\s+checkout\s`).MatchString(out) {
			t.Errorf("get -A has a namespace column:\n%s", out)
		}
		page := admin.Must(t, "get", "checkout")
		for _, want := range []string{"Flag:", ns + "/checkout", "State:", "Enabled", "Default:", "off = false",
			"1. staff", "segment:", "employees", "2. vip", `context.plan == "vip"`, "3. gradual", "██░░░░░░░░░░░░░░░░░░ 10% (weight 10)", "90%", "Overrides:", "none", "Ready", "Resolved"} {
			if !strings.Contains(page, want) {
				t.Errorf("get checkout lacks %q:\n%s", want, page)
			}
		}
		var f v1beta1.Flag
		if err := json.Unmarshal([]byte(admin.Must(t, "get", "checkout", "-o", "json")), &f); err != nil || f.Kind != "Flag" || f.APIVersion != "flagpole.dev/v1beta1" || f.Name != "checkout" {
			t.Errorf("get -o json: %v %+v", err, f.TypeMeta)
		}
		if out := admin.Must(t, "get", "-o", "name"); !strings.Contains(out, "flag.flagpole.dev/checkout") {
			t.Errorf("get -o name:\n%s", out)
		}
		admin.Fails(t, exit.NotFound, []string{"get", "no-such-flag"}, `"no-such-flag" not found`, "hint: list what there is with: kubectl flagpole get -n "+ns)
		admin.Fails(t, exit.NotFound, []string{"status", "no-such-flag"}, "not found")
	})

	t.Run("evaluate and explain", func(t *testing.T) {
		out := waitAnswer(t, admin, "TARGETING_MATCH", "evaluate", "checkout", "-c", "email=ann@example.com", "--targeting-key", "ann")
		if !regexp.MustCompile(`(?m)^checkout\s+true\s+on\s+TARGETING_MATCH\s+rule staff$`).MatchString(out) {
			t.Errorf("evaluate for a member of employees:\n%s", out)
		}
		out = admin.Must(t, "evaluate", "checkout", "-c", "plan=vip", "-c", "age=42", "-c", `nested.level={"x":1}`)
		if !regexp.MustCompile(`(?m)^checkout\s+true\s+on\s+TARGETING_MATCH\s+rule vip$`).MatchString(out) {
			t.Errorf("evaluate -c plan=vip:\n%s", out)
		}
		var res v1beta1.EvaluationResult
		if err := json.Unmarshal([]byte(admin.Must(t, "evaluate", "checkout", "--targeting-key", "user-1", "-o", "json")), &res); err != nil || res.Reason != "SPLIT" || res.Metadata.Rule != "gradual" {
			t.Errorf("evaluate -o json: %v %+v", err, res.FlagEvaluation)
		}
		out = admin.Must(t, "evaluate", "--all", "--targeting-key", "user-1")
		if !regexp.MustCompile(`(?m)^banner-color\s+"#f00"\s+red\s+STATIC\s+-$`).MatchString(out) || !strings.Contains(out, "SPLIT") {
			t.Errorf("evaluate --all:\n%s", out)
		}
		if out := admin.Must(t, "evaluate", "checkout"); !strings.Contains(out, "ERROR TARGETING_KEY_MISSING") {
			t.Errorf("a rollout without a targeting key is an ERROR answer, not a failure:\n%s", out)
		}
		admin.Fails(t, exit.NotFound, []string{"evaluate", "no-such-flag"}, "not found")

		out = admin.Must(t, "explain", "checkout", "-c", "plan=free", "--targeting-key", "intern-1", "-c", "email=i@example.com")
		for _, want := range []string{"Decided by:", `rule "gradual"`, "Rules tried:"} {
			if !strings.Contains(out, want) {
				t.Errorf("explain lacks %q:\n%s", want, out)
			}
		}
		for _, row := range []string{`(?m)^\s+1\s+staff\s+Excluded\s+employees\s+the segment excludes the targeting key$`, `(?m)^\s+2\s+vip\s+False\s+-\s+when is false$`, `(?m)^\s+3\s+gradual\s+Matched\s`} {
			if !regexp.MustCompile(row).MatchString(out) {
				t.Errorf("explain: no line matching %s:\n%s", row, out)
			}
		}
		out = admin.Must(t, "explain", "checkout", "--targeting-key", "u")
		if !regexp.MustCompile(`(?m)^\s+1\s+staff\s+MissingAttribute\s+employees\s+the context has no "email"`).MatchString(out) {
			t.Errorf("explain names the missing attribute:\n%s", out)
		}
		var explained v1beta1.EvaluationResult
		if err := json.Unmarshal([]byte(admin.Must(t, "explain", "checkout", "-c", "plan=vip", "-o", "json")), &explained); err != nil ||
			explained.Explanation == nil || explained.Explanation.Decision != v1beta1.DecisionRule || len(explained.Explanation.Rules) != 2 {
			t.Errorf("explain -o json: %v %+v", err, explained.Explanation)
		}
	})

	t.Run("kill switch", func(t *testing.T) {
		// No terminal to confirm on: refused, nothing changed.
		admin.Fails(t, exit.Cancelled, []string{"disable", "checkout"}, "not confirmed", "hint: pass --yes")
		if f, _ := fp.Flags(ns).Get(ctx, "checkout", metav1.GetOptions{}); f.Spec.State != v1beta1.FlagStateEnabled {
			t.Fatalf("an unconfirmed disable changed the flag: %s", f.Spec.State)
		}
		if out := admin.Must(t, "disable", "checkout", "--dry-run", "--yes"); !strings.Contains(out, "would be disabled") {
			t.Errorf("disable --dry-run: %s", out)
		}
		if out := admin.Must(t, "disable", "checkout", "--yes"); !strings.Contains(out, "disabled (kill switch on)") {
			t.Errorf("disable: %s", out)
		}
		waitFlag(t, env.Client, ns, "checkout", "disabled", func(f *v1beta1.Flag) bool { return f.Spec.State == v1beta1.FlagStateDisabled })
		waitAnswer(t, admin, "DISABLED", "evaluate", "checkout", "-c", "plan=vip")
		if out := admin.Must(t, "disable", "checkout", "--yes"); !strings.Contains(out, "already Disabled") {
			t.Errorf("disable twice: %s", out)
		}
		admin.Must(t, "enable", "checkout", "-y")
		waitFlag(t, env.Client, ns, "checkout", "enabled", func(f *v1beta1.Flag) bool { return f.Spec.State == v1beta1.FlagStateEnabled })
		admin.Fails(t, exit.NotFound, []string{"disable", "no-such-flag", "--yes"}, "not found")
	})

	t.Run("set-default and rollout", func(t *testing.T) {
		admin.Must(t, "set-default", "banner-color", "blue")
		waitFlag(t, env.Client, ns, "banner-color", "default blue", func(f *v1beta1.Flag) bool { return f.Spec.DefaultVariant == "blue" })
		admin.Fails(t, exit.Usage, []string{"set-default", "banner-color", "green"}, `has no variant "green"`, "hint: its variants are: red, blue")

		out := admin.Must(t, "rollout", "checkout", "on=25", "off=75%")
		if !strings.Contains(out, `rule "gradual"`) || !strings.Contains(out, "25%") {
			t.Errorf("rollout: %s", out)
		}
		waitFlag(t, env.Client, ns, "checkout", "rollout 25/75", func(f *v1beta1.Flag) bool {
			d := f.Spec.Rules[2].Rollout.Distribution
			return len(d) == 2 && d[0].Weight == 25 && d[1].Weight == 75
		})
		admin.Fails(t, exit.NotFound, []string{"rollout", "checkout", "on=1", "--rule", "nope"}, `has no rule "nope"`)
		admin.Fails(t, exit.Usage, []string{"rollout", "checkout", "on=1", "--rule", "vip"}, "it has no rollout")
		// A flag without a rollout gets one.
		admin.Must(t, "rollout", "banner-color", "red=1", "blue=1")
		waitFlag(t, env.Client, ns, "banner-color", "a rollout rule added", func(f *v1beta1.Flag) bool {
			return len(f.Spec.Rules) == 1 && f.Spec.Rules[0].Name == "rollout" && f.Spec.Rules[0].Rollout != nil
		})
	})

	t.Run("override", func(t *testing.T) {
		out := admin.Must(t, "override", "checkout", "on", "--targeting-key", "tester", "--ttl", "30m", "--name", "for-tester")
		if !strings.Contains(out, "flagoverride "+ns+"/for-tester") || !strings.Contains(out, "in 30m") {
			t.Errorf("override: %s", out)
		}
		o, err := fp.FlagOverrides(ns).Get(ctx, "for-tester", metav1.GetOptions{})
		if err != nil || o.Status.ExpiresAt == nil || o.Spec.TargetingKeys[0] != "tester" {
			t.Fatalf("the override: %v %+v", err, o)
		}
		waitAnswer(t, admin, "override for-tester", "evaluate", "checkout", "--targeting-key", "tester")
		if page := admin.Must(t, "status", "checkout"); !regexp.MustCompile(`for-tester\s+on for tester, expires in 29m|for-tester\s+on for tester, expires in 30m`).MatchString(page) {
			t.Errorf("status shows the override and its time left:\n%s", page)
		}
		admin.Fails(t, exit.Usage, []string{"override", "checkout", "maybe"}, `has no variant "maybe"`)
		admin.Fails(t, exit.Usage, []string{"override", "checkout", "on", "--ttl", "1s"}, "ttl")
	})

	t.Run("conflicts", func(t *testing.T) {
		// A precondition that no longer holds: reported, nothing written.
		f, err := fp.Flags(ns).Get(ctx, "checkout", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stale := f.ResourceVersion
		f.Spec.Owner = "someone-else"
		if _, err := fp.Flags(ns).Update(ctx, f, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		admin.Fails(t, exit.Conflict, []string{"set-default", "checkout", "on", "--if-resource-version", stale}, "it changed since; nothing was written", "hint:")
		if f, _ := fp.Flags(ns).Get(ctx, "checkout", metav1.GetOptions{}); f.Spec.DefaultVariant != "off" {
			t.Errorf("a refused change was written: default %s", f.Spec.DefaultVariant)
		}

		// A writer changing the flag all the time: each plugin change is
		// recomputed on the new flag (or reported), and neither side's
		// change is lost.
		var writes atomic.Int64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
					f, err := fp.Flags(ns).Get(ctx, "checkout", metav1.GetOptions{})
					if err != nil {
						return err
					}
					f.Spec.Description = "writer " + string(rune('a'+i%26))
					_, err = fp.Flags(ns).Update(ctx, f, metav1.UpdateOptions{})
					if err == nil {
						writes.Add(1)
					}
					return err
				})
			}
		}()
		weights := []string{"on=1", "on=2", "on=3", "on=4", "on=5"}
		var applied string
		for _, w := range weights {
			res := admin.Run(t, "", "rollout", "checkout", w, "off=95")
			switch res.Code {
			case exit.OK:
				applied = w
			case exit.Conflict:
				if !strings.Contains(res.Stderr, "nothing was written") {
					t.Errorf("a conflict reported without saying nothing was written:\n%s", res.Stderr)
				}
			default:
				t.Errorf("rollout %s under a concurrent writer: exit %d\n%s", w, res.Code, res.Stderr)
			}
		}
		close(stop)
		wg.Wait()
		if writes.Load() == 0 {
			t.Fatal("the concurrent writer wrote nothing: the test proves nothing")
		}
		f, err = fp.Flags(ns).Get(ctx, "checkout", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(f.Spec.Description, "writer ") || f.Spec.Owner != "someone-else" {
			t.Errorf("the other writer's change was lost: %q %q", f.Spec.Description, f.Spec.Owner)
		}
		if applied == "" {
			t.Fatalf("no rollout got past %d concurrent writes", writes.Load())
		}
		if d := f.Spec.Rules[2].Rollout.Distribution; d[0].Weight != int32(applied[3]-'0') || d[1].Weight != 95 {
			t.Errorf("the last applied rollout %s was lost: %+v", applied, d)
		}
		t.Logf("%d concurrent writes; last rollout applied: %s", writes.Load(), applied)
	})

	t.Run("forbidden", func(t *testing.T) {
		verb := "get"
		if env.DeniedReads {
			verb = "update"
		}
		denied.Fails(t, exit.Forbidden, []string{"disable", "checkout", "--yes"}, "forbidden", "hint: ask for a Role that grants \""+verb+"\" on flags", "kubectl auth can-i "+verb+" flags.flagpole.dev -n "+ns)
		denied.Fails(t, exit.Forbidden, []string{"rollout", "checkout", "on=1"}, "forbidden")
		denied.Fails(t, exit.Forbidden, []string{"override", "checkout", "on"}, "forbidden")
		if !env.DeniedReads {
			denied.Fails(t, exit.Forbidden, []string{"get"}, "forbidden", "kubectl auth can-i list flags.flagpole.dev")
		}
	})

	t.Run("history, diff, rollback", func(t *testing.T) {
		runHistory(t, env, admin, denied)
	})

	t.Run("rollout plan", func(t *testing.T) {
		runPlan(t, env, admin, denied)
	})

	t.Run("manifest", func(t *testing.T) {
		res := admin.Run(t, "", "manifest", "checkout", "banner-color")
		var m manifest.Manifest
		if err := json.Unmarshal([]byte(res.Stdout), &m); res.Code != exit.OK || err != nil {
			t.Fatalf("manifest: exit %d %v\n%s%s", res.Code, err, res.Stdout, res.Stderr)
		}
		checkManifest(t, m)
		if m.Flags["checkout"].FlagType != "boolean" || string(m.Flags["checkout"].DefaultValue) != "false" || m.Flags["banner-color"].FlagType != "string" {
			t.Errorf("manifest: %+v", m.Flags)
		}
		admin.Fails(t, exit.NotFound, []string{"manifest", "-n", env.Namespaces[2] + "-empty"}, "no flags in namespace")
	})

	t.Run("import and export", func(t *testing.T) {
		runImports(t, env, admin)
	})
}
