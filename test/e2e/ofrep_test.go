//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	openfeaturejs "github.com/flagpole-dev/flagpole/test/openfeature-js"
)

// TestOFREPWithServiceAccountTokens: applications evaluate through OFREP
// straight at Flagpole (not through kube-apiserver) with ServiceAccount
// tokens, checked by TokenReview, and a Role that grants flags/evaluate and
// evaluations — the one documented in docs/openfeature.md. The unmodified
// OpenFeature JavaScript SDKs and OFREP providers from npm run the checks.
func TestOFREPWithServiceAccountTokens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "ofrep-e2e"
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"web-app", "stranger"} {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{"flagpole.dev"},
			Resources: []string{"flags/evaluate", "evaluations"},
			Verbs:     []string{"create"},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "web-app-evaluates"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-evaluator"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "web-app", Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
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
	appToken, strangerToken := token("web-app"), token("stranger")

	flags := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1().Flags(ns)
	for _, f := range openfeaturejs.Flags() {
		if _, err := flags.Create(ctx, f, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Each create stores the flag's status; make sure that is so before the
	// SDKs compare answers, since a later status write would change
	// resourceVersions (so ETags) and send change events.
	for _, f := range openfeaturejs.Flags() {
		if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
			got, err := flags.Get(ctx, f.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.Status.ObservedGeneration != got.Generation || len(got.Status.Conditions) == 0 {
				return fmt.Errorf("flag %s: status not written yet", f.Name)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	rollout, err := flags.Get(ctx, "rollout-flag", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	splits, err := openfeaturejs.ExpectedSplits(rollout, 100)
	if err != nil {
		t.Fatal(err)
	}

	flagpole := "https://127.0.0.1:" + strconv.Itoa(e2e.FlagpolePort)
	// The RoleBinding reaches Flagpole's SubjectAccessReview cache within
	// its TTL; wait for the application's first 200 before the SDKs run.
	if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		return ofrepOK(flagpole, e2e.Path("flagpole", "certificates", "apiserver.crt"), ns, appToken)
	}); err != nil {
		t.Fatal(err)
	}
	openfeaturejs.Run(t, openfeaturejs.Env{
		BaseURL:     flagpole + "/namespaces/" + ns,
		CAFiles:     []string{e2e.Path("flagpole", "certificates", "apiserver.crt"), e2e.CA.CACertFile()},
		AppToken:    appToken,
		DeniedToken: strangerToken,
		// Delegated authentication admits a request without credentials as
		// system:anonymous, and RBAC refuses it.
		NoTokenStatus:  http.StatusForbidden,
		ExpectedSplits: splits,
		APIServer:      e2e.KubeHost,
		AdminCert:      e2e.CA.AdminCertFile(),
		AdminKey:       e2e.CA.AdminKeyFile(),
	}, "server.test.mjs", "web.test.mjs")

	// OFREP calls are audited like the API they mirror: as a create of
	// flags/evaluate by the application's ServiceAccount.
	app := "system:serviceaccount:" + ns + ":web-app"
	if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		for _, ev := range auditEvents(t) {
			if ev.User.Username == app && ev.Verb == "create" && ev.ObjectRef != nil && ev.ObjectRef.Resource == "flags" &&
				ev.ObjectRef.Subresource == "evaluate" && strings.HasPrefix(ev.RequestURI, "/namespaces/"+ns+"/ofrep/v1/") {
				return nil
			}
		}
		return fmt.Errorf("no audit event of an OFREP evaluation by %s", app)
	}); err != nil {
		t.Error(err)
	}
}

func ofrepOK(server, caFile, ns, token string) error {
	client, err := rest.HTTPClientFor(&rest.Config{Host: server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}})
	if err != nil {
		return err
	}
	req, _ := http.NewRequest("POST", server+"/namespaces/"+ns+"/ofrep/v1/evaluate/flags/string-flag", strings.NewReader(`{"context":{}}`))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("OFREP answered %d", resp.StatusCode)
	}
	return nil
}
