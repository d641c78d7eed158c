//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	clientv3 "go.etcd.io/etcd/client/v3"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/controllers/leaderelection"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/openfeature"
	"github.com/flagpole-dev/flagpole/pkg/usage/etcdrecords"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	openfeaturejs "github.com/flagpole-dev/flagpole/test/openfeature-js"
)

// The lifecycle replicas' periods: short, so that the test sees flags turn
// stale; the flush every 2 s, so that each replica sees the other's counts.
var lifecycleArgs = []string{
	// Their own prefix: a Flagpole of their own on the e2e's etcd, whose
	// leader is one of them (the e2e's replica runs the default periods).
	"--etcd-prefix", "/flagpole-lifecycle",
	"--usage-flush-interval", "2s",
	"--stale-unused-period", "60s",
	"--stale-single-variant-period", "30s",
}

// TestFlagLifecycle runs two replicas of a Flagpole of its own behind a
// Service-like front, registered through the APIService, and checks what
// the issue promises people and applications:
//   - traffic from the npm OFREP provider (straight at each replica) and
//     from the Go provider (through kube-apiserver, reporting its counts)
//     moves LAST-EVALUATED and the per-variant counts of the right flag,
//     merged across the replicas and kept across a restart of both;
//   - a flag nobody evaluates turns stale (Unused), a flag serving one
//     variant turns stale (SingleVariant), both selectable;
//   - a change made by an impersonated user (with the default edit role,
//     which Flagpole's aggregated role extends) is in the flag's history
//     under that user, and a one-request rollback restores it;
//   - kubectl describe shows the Events.
func TestFlagLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	agg := aggregator.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	const ns = "flaglife"
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	r1, r2, f := servePair(ctx, t, agg, "flaglife", lifecycleArgs...)
	waitKubeReaches(ctx, t, r1, ns)
	throughKube := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1()

	// The applications: web-app evaluates over OFREP (the documented
	// flag-evaluator Role); inproc-app evaluates in process, so it reads
	// flags and reports what it evaluated.
	for _, sa := range []string{"web-app", "inproc-app"} {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, rules := range map[string][]rbacv1.PolicyRule{
		"flag-evaluator": {{APIGroups: []string{"flagpole.dev"}, Resources: []string{"flags/evaluate", "evaluations", "usagereports"}, Verbs: []string{"create"}}},
		"flag-provider": {
			{APIGroups: []string{"flagpole.dev"}, Resources: []string{"flags", "segments", "flagoverrides"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"flagpole.dev"}, Resources: []string{"usagereports"}, Verbs: []string{"create"}},
		},
	} {
		if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []struct{ name, role, kind, subject string }{
		{"web-app", "flag-evaluator", "Role", "web-app"},
		{"inproc-app", "flag-provider", "Role", "inproc-app"},
		// dave edits with the default edit role, and bob reads with view:
		// Flagpole's aggregated roles give them flags and their history.
		{"dave-edits", "edit", "ClusterRole", "dave"},
		{"bob-views", "view", "ClusterRole", "bob"},
	} {
		subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: b.subject, Namespace: ns}
		if b.kind == "ClusterRole" {
			subject = rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: b.subject}
		}
		if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: b.name},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: b.kind, Name: b.role},
			Subjects:   []rbacv1.Subject{subject},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(sa string) string {
		tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	webToken, inprocToken := token("web-app"), token("inproc-app")

	flags := throughKube
	vipFlag := func(name string) *v1beta1.Flag {
		return &v1beta1.Flag{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, Owner: "team-e2e",
				Variants:       []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
				DefaultVariant: "off",
				Rules:          []v1beta1.Rule{{Name: "vip", When: `context.plan == "vip"`, Variant: "on"}}},
		}
	}
	oneVariant := vipFlag("one-variant")
	oneVariant.Spec.DefaultVariant, oneVariant.Spec.Rules = "on", nil
	oneVariant.Spec.Lifecycle = &v1beta1.FlagLifecycle{Kind: v1beta1.FlagLifecycleRelease}
	for _, fl := range []*v1beta1.Flag{vipFlag("usage-flag"), vipFlag("idle-flag"), oneVariant} {
		if _, err := flags.Flags(ns).Create(ctx, fl, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Each replica answers OFREP once its watch has the flag and the
	// RoleBinding has reached its SubjectAccessReview cache. Only the probe
	// that succeeds is an evaluation (a 403 or FLAG_NOT_FOUND counts
	// nothing): one off per replica, which the test expects.
	ca := e2e.ServingCertFile()
	const probes = 2
	for _, r := range []*replica{r1, r2} {
		host := "https://127.0.0.1:" + strconv.Itoa(r.port)
		if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
			return ofrepVariant(host, ca, ns, "usage-flag", webToken, `{}`, "off")
		}); err != nil {
			t.Fatal(err)
		}
	}
	// one-variant is evaluated all along (on the first replica), so that
	// it serves one variant for the whole period; usage-flag too once its
	// counts are checked, so that it stays in use.
	stopBusy := make(chan struct{})
	busyDone := make(chan struct{})
	var usageFlagBusy atomic.Bool
	go func() {
		defer close(busyDone)
		host := "https://127.0.0.1:" + strconv.Itoa(r1.port)
		for {
			select {
			case <-stopBusy:
				return
			case <-time.After(500 * time.Millisecond):
				_ = ofrepVariant(host, ca, ns, "one-variant", webToken, `{}`, "on")
				if usageFlagBusy.Load() {
					// Both variants: in use, and not rolled out to one.
					_ = ofrepVariant(host, ca, ns, "usage-flag", webToken, `{}`, "off")
					_ = ofrepVariant(host, ca, ns, "usage-flag", webToken, `{"plan":"vip"}`, "on")
				}
			}
		}
	}()
	defer func() { close(stopBusy); <-busyDone }()

	// The npm OFREP provider, straight at each replica: 5 on and 5 off each.
	const jsEach = 5
	for _, r := range []*replica{r1, r2} {
		openfeaturejs.Run(t, openfeaturejs.Env{
			BaseURL:          "https://127.0.0.1:" + strconv.Itoa(r.port) + "/namespaces/" + ns,
			CAFiles:          []string{ca, e2e.CA.CACertFile()},
			AppToken:         webToken,
			UsageFlag:        "usage-flag",
			UsageEvaluations: jsEach,
		}, "usage.test.mjs")
	}
	// The Go provider, in process, through kube-apiserver with its own
	// ServiceAccount: 3 on, reported within a second.
	providerConfig := rest.CopyConfig(e2e.RestConfig(userAdmin))
	providerConfig.TLSClientConfig = rest.TLSClientConfig{CAFile: providerConfig.TLSClientConfig.CAFile, CAData: providerConfig.TLSClientConfig.CAData}
	providerConfig.BearerToken = inprocToken
	p, err := openfeature.NewProvider(providerConfig, ns, openfeature.WithUsageReportInterval(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Init(of.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if d := p.BooleanEvaluation(ctx, "usage-flag", false, of.FlattenedContext{"targetingKey": fmt.Sprint("go-", i), "plan": "vip"}); !d.Value {
			t.Fatalf("the Go provider's evaluation: %+v", d)
		}
	}
	p.Shutdown() // sends what is left

	wantOn, wantOff := int64(2*jsEach+3), int64(2*jsEach+probes)
	checkUsage := func(when string) {
		t.Helper()
		if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
			fl, err := flags.Flags(ns).Get(ctx, "usage-flag", metav1.GetOptions{})
			if err != nil {
				return err
			}
			w := window(fl, "24h")
			if count(w, "on") != wantOn || count(w, "off") != wantOff || fl.Status.Usage.LastEvaluated == nil {
				return fmt.Errorf("%s: usage-flag's last day %+v, want %d on and %d off", when, w, wantOn, wantOff)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	checkUsage("merged across both replicas and the provider's reports")
	out := mustKubectl(t, userAdmin, "get", "flags", "-n", ns)
	if !regexp.MustCompile(`(?m)^usage-flag\s+Boolean\s+Enabled\s+off\s+1\s+[0-9][0-9smh]*\s+<none>\s+\S+$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^idle-flag\s+Boolean\s+Enabled\s+off\s+1\s+never\s+`).MatchString(out) {
		t.Errorf("kubectl get flags: LAST-EVALUATED of usage-flag an age, of idle-flag never:\n%s", out)
	}

	// Both replicas restart (new processes, new records): the counts stay,
	// also once the leader has moved the old records into the archive.
	for _, r := range []*replica{r1, r2} {
		if err := r.p.Stop(60 * time.Second); err != nil {
			t.Fatalf("%s did not exit cleanly: %v", r.name, err)
		}
	}
	for i, r := range []*replica{r1, r2} {
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.waitReady(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	checkUsage("after a restart of both replicas")
	// Five flush intervals after they stopped, the leader moves the stopped
	// processes' records into the archive: two records and the archive.
	etcd, err := leaderelection.NewClient(storagebackend.TransportConfig{ServerList: []string{e2e.FlagpoleEtcdURL}})
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Close()
	prefix := etcdrecords.Prefix("/flagpole-lifecycle")
	if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
		resp, err := etcd.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			return err
		}
		var keys []string
		for _, kv := range resp.Kvs {
			keys = append(keys, strings.TrimPrefix(string(kv.Key), prefix))
		}
		if len(keys) != 3 || keys[0] != "archive" {
			return fmt.Errorf("usage records: %v, want the archive and the two running replicas'", keys)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	checkUsage("after the stopped replicas' records were archived")
	usageFlagBusy.Store(true)

	// History: dave (impersonated, with the edit role) flips the kill switch.
	mustKubectl(t, userAdmin, "patch", "flag", "usage-flag", "-n", ns, "--as", "dave", "--type", "merge", "-p", `{"spec":{"state":"Disabled"}}`)
	var revs []v1beta1.FlagRevision
	if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		list, err := flags.FlagRevisions(ns).List(ctx, metav1.ListOptions{FieldSelector: "flag.name=usage-flag"})
		if err != nil {
			return err
		}
		revs = list.Items
		if len(revs) != 2 || revs[1].Change.User != "dave" {
			return fmt.Errorf("revisions of usage-flag: %+v", revs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out = mustKubectl(t, "bob", "get", "flagrevisions", "-n", ns, "--field-selector", "flag.name=usage-flag")
	if !regexp.MustCompile(`(?m)^usage-flag\.2\s+usage-flag\s+2\s+dave\s+spec\.state: "Enabled" → "Disabled"\s+\S+$`).MatchString(out) {
		t.Errorf("kubectl get flagrevisions as a viewer:\n%s", out)
	}
	// Rollback: one request, replacing the spec with revision 1's.
	spec, err := json.Marshal(revs[0].Spec)
	if err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, userAdmin, "patch", "flag", "usage-flag", "-n", ns, "--as", "dave", "--type", "json",
		"-p", `[{"op":"replace","path":"/spec","value":`+string(spec)+`}]`)
	restored, err := flags.Flags(ns).Get(ctx, "usage-flag", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if restored.Spec.State != v1beta1.FlagStateEnabled || restored.Generation != 3 || restored.Status.LastChange.User != "dave" {
		t.Errorf("after the rollback: %s, generation %d, %+v", restored.Spec.State, restored.Generation, restored.Status.LastChange)
	}

	// Staleness: idle-flag is never evaluated, one-variant serves on only.
	if err := tcluster.WaitFor(ctx, nil, 90*time.Second, func() error {
		out, err := e2e.Kubectl(userAdmin, "get", "flags", "-n", ns, "--field-selector", "status.stale=true", "-o", "name")
		if err != nil {
			return err
		}
		if out != "flag.flagpole.dev/idle-flag\nflag.flagpole.dev/one-variant\n" {
			return fmt.Errorf("stale flags: %q", out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out = mustKubectl(t, userAdmin, "get", "flags", "-n", ns)
	if !regexp.MustCompile(`(?m)^idle-flag\s.*\sUnused\s+\S+$`).MatchString(out) || !regexp.MustCompile(`(?m)^one-variant\s.*\sSingleVariant\s+\S+$`).MatchString(out) {
		t.Errorf("STALE column:\n%s", out)
	}

	// The Events, as kubectl describe shows them.
	describe := func(flag string, want ...string) {
		t.Helper()
		var out string
		if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
			var err error
			if out, err = e2e.Kubectl(userAdmin, "describe", "flag", flag, "-n", ns); err != nil {
				return err
			}
			for _, w := range want {
				if !regexp.MustCompile(w).MatchString(out) {
					return fmt.Errorf("describe flag %s lacks %q", flag, w)
				}
			}
			return nil
		}); err != nil {
			t.Errorf("%v:\n%s", err, out)
		}
	}
	from := `flagpole\.dev/flagpole-apiserver\s+`
	describe("usage-flag", `Normal\s+FlagDisabled\s+\S+\s+`+from+`spec\.state Enabled → Disabled \(by dave, generation 2\)`,
		`Normal\s+FlagEnabled\s+\S+\s+`+from+`spec\.state Disabled → Enabled \(by dave, generation 3\)`)
	describe("idle-flag", `Warning\s+Stale\s+\S+\s+`+from+`Unused: never evaluated since`)
	describe("one-variant", `Warning\s+Stale\s+\S+\s+`+from+`SingleVariant: every evaluation for 30s got variant "on"`)
}

func window(f *v1beta1.Flag, name string) v1beta1.UsageWindow {
	if f.Status.Usage != nil {
		for _, w := range f.Status.Usage.Windows {
			if w.Window == name {
				return w
			}
		}
	}
	return v1beta1.UsageWindow{}
}

func count(w v1beta1.UsageWindow, variant string) int64 {
	for _, v := range w.Variants {
		if v.Name == variant {
			return v.Count
		}
	}
	return 0
}

// ofrepVariant evaluates a flag over OFREP for a context (JSON) and checks
// the variant.
func ofrepVariant(host, caFile, ns, flag, token, context, want string) error {
	client, err := rest.HTTPClientFor(&rest.Config{Host: host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}})
	if err != nil {
		return err
	}
	resp, err := client.Post(host+"/namespaces/"+ns+"/ofrep/v1/evaluate/flags/"+flag, "application/json", strings.NewReader(`{"context":`+context+`}`))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Variant string `json:"variant"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Variant != want {
		return fmt.Errorf("OFREP %s: %d %+v %v", flag, resp.StatusCode, body, err)
	}
	return nil
}
