//go:build e2e

package e2e

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const e2eNamespace = "e2e"

// bootstrap creates what an operator would before starting Flagpole
// (test/cluster's BootstrapFlagpole: its RBAC and the ExternalName Service
// the APIService points at), and the e2e users' roles.
func (c *cluster) bootstrap(ctx context.Context) error {
	if err := c.BootstrapFlagpole(ctx); err != nil {
		return err
	}
	kube := kubernetes.NewForConfigOrDie(c.RestConfig(userAdmin))
	if err := createReaderNamespace(ctx, kube, e2eNamespace); err != nil {
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
	_, err := kube.RbacV1().RoleBindings(e2eNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-evaluator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: userEvaluator}},
	}, metav1.CreateOptions{})
	return err
}

// createReaderNamespace creates namespace with the Role flag-reader (get,
// list and watch flags and segments) bound to userReader.
func createReaderNamespace(ctx context.Context, kube kubernetes.Interface, namespace string) error {
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := kube.RbacV1().Roles(namespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-reader"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"flagpole.dev"},
			Resources: []string{"flags", "segments"},
			Verbs:     []string{"get", "list", "watch"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	_, err := kube.RbacV1().RoleBindings(namespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: userReader}},
	}, metav1.CreateOptions{})
	return err
}
