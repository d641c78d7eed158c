//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	openfeaturejs "github.com/flagpole-dev/flagpole/test/openfeature-js"
)

// TestOFREPStreamTicket: in delegated mode a browser's event-stream ticket
// opens the stream as the ServiceAccount whose token (checked by
// TokenReview) got it: authorized by SubjectAccessReview as that user (a
// ServiceAccount without the Role gets a ticket it cannot use), audited as
// that user, and refused once used.
func TestOFREPStreamTicket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "ofrep-tickets"
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, sa := range []string{"web-app", "lost-role"} {
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kube.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "flag-evaluator"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"flagpole.dev"}, Resources: []string{"flags/evaluate", "evaluations"}, Verbs: []string{"create"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding, err := kube.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "evaluators"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-evaluator"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.ServiceAccountKind, Name: "web-app", Namespace: ns},
			{Kind: rbacv1.ServiceAccountKind, Name: "lost-role", Namespace: ns},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	flags := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1().Flags(ns)
	for _, f := range openfeaturejs.Flags() {
		if _, err := flags.Create(ctx, f, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	token := func(sa string) string {
		tr, err := kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(3600))}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	flagpole := "https://127.0.0.1:" + strconv.Itoa(e2e.FlagpolePort)
	client, err := rest.HTTPClientFor(&rest.Config{Host: flagpole, TLSClientConfig: rest.TLSClientConfig{CAFile: e2e.Path("flagpole", "certificates", "apiserver.crt")}})
	if err != nil {
		t.Fatal(err)
	}
	// ticketFor is a browser's bulk evaluation (an allowed origin marks it
	// so; Flagpole here has no CORS policy, and a client may ask as a
	// browser for itself) and the stream URL it advertises.
	ticketFor := func(tok string) (string, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", flagpole+"/namespaces/"+ns+"/ofrep/v1/evaluate/flags", strings.NewReader(`{"context":{"targetingKey":"u"}}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("X-Flagpole-Ofrep-Origin", "https://app.example")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var answer struct {
			EventStreams []struct {
				Endpoint struct{ RequestURI string } `json:"endpoint"`
			} `json:"eventStreams"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &answer) != nil || len(answer.EventStreams) != 1 {
			return "", fmt.Errorf("bulk: %d %s", resp.StatusCode, body)
		}
		return answer.EventStreams[0].Endpoint.RequestURI, nil
	}
	openStream := func(uri string) int {
		req, _ := http.NewRequestWithContext(ctx, "GET", flagpole+uri, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	app, lost := token("web-app"), token("lost-role")
	var stream string
	// The RoleBinding reaches Flagpole's SubjectAccessReview cache within its TTL.
	if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		var err error
		stream, err = ticketFor(app)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stream, "/events?ticket=") {
		t.Fatalf("advertised stream %q, want a ticket", stream)
	}
	if code := openStream(stream); code != http.StatusOK {
		t.Fatalf("the stream opened with the ticket: %d", code)
	}
	if code := openStream(stream); code != http.StatusUnauthorized {
		t.Errorf("the ticket used again: %d, want 401", code)
	}

	// A ticket is no permission: its user's is checked when it is used.
	lostStream, err := ticketFor(lost)
	if err != nil {
		t.Fatal(err)
	}
	binding.Subjects = binding.Subjects[:1]
	if _, err := kube.RbacV1().RoleBindings(ns).Update(ctx, binding, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Flagpole caches an allowed decision for 10 s, the ticket lives a
	// minute: once the user's own bulk requests (the same permission) are
	// refused, so is the stream their ticket opens.
	if err := tcluster.WaitFor(ctx, nil, 40*time.Second, func() error {
		if _, err := ticketFor(lost); err == nil || !strings.Contains(err.Error(), "bulk: 403") {
			return fmt.Errorf("the user who lost the Role still evaluates: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if code := openStream(lostStream); code != http.StatusForbidden {
		t.Errorf("a ticket of a user who lost the Role: %d, want 403", code)
	}

	// Audited as the ServiceAccount: the stream's request, by the ticket's user.
	user := "system:serviceaccount:" + ns + ":web-app"
	if err := tcluster.WaitFor(ctx, nil, 30*time.Second, func() error {
		for _, ev := range auditEvents(t) {
			if ev.User.Username == user && strings.HasPrefix(ev.RequestURI, "/namespaces/"+ns+"/ofrep/v1/events?ticket=") {
				return nil
			}
		}
		return fmt.Errorf("no audit event of the ticketed stream by %s", user)
	}); err != nil {
		t.Error(err)
	}
}
