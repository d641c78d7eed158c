//go:build node

package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// installBudget is the time the install may take, from kubectl apply to
// every Pod Ready and the APIService Available (measured: about 10 s on the
// 2-core machine with the images imported).
const installBudget = 2 * time.Minute

// handoverBudget bounds how long after the leader's Pod is deleted the
// controllers run on the other replica: the election's lease (5 s, which a
// leader that resigns on SIGTERM does not even wait for) plus a resync.
const handoverBudget = 15 * time.Second

// readFlag is the flag the load reads and evaluates; appFlag the one the
// application Pod watches.
const (
	readFlag = "node-e2e-read"
	appFlag  = "node-e2e-app"
)

// TestRealNode installs Flagpole on the node as docs/install.md says, then
// does to it what clusters do, one step after the other (each needs the
// install), and removes it. Every step with traffic counts every failed
// request.
func TestRealNode(t *testing.T) {
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"InstallFromNothing", testInstall},
		{"ApplicationPodSeesChange", testApplication},
		{"RolloutRestart", testRolloutRestart},
		{"LeaderPodDeleted", testLeaderPodDeleted},
		{"EtcdPodDeleted", testEtcdPodDeleted},
		{"UpgradeImageTag", testUpgrade},
		{"DeleteKustomization", testUninstall},
		{"ThreeMemberEtcdMemberDeleted", testThreeMemberEtcd},
		{"CertificateRotation", testCertificateRotation},
		{"HelmInstallUpgradeUninstall", testHelm},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("%s failed: the later steps need it", s.name)
		}
	}
}

func poll(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, error)) error {
	if err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, cond); err != nil {
		return fmt.Errorf("waiting %s for %s: %w", timeout, what, err)
	}
	return nil
}

// removeInstall takes away what an earlier, failed run left: the
// application namespace first (its flags live in Flagpole), then a Helm
// release, then the install (the etcd-ha overlay holds the base's objects).
func removeInstall(ctx context.Context, t *testing.T) {
	t.Helper()
	if _, err := kubectl(ctx, "delete", "namespace", appNamespace, "--ignore-not-found", "--timeout=120s"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(env.root, "_output", "tools", "bin", "helm"),
		"uninstall", "flagpole", "--ignore-not-found", "--wait", "--timeout", "3m", "--kubeconfig", env.kubeconfig)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("helm uninstall: %v\n%s", err, out)
	}
	if _, err := kubectl(ctx, "delete", "-k", "artifacts/deploy/etcd-ha", "--ignore-not-found", "--timeout=180s"); err != nil {
		t.Fatal(err)
	}
}

func apiServiceAvailable(ctx context.Context) (bool, error) {
	as, err := env.aggregator.ApiregistrationV1().APIServices().Get(ctx, apiService, metav1.GetOptions{})
	if err != nil {
		return false, nil
	}
	for _, c := range as.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return c.Status == apiregistrationv1.ConditionTrue, nil
		}
	}
	return false, nil
}

// installReady: both replicas and etcd Ready, the APIService Available.
func installReady(ctx context.Context) (bool, error) {
	d, err := env.kube.AppsV1().Deployments(flagpoleNS).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil || d.Status.ObservedGeneration < d.Generation ||
		d.Status.UpdatedReplicas != *d.Spec.Replicas || d.Status.ReadyReplicas != *d.Spec.Replicas ||
		d.Status.Replicas != *d.Spec.Replicas {
		return false, nil
	}
	s, err := env.kube.AppsV1().StatefulSets(flagpoleNS).Get(ctx, "etcd", metav1.GetOptions{})
	if err != nil || s.Status.ReadyReplicas != *s.Spec.Replicas {
		return false, nil
	}
	return apiServiceAvailable(ctx)
}

// install runs apply (kubectl apply -k, or helm install) on fresh volumes,
// and nothing else: the elected replica makes the serving certificate and
// sets the APIService's caBundle. It waits for every replica and etcd
// member Ready and the APIService Available, within installBudget.
func install(ctx context.Context, t *testing.T, what string, apply func() error) {
	t.Helper()
	if out, err := script(ctx, "hack/node.sh", []string{"volumes"}); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	start := time.Now()
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, installBudget-time.Since(start), "every replica and etcd member Ready and the APIService Available", installReady); err != nil {
		out, _ := kubectl(ctx, "-n", flagpoleNS, "get", "pods,pvc,secrets,events", "-o", "wide")
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("install: %s alone, all Ready and Available in %s (budget %s)",
		what, time.Since(start).Round(100*time.Millisecond), installBudget)
	checkSelfManagedCertificate(ctx, t)
}

// checkSelfManagedCertificate: the APIService trusts exactly the Secret's
// CA bundle, never by skipping verification, and the Secret's certificate
// verifies against it for the Service name.
func checkSelfManagedCertificate(ctx context.Context, t *testing.T) {
	t.Helper()
	as, err := env.aggregator.ApiregistrationV1().APIServices().Get(ctx, apiService, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := env.kube.CoreV1().Secrets(flagpoleNS).Get(ctx, servingCert, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if as.Spec.InsecureSkipTLSVerify || !bytes.Equal(as.Spec.CABundle, secret.Data["ca.crt"]) {
		t.Errorf("APIService %s: insecureSkipTLSVerify %v, caBundle the Secret's ca.crt %v", apiService, as.Spec.InsecureSkipTLSVerify, bytes.Equal(as.Spec.CABundle, secret.Data["ca.crt"]))
	}
	pair, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"])
	if err != nil {
		t.Fatalf("the Secret's key pair: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(secret.Data["ca.crt"])
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: servingHost}); err != nil {
		t.Errorf("the Secret's certificate does not verify for %s: %v", servingHost, err)
	}
}

func applyKustomization(ctx context.Context, dir string) func() error {
	return func() error {
		_, err := kubectl(ctx, "apply", "-k", dir)
		return err
	}
}

func testInstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	removeInstall(ctx, t)
	install(ctx, t, "kubectl apply -k artifacts/deploy", applyKustomization(ctx, "artifacts/deploy"))

	// etcd runs on its claim, bound to the node's static volume.
	pvc, err := env.kube.CoreV1().PersistentVolumeClaims(flagpoleNS).Get(ctx, "data-etcd-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName != "flagpole-etcd-0" {
		t.Errorf("data-etcd-0: %s on %q, want Bound on flagpole-etcd-0", pvc.Status.Phase, pvc.Spec.VolumeName)
	}

	// Restricted Pod Security is enforced on the namespace (the Pods above
	// were admitted under it): a Pod that breaks it is refused.
	ns, err := env.kube.CoreV1().Namespaces().Get(ctx, flagpoleNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
		t.Errorf("namespace %s enforces %q, want restricted", flagpoleNS, got)
	}
	bad := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "not-restricted"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: appImage, SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
		}}},
	}
	_, err = env.kube.CoreV1().Pods(flagpoleNS).Create(ctx, bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a privileged Pod in %s: %v, want Forbidden by PodSecurity", flagpoleNS, err)
	}

	// kubectl works through the APIService.
	if _, err := kubectl(ctx, "get", "flags", "-A"); err != nil {
		t.Fatal(err)
	}

	// Each replica gives the Go runtime 90% of its container's memory
	// limit (1Gi in the deployment) as its soft limit, read from the
	// cgroup the container runtime made (pkg/memlimit).
	logs, err := kubectl(ctx, "logs", "-n", flagpoleNS, "-l", "app.kubernetes.io/name=flagpole-apiserver", "--tail=-1", "--prefix")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs, `"Memory limit set from the container's"`); n != 2 ||
		strings.Count(logs, "containerLimit=1073741824 goMemLimit=966367641") != 2 {
		t.Errorf("%d replicas logged a memory limit from the container's; want both, with containerLimit=1073741824 goMemLimit=966367641:\n%s",
			n, grepLines(logs, "emory limit"))
	}
	setupApplicationNamespace(ctx, t)
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// setupApplicationNamespace: the namespace of the application and the
// load, under restricted Pod Security too, with a ServiceAccount that may
// evaluate (the Role docs/openfeature.md gives applications), Flagpole's CA
// in a ConfigMap, and the flags.
func setupApplicationNamespace(ctx context.Context, t *testing.T) {
	t.Helper()
	core := env.kube.CoreV1()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if _, err := core.Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.ServiceAccounts(appNamespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"flagpole.dev"},
			Resources: []string{"flags/evaluate", "evaluations"}, Verbs: []string{"create"}}},
	}
	if _, err := env.kube.RbacV1().Roles(appNamespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "app-evaluates"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "app", Namespace: appNamespace}},
	}
	if _, err := env.kube.RbacV1().RoleBindings(appNamespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret, err := core.Secrets(flagpoleNS).Get(ctx, servingCert, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "flagpole-ca"},
		Data: map[string]string{"ca.crt": string(secret.Data["ca.crt"])}}
	if _, err := core.ConfigMaps(appNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	flags := env.flagpole.FlagpoleV1beta1().Flags(appNamespace)
	if _, err := flags.Create(ctx, booleanFlag(readFlag), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app := &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: appFlag},
		Spec: v1beta1.FlagSpec{
			Type: v1beta1.FlagTypeString,
			Variants: []v1beta1.Variant{
				{Name: "blue", Value: v1beta1.JSON{Raw: []byte(`"blue"`)}},
				{Name: "green", Value: v1beta1.JSON{Raw: []byte(`"green"`)}},
			},
			DefaultVariant: "blue",
		},
	}
	if _, err := flags.Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// appLine is one line the application prints (test/node/app).
type appLine struct {
	Value   json.RawMessage `json:"value"`
	Variant string          `json:"variant"`
	Status  int             `json:"status"`
	Error   string          `json:"error"`
}

// appLines reads the application Pod's log.
func appLines(ctx context.Context, pod string) ([]appLine, error) {
	raw, err := env.kube.CoreV1().Pods(appNamespace).GetLogs(pod, &corev1.PodLogOptions{}).Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var lines []appLine
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var l appLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

func testApplication(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "flagpole-app"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "app",
			RestartPolicy:      corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:            "app",
				Image:           appImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"-flag", appFlag, "-interval", "300ms", "-duration", "3m"},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					ReadOnlyRootFilesystem:   ptr.To(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "ca", MountPath: "/var/run/flagpole", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "ca", VolumeSource: corev1.VolumeSource{
				ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "flagpole-ca"}}}}},
		},
	}
	if _, err := env.kube.CoreV1().Pods(appNamespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = env.kube.CoreV1().Pods(appNamespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	}()
	sees := func(value string) func(context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			lines, err := appLines(ctx, pod.Name)
			if err != nil {
				return false, nil
			}
			for _, l := range lines {
				if l.Status == 200 && string(l.Value) == value {
					return true, nil
				}
			}
			return false, nil
		}
	}
	if err := poll(ctx, 90*time.Second, `the application's first answer "blue" (Pod started, DNS, Service, token)`, sees(`"blue"`)); err != nil {
		lines, _ := appLines(ctx, pod.Name)
		t.Fatalf("%v; its log: %+v", err, lines)
	}
	changed := time.Now()
	patch := []byte(`{"spec":{"defaultVariant":"green"}}`)
	if _, err := env.flagpole.FlagpoleV1beta1().Flags(appNamespace).Patch(ctx, appFlag, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 30*time.Second, `the application to see "green"`, sees(`"green"`)); err != nil {
		lines, _ := appLines(ctx, pod.Name)
		t.Fatalf("%v; its log: %+v", err, lines)
	}
	t.Logf("the application Pod saw the change within %s", time.Since(changed).Round(100*time.Millisecond))
	lines, err := appLines(ctx, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if l.Status != 200 {
			t.Errorf("the application got a failure: %+v", l)
		}
	}
}

func replicaPods(ctx context.Context, t *testing.T) []corev1.Pod {
	t.Helper()
	pods, err := env.kube.CoreV1().Pods(flagpoleNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=flagpole-apiserver"})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func testRolloutRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := map[string]bool{}
	for _, p := range replicaPods(ctx, t) {
		before[p.Name] = true
	}
	l := startLoad(t, newOFREPClient(ctx, t), readFlag, "rollout")
	time.Sleep(2 * time.Second) // traffic before the restart too
	if _, err := kubectl(ctx, "-n", flagpoleNS, "rollout", "restart", "deployment/"+deployment); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectl(ctx, "-n", flagpoleNS, "rollout", "status", "deployment/"+deployment, "--timeout=240s"); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, time.Minute, "the old replicas gone", func(ctx context.Context) (bool, error) {
		for _, p := range replicaPods(ctx, t) {
			if before[p.Name] {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	l.requireNoFailures(t, "during kubectl rollout restart")
}

// leader is the replica whose log last says it became leader.
func leader(ctx context.Context, t *testing.T) (string, error) {
	t.Helper()
	var found []string
	for _, p := range replicaPods(ctx, t) {
		if p.DeletionTimestamp != nil {
			continue
		}
		raw, err := env.kube.CoreV1().Pods(flagpoleNS).GetLogs(p.Name, &corev1.PodLogOptions{}).Do(ctx).Raw()
		if err != nil {
			return "", err
		}
		log := string(raw)
		if i := strings.LastIndex(log, "Became leader"); i >= 0 && !strings.Contains(log[i:], "Lost leadership") {
			found = append(found, p.Name)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("replicas leading: %v, want exactly one", found)
	}
	return found[0], nil
}

func flagReady(ctx context.Context, name string) (bool, error) {
	f, err := env.flagpole.FlagpoleV1beta1().Flags(appNamespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, nil
	}
	return meta.IsStatusConditionTrue(f.Status.Conditions, flagpole.FlagConditionReady), nil
}

func testLeaderPodDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var old string
	if err := poll(ctx, time.Minute, "one leader", func(ctx context.Context) (bool, error) {
		var err error
		old, err = leader(ctx, t)
		return err == nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	// A flag naming a Segment that does not exist yet is not Ready; only the
	// leader's status controller makes it Ready once the Segment exists.
	f := booleanFlag("node-e2e-waits-for-segment")
	f.Spec.Rules = []v1beta1.Rule{{Name: "later", Segments: []string{"node-e2e-later"}, Variant: "on"}}
	flags := env.flagpole.FlagpoleV1beta1()
	if _, err := flags.Flags(appNamespace).Create(ctx, f, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if ready, _ := flagReady(ctx, f.Name); ready {
		t.Fatal("a flag naming a missing Segment is Ready")
	}

	l := startLoad(t, newOFREPClient(ctx, t), readFlag, "leader")
	time.Sleep(2 * time.Second)
	deleted := time.Now()
	if err := env.kube.CoreV1().Pods(flagpoleNS).Delete(ctx, old, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	seg := &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "node-e2e-later"}, Spec: v1beta1.SegmentSpec{Include: []string{"node-e2e"}}}
	if _, err := flags.Segments(appNamespace).Create(ctx, seg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, handoverBudget, "the status controller on the other replica to make the flag Ready", func(ctx context.Context) (bool, error) {
		return flagReady(ctx, f.Name)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("controllers continued %s after the leader's Pod %s was deleted (budget %s)",
		time.Since(deleted).Round(100*time.Millisecond), old, handoverBudget)
	var now string
	if err := poll(ctx, time.Minute, "a new leader", func(ctx context.Context) (bool, error) {
		var err error
		now, err = leader(ctx, t)
		return err == nil && now != old, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 2*time.Minute, "the Deployment back to two Ready replicas", installReady); err != nil {
		t.Fatal(err)
	}
	// The load runs until the deleted Pod has finished its shutdown (delay,
	// drain) and is gone.
	if err := poll(ctx, 2*time.Minute, "the deleted Pod "+old+" gone", func(ctx context.Context) (bool, error) {
		_, err := env.kube.CoreV1().Pods(flagpoleNS).Get(ctx, old, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal(err)
	}
	l.requireNoFailures(t, "while the leader's Pod was deleted")
}

// flagNames are the application namespace's flags.
func flagNames(ctx context.Context, t *testing.T) map[string]bool {
	t.Helper()
	list, err := env.flagpole.FlagpoleV1beta1().Flags(appNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range list.Items {
		names[f.Name] = true
	}
	return names
}

func testEtcdPodDeleted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	deleteEtcdMember(ctx, t, "etcd-0")
}

// deleteEtcdMember deletes the etcd Pod member under load and waits for it
// back; every flag stored before and every acknowledged create is there
// afterwards, and the member's claim is the same.
func deleteEtcdMember(ctx context.Context, t *testing.T, member string) {
	t.Helper()
	before := flagNames(ctx, t)
	old, err := env.kube.CoreV1().Pods(flagpoleNS).Get(ctx, member, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := startLoad(t, newOFREPClient(ctx, t), readFlag, "etcd")
	time.Sleep(2 * time.Second)
	if err := env.kube.CoreV1().Pods(flagpoleNS).Delete(ctx, member, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if err := poll(ctx, 3*time.Minute, member+" back and Ready, everything Available", func(ctx context.Context) (bool, error) {
		p, err := env.kube.CoreV1().Pods(flagpoleNS).Get(ctx, member, metav1.GetOptions{})
		if err != nil || p.UID == old.UID {
			return false, nil
		}
		return installReady(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s replaced and everything Ready again %s after its deletion", member, time.Since(deleted).Round(100*time.Millisecond))
	time.Sleep(3 * time.Second) // writes after the return too
	failed := l.report(t)
	t.Logf("%d requests failed while %s was away (counted; what the test requires is that no acknowledged write is lost)", failed, member)

	// No acknowledged write is lost, and what was there before survives on
	// the claim's volume.
	have := flagNames(ctx, t)
	acked := l.acknowledged()
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged create of %s lost", name)
		}
	}
	for name := range before {
		if !have[name] {
			t.Errorf("%s, stored before %s was deleted, is gone", name, member)
		}
	}
	t.Logf("%d flags from before and %d acknowledged creates during the deletion all present", len(before), len(acked))
	claim, volume := "data-"+member, "flagpole-"+member
	pvc, err := env.kube.CoreV1().PersistentVolumeClaims(flagpoleNS).Get(ctx, claim, metav1.GetOptions{})
	if err != nil || pvc.Spec.VolumeName != volume {
		t.Errorf("%s after the deletion: %v, volume %q, want %s", claim, err, pvc.Spec.VolumeName, volume)
	}
}

func testUpgrade(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	before := flagNames(ctx, t)
	l := startLoad(t, newOFREPClient(ctx, t), readFlag, "upgrade")
	time.Sleep(2 * time.Second)
	if _, err := kubectl(ctx, "-n", flagpoleNS, "set", "image", "deployment/"+deployment, deployment+"="+nextImage); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectl(ctx, "-n", flagpoleNS, "rollout", "status", "deployment/"+deployment, "--timeout=240s"); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, time.Minute, "only replicas of "+nextImage, func(ctx context.Context) (bool, error) {
		pods := replicaPods(ctx, t)
		for _, p := range pods {
			if p.Spec.Containers[0].Image != nextImage || p.DeletionTimestamp != nil {
				return false, nil
			}
		}
		return len(pods) == 2, nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	l.requireNoFailures(t, "during the upgrade to "+nextImage)
	have := flagNames(ctx, t)
	for name := range before {
		if !have[name] {
			t.Errorf("%s gone after the upgrade", name)
		}
	}
	ans, err := newOFREPClient(ctx, t).evaluate(ctx, appFlag)
	if err != nil || string(ans.Value) != `"green"` {
		t.Errorf("after the upgrade %s evaluates to %s (%v), want \"green\"", appFlag, ans.Value, err)
	}
}

func testUninstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	uninstall(ctx, t, "kubectl delete -k artifacts/deploy", func() error {
		_, err := kubectl(ctx, "delete", "-k", "artifacts/deploy", "--timeout=180s")
		return err
	})
}

// uninstall deletes the application namespace (its flags live in Flagpole),
// then runs remove, and checks that nothing of the install is left and that
// discovery is whole.
func uninstall(ctx context.Context, t *testing.T, what string, remove func() error) {
	t.Helper()
	if _, err := kubectl(ctx, "delete", "namespace", appNamespace, "--timeout=180s"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := remove(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s took %s", what, time.Since(start).Round(100*time.Millisecond))
	if _, err := env.aggregator.ApiregistrationV1().APIServices().Get(ctx, apiService, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("APIService %s after %s: %v, want NotFound", apiService, what, err)
	}
	if err := poll(ctx, 2*time.Minute, "namespace "+flagpoleNS+" gone", func(ctx context.Context) (bool, error) {
		_, err := env.kube.CoreV1().Namespaces().Get(ctx, flagpoleNS, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatal(err)
	}
	// Discovery is whole again: no group fails, flagpole.dev is not served.
	groups, resources, err := env.kube.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Errorf("discovery after %s: %v", what, err)
	}
	for _, g := range groups {
		if g.Name == "flagpole.dev" {
			t.Errorf("discovery still lists flagpole.dev")
		}
	}
	if len(resources) == 0 {
		t.Error("discovery lists no resources")
	}
	if out, err := kubectl(ctx, "api-resources"); err != nil || strings.Contains(out, "flagpole.dev") {
		t.Errorf("kubectl api-resources after %s: %v\n%s", what, err, out)
	}
	// Cluster-scoped objects of the install are gone too.
	if _, err := env.kube.RbacV1().ClusterRoles().Get(ctx, "flagpole-apiserver", metav1.GetOptions{}); err == nil {
		t.Errorf("ClusterRole flagpole-apiserver left after %s", what)
	}
}

// shortRotation is the etcd-ha overlay with a serving certificate schedule
// short enough to watch a CA rotation (CertificateRotation); the same
// objects otherwise.
const shortRotation = "test/node/testdata/etcd-ha-short-rotation"

// testThreeMemberEtcd installs the etcd-ha overlay (with a short certificate
// schedule, for the next step) and deletes one member under load: no
// acknowledged write is lost, the member comes back on its claim.
func testThreeMemberEtcd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	install(ctx, t, "kubectl apply -k "+shortRotation+" (artifacts/deploy/etcd-ha)", applyKustomization(ctx, shortRotation))
	setupApplicationNamespace(ctx, t)
	deleteEtcdMember(ctx, t, "etcd-1")
}

// testCertificateRotation: on the install of the step before (a CA of 60 s,
// certificates of 30 s), under load through kube-apiserver and the Service,
// the certificate is renewed, a new CA is trusted beside the first, the
// certificate changes to it, and the first CA leaves the caBundle once
// expired: no request fails, and each replica serves the Secret's
// certificate. Then the install is removed.
func testCertificateRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	secret := func() (*corev1.Secret, error) {
		return env.kube.CoreV1().Secrets(flagpoleNS).Get(ctx, servingCert, metav1.GetOptions{})
	}
	s, err := secret()
	if err != nil {
		t.Fatal(err)
	}
	first := caCerts(t, s.Data["ca.crt"])
	firstCA := first[len(first)-1]
	l := startLoad(t, newOFREPClient(ctx, t), readFlag, "rotation")
	leaves := map[string]bool{}
	cas := map[string]bool{}
	start := time.Now()
	err = poll(ctx, time.Until(firstCA.NotAfter)+time.Minute, "the first CA expired and gone, every replica serving a certificate of the next", func(ctx context.Context) (bool, error) {
		s, err := secret()
		if err != nil {
			return false, nil
		}
		bundle := caCerts(t, s.Data["ca.crt"])
		for _, ca := range bundle {
			cas[string(ca.Raw)] = true
		}
		pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
		if err != nil {
			return false, nil
		}
		leaves[string(pair.Leaf.Raw)] = true
		if slices.ContainsFunc(bundle, firstCA.Equal) || pair.Leaf.CheckSignatureFrom(firstCA) == nil {
			return false, nil
		}
		as, err := env.aggregator.ApiregistrationV1().APIServices().Get(ctx, apiService, metav1.GetOptions{})
		if err != nil || !bytes.Equal(as.Spec.CABundle, s.Data["ca.crt"]) {
			return false, nil
		}
		for _, p := range replicaPods(ctx, t) {
			if served, err := servedBy(p.Status.PodIP, s.Data["ca.crt"]); err != nil || !served.Equal(pair.Leaf) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v (certificates seen %d, CAs seen %d)", err, len(leaves), len(cas))
	}
	t.Logf("rotation: %d certificates and %d CAs seen in %s; the first CA gone, every replica on the next", len(leaves), len(cas), time.Since(start).Round(time.Second))
	if len(cas) < 2 || len(leaves) < 2 {
		t.Errorf("%d CAs and %d certificates seen: no rotation happened", len(cas), len(leaves))
	}
	l.requireNoFailures(t, "during a CA rotation")
	uninstall(ctx, t, "kubectl delete -k "+shortRotation, func() error {
		_, err := kubectl(ctx, "delete", "-k", shortRotation, "--timeout=180s")
		return err
	})
}

// servedBy is the certificate the replica at ip presents, verified against
// bundle for the Service name.
func servedBy(ip string, bundle []byte) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(bundle)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(ip, "8443"),
		&tls.Config{RootCAs: roots, ServerName: servingHost, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func caCerts(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(bundle)
	if err != nil {
		t.Fatalf("ca.crt: %v", err)
	}
	return certs
}

// testHelm installs with the chart's defaults (a self-managed certificate),
// upgrades the release to three replicas (the caBundle the server set
// stays, the APIService stays Available), and uninstalls it.
func testHelm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	helm := filepath.Join(env.root, "_output", "tools", "bin", "helm")
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, helm, append(args, "--kubeconfig", env.kubeconfig)...)
		cmd.Dir = env.root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("helm %v: %v\n%s", args, err, out)
		}
		return nil
	}
	install(ctx, t, "helm install", func() error { return run("install", "flagpole", "artifacts/chart/flagpole") })
	setupApplicationNamespace(ctx, t)
	l := startLoad(t, newOFREPClient(ctx, t), readFlag, "helm")
	time.Sleep(2 * time.Second)
	if err := run("upgrade", "flagpole", "artifacts/chart/flagpole", "--set", "replicas=3"); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, 2*time.Minute, "three replicas Ready", func(ctx context.Context) (bool, error) {
		d, err := env.kube.AppsV1().Deployments(flagpoleNS).Get(ctx, deployment, metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 3, nil
	}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := apiServiceAvailable(ctx); !ok {
		t.Error("APIService not Available after helm upgrade")
	}
	l.requireNoFailures(t, "during helm upgrade")
	uninstall(ctx, t, "helm uninstall", func() error { return run("uninstall", "flagpole", "--wait", "--timeout", "3m") })
}
