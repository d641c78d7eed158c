//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// TestRolloutPlanThroughKubeAPIServer runs a plan on two replicas of a
// Flagpole of its own behind a Service-like front, registered through the
// APIService: an application reading over OFREP (a ServiceAccount token)
// sees the split move through each step; the leader is stopped in the
// middle of a step and the survivor ends it on time; a step waiting for
// approval waits until rita — who may only create flags/rollout, not edit
// flags — approves; her abort returns everyone to the old variant at once;
// every transition is an Event in kube-apiserver.
func TestRolloutPlanThroughKubeAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const ns = "rollouts"
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	agg := aggregator.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	r1, r2, _ := servePair(ctx, t, agg, "rollouts", "--etcd-prefix", "/flagpole-rollouts")
	waitKubeReaches(ctx, t, r1, ns)

	// The application, and rita the release manager.
	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "web-app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"flagpole.dev"}, Resources: []string{"flags/evaluate", "evaluations"}, Verbs: []string{"create"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		name string
		ref  rbacv1.RoleRef
		who  rbacv1.Subject
	}{
		{"web-app", rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-evaluator"}, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: "web-app", Namespace: ns}},
		{"rita", rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "flagpole:rollout-approver"}, rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: "rita"}},
	} {
		if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: b.name}, RoleRef: b.ref, Subjects: []rbacv1.Subject{b.who}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "web-app", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	admin := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1().Flags(ns)
	ritaConfig := e2e.RestConfig(userAdmin)
	ritaConfig.Impersonate = rest.ImpersonationConfig{UserName: "rita"}
	rita := clientset.NewForConfigOrDie(ritaConfig).FlagpoleV1beta1().Flags(ns)

	f := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "new-search"},
		Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, DefaultVariant: "off",
			Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
			Rules: []v1beta1.Rule{{Name: "everyone", Rollout: &v1beta1.Rollout{
				Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 0}, {Variant: "off", Weight: 100}},
				Plan: &v1beta1.RolloutPlan{Variant: "on", Steps: []v1beta1.RolloutStep{
					{Weight: 20, Duration: &metav1.Duration{Duration: 15 * time.Second}},
					{Weight: 50, Approval: true},
					{Weight: 100},
				}},
			}}}},
	}
	// The application's view: OFREP at each replica, as a Service would
	// send it, for 200 users.
	ca := e2e.ServingCertFile()
	app, err := rest.HTTPClientFor(&rest.Config{BearerToken: tr.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: ca}})
	if err != nil {
		t.Fatal(err)
	}
	const users = 200
	share := func(r *replica) (int, map[int]bool, error) {
		on := map[int]bool{}
		for i := range users {
			url := "https://127.0.0.1:" + strconv.Itoa(r.port) + "/namespaces/" + ns + "/ofrep/v1/evaluate/flags/new-search"
			resp, err := app.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"context":{"targetingKey":"user-%d"}}`, i)))
			if err != nil {
				return 0, nil, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return 0, nil, fmt.Errorf("OFREP %d: %s", resp.StatusCode, body)
			}
			if strings.Contains(string(body), `"variant":"on"`) {
				on[i] = true
			}
		}
		return 100 * len(on) / users, on, nil
	}
	waitShare := func(what string, r *replica, lo, hi int, within time.Duration) map[int]bool {
		t.Helper()
		var last int
		var on map[int]bool
		if err := tcluster.WaitFor(ctx, nil, within, func() error {
			var err error
			if last, on, err = share(r); err != nil {
				return err
			}
			if last < lo || last > hi {
				return fmt.Errorf("%d%% on", last)
			}
			return nil
		}); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %d%% of %d users on", what, last, users)
		return on
	}
	// Both replicas answer the application before the plan starts (its
	// token reviewed, the RoleBinding in their authorization cache): the
	// probe is a flag serving off.
	probe := f.DeepCopy()
	probe.Name, probe.Spec.Rules = "probe", nil
	if _, err := admin.Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*replica{r1, r2} {
		if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
			return ofrepVariant("https://127.0.0.1:"+strconv.Itoa(r.port), ca, ns, "probe", tr.Status.Token, `{}`, "off")
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Create(ctx, f, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	at20 := waitShare("step 1 (20%), at replica 1", r1, 10, 30, 10*time.Second)
	waitShare("step 1 (20%), at replica 2", r2, 10, 30, 10*time.Second)

	// Stop the leader in the middle of the step; the survivor ends it.
	leader, survivor := r1, r2
	if replicaLeads(t, r2) {
		leader, survivor = r2, r1
	}
	got, err := admin.Get(ctx, "new-search", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	end := got.Status.Rollouts[0].NextStepAt.Time
	if time.Until(end) < 2*time.Second {
		t.Fatalf("the first step ends in %s: too little left to stop the leader in it", time.Until(end))
	}
	leader.stop()
	t.Logf("stopped the leader %s, %s before the step's end", leader.name, time.Until(end).Round(100*time.Millisecond))
	at50 := waitShare("step 2 (50%), after the leader stopped", survivor, 40, 60, 30*time.Second)
	got, err = admin.Get(ctx, "new-search", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := got.Status.Rollouts[0]
	if st.Step != 1 || st.Phase != v1beta1.RolloutPhaseWaiting || len(st.Steps) != 2 {
		t.Fatalf("after the handover: %+v", st)
	}
	if late := st.StepStartedAt.Sub(end); late < -time.Second || late > 5*time.Second {
		t.Errorf("the survivor ended the step %s after its end", late)
	}
	for u := range at20 {
		if !at50[u] {
			t.Errorf("user-%d had on at 20%% and lost it at 50%%", u)
		}
	}

	// Waiting for approval: nothing moves by itself.
	time.Sleep(3 * time.Second)
	if p, _, _ := share(survivor); p > 60 {
		t.Errorf("a step waiting for approval moved: %d%% on", p)
	}
	// rita may approve, not edit.
	got.Spec.Description = "rita edits"
	if _, err := rita.Update(ctx, got, metav1.UpdateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("rita updated the flag: %v", err)
	}
	if _, err := rita.Rollout(ctx, "new-search", &v1beta1.RolloutAction{Action: v1beta1.RolloutActionApprove, Message: "search latency flat"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitShare("approved: step 3 (100%)", survivor, 100, 100, 15*time.Second)
	abortedAt := time.Now()
	if _, err := rita.Rollout(ctx, "new-search", &v1beta1.RolloutAction{Action: v1beta1.RolloutActionAbort, Message: "support tickets"}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitShare("aborted: everyone back on off", survivor, 0, 0, 8*time.Second)
	t.Logf("everyone back on off %s after the abort", time.Since(abortedAt).Round(100*time.Millisecond))

	// The transitions, as Events of the flag in kube-apiserver, rita named.
	want := []string{"RolloutStarted", "RolloutAdvanced", "RolloutApproved", "RolloutAborted"}
	if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		events, err := kube.EventsV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "regarding.name=new-search"})
		if err != nil {
			return err
		}
		seen := map[string]string{}
		for _, e := range events.Items {
			seen[e.Reason] = e.Note
		}
		for _, r := range want {
			if _, ok := seen[r]; !ok {
				return fmt.Errorf("no %s event; have %v", r, seen)
			}
		}
		if !strings.Contains(seen["RolloutApproved"], "approved by rita: search latency flat") || !strings.Contains(seen["RolloutAborted"], "aborted by rita: support tickets") {
			return fmt.Errorf("the events do not name rita: %v", seen)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// replicaLeads reads flagpole_leader from r's /metrics.
func replicaLeads(t *testing.T, r *replica) bool {
	t.Helper()
	c, err := rest.HTTPClientFor(e2e.directFlagpoleConfigAt(r.port, userAdmin, "system:masters"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(e2e.directFlagpoleConfigAt(r.port, userAdmin, "system:masters").Host + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(body), "\nflagpole_leader 1\n")
}
