//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

const e2eNamespace = "e2e"

// kubectl runs the kubectl built from k8s.io/kubernetes v1.37.2 as user.
func (c *cluster) kubectl(user string, args ...string) (string, error) {
	args = append([]string{"--kubeconfig", c.Kubeconfig(user), "--cache-dir", c.Path("kubectl-cache-" + strings.ReplaceAll(user, ":", "_"))}, args...)
	cmd := exec.Command(filepath.Join(c.binDir, "kubectl"), args...)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// bootstrap creates what an operator would before starting Flagpole: its
// RBAC (artifacts/deploy/rbac.yaml, applied with kubectl), the ExternalName
// Service the APIService points at, and the e2e users' roles.
func (c *cluster) bootstrap(ctx context.Context) error {
	if out, err := c.kubectl(userAdmin, "apply", "-f", "artifacts/deploy/rbac.yaml"); err != nil {
		return fmt.Errorf("kubectl apply rbac: %v\n%s", err, out)
	}
	kube := kubernetes.NewForConfigOrDie(c.RestConfig(userAdmin))
	_, err := kube.CoreV1().Services(tcluster.FlagpoleNamespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: tcluster.FlagpoleService},
		// The aggregator's resolver sends https://localhost:<APIService port>:
		// no kubelet or kube-proxy needed.
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "localhost"},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e2eNamespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.RbacV1().Roles(e2eNamespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"flagpole.dev"},
			Resources: []string{"flags", "segments"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.RbacV1().RoleBindings(e2eNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: userReader}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	// An application: it may evaluate flags, nothing else.
	if _, err := kube.RbacV1().Roles(e2eNamespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"flagpole.dev"},
			Resources: []string{"flags/evaluate"},
			Verbs:     []string{"create"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err = kube.RbacV1().RoleBindings(e2eNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-evaluator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: userEvaluator}},
	}, metav1.CreateOptions{})
	return err
}
