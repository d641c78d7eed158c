//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

func TestRBAC(t *testing.T) {
	mustKubectl(t, userAdmin, "apply", "-n", e2eNamespace, "-f", "artifacts/examples/flag-banner-color.yaml")

	// No role: 403 on list.
	out, err := e2e.Kubectl(userNobody, "get", "flags", "-n", e2eNamespace)
	if err == nil || !strings.Contains(out, `User "alice" cannot list resource "flags" in API group "flagpole.dev"`) {
		t.Errorf("user without a role: %v\n%s", err, out)
	}
	// get,list,watch: reads, but 403 on patch.
	if out := mustKubectl(t, userReader, "get", "flags", "-n", e2eNamespace, "-o", "name"); !strings.Contains(out, "banner-color") {
		t.Errorf("reader list:\n%s", out)
	}
	out, err = e2e.Kubectl(userReader, "patch", "flag", "banner-color", "-n", e2eNamespace, "--type=merge", "-p", `{"spec":{"owner":"bob"}}`)
	if err == nil || !strings.Contains(out, `cannot patch resource "flags"`) {
		t.Errorf("reader patch: %v\n%s", err, out)
	}

	// Impersonation by an admin is honored: the effective user is authorized.
	if out := mustKubectl(t, userAdmin, "--as", userReader, "get", "flags", "-n", e2eNamespace, "-o", "name"); !strings.Contains(out, "banner-color") {
		t.Errorf("--as bob:\n%s", out)
	}
	out, err = e2e.Kubectl(userAdmin, "--as", userNobody, "get", "flags", "-n", e2eNamespace)
	if err == nil || !strings.Contains(out, `User "alice" cannot list`) {
		t.Errorf("--as alice: %v\n%s", err, out)
	}

	// kube-apiserver authorizes before it proxies; Flagpole authorizes again
	// by SubjectAccessReview. Asking Flagpole directly, with the front-proxy
	// identity the aggregator uses, shows that its own decision is the same.
	path := "/apis/flagpole.dev/v1beta1/namespaces/" + e2eNamespace + "/flags"
	for _, tc := range []struct {
		user string
		code int
	}{{userReader, http.StatusOK}, {userNobody, http.StatusForbidden}} {
		if code, body := do(t, e2e.directFlagpoleConfig(tc.user, "system:authenticated"), "GET", path); code != tc.code {
			t.Errorf("direct to Flagpole as %s: %d %s, want %d", tc.user, code, body, tc.code)
		}
	}

	// Delegated mode authenticates as kube-apiserver does: front-proxy
	// headers only from the front-proxy certificate, client certificates from
	// kube-apiserver's client CA, anything else anonymous. Each case has one
	// right answer, and the 403's message names who Flagpole thought it was.
	// A certificate from the client CA that is not the front proxy's cannot
	// assert a user: the request is alice's, not the header's admin.
	forged := e2e.directFlagpoleConfig(userAdmin, "system:masters")
	forged.TLSClientConfig.CertFile, forged.TLSClientConfig.KeyFile = e2e.Path("pki", userNobody+".crt"), e2e.Path("pki", userNobody+".key")
	// No client certificate (the X-Remote-* headers are sent, and ignored):
	// anonymous is enabled in delegated mode (as in kube-apiserver), and RBAC
	// grants system:anonymous nothing on flags.
	anonymous := e2e.directFlagpoleConfig(userAdmin, "system:masters")
	anonymous.TLSClientConfig.CertFile, anonymous.TLSClientConfig.KeyFile = "", ""
	// A certificate from a CA Flagpole does not trust is an authentication
	// error, which anonymous access does not paper over: 401.
	foreign, err := standalone.EnsurePKI(t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	untrusted := e2e.directFlagpoleConfig(userAdmin, "system:masters")
	untrusted.TLSClientConfig.CertFile, untrusted.TLSClientConfig.KeyFile = foreign.AdminCertFile(), foreign.AdminKeyFile()
	for _, tc := range []struct {
		name string
		cfg  *rest.Config
		code int
		body string
	}{
		{"X-Remote-User from a non-proxy certificate", forged, http.StatusForbidden, `User \"alice\" cannot list resource \"flags\"`},
		{"no client certificate", anonymous, http.StatusForbidden, `User \"system:anonymous\" cannot list resource \"flags\"`},
		{"certificate from an untrusted CA", untrusted, http.StatusUnauthorized, `Unauthorized`},
	} {
		if code, body := do(t, tc.cfg, "GET", path); code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %s, want %d with %s", tc.name, code, body, tc.code, tc.body)
		}
	}
}

// do sends one request and returns the status code and body.
func do(t *testing.T, cfg *rest.Config, method, path string) (int, string) {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, cfg.Host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestAudit: Flagpole's own audit log records writes with the effective user
// (kube-apiserver resolved any impersonation before proxying).
func TestAudit(t *testing.T) {
	mustKubectl(t, userAdmin, "apply", "-n", e2eNamespace, "-f", "artifacts/examples/flag-new-checkout.yaml")
	mustKubectl(t, userAdmin, "patch", "flag", "new-checkout", "-n", e2eNamespace, "--type=merge", "-p", `{"spec":{"owner":"audited"}}`)
	mustKubectl(t, userAdmin, "--as", "dave", "--as-group", "system:masters", "patch", "flag", "new-checkout", "-n", e2eNamespace,
		"--type=merge", "-p", `{"spec":{"owner":"audited-as-dave"}}`)
	mustKubectl(t, userReader, "get", "flag", "new-checkout", "-n", e2eNamespace)

	want := map[string]bool{userAdmin: false, "dave": false}
	// The audit backend writes asynchronously: poll the log until both
	// patches are in it.
	err := wait.PollUntilContextTimeout(context.Background(), 250*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		for _, ev := range auditEvents(t) {
			if ev.Verb == "get" || ev.Verb == "list" || ev.Verb == "watch" {
				t.Fatalf("the policy logs writes only, but %s was logged", ev.Verb)
			}
			if ev.Verb == "patch" && ev.ObjectRef != nil && ev.ObjectRef.Resource == "flags" && ev.ObjectRef.Name == "new-checkout" && ev.ObjectRef.Namespace == e2eNamespace {
				if _, ok := want[ev.User.Username]; ok && ev.Stage == auditv1.StageResponseComplete && ev.ResponseStatus != nil && ev.ResponseStatus.Code == 200 {
					want[ev.User.Username] = true
				}
				if ev.ImpersonatedUser != nil {
					t.Errorf("Flagpole saw an impersonation header; kube-apiserver should have resolved it: %+v", ev.ImpersonatedUser)
				}
			}
		}
		return want[userAdmin] && want["dave"], nil
	})
	if err != nil {
		t.Errorf("patches by user found in Flagpole's audit log: %v (%v)", want, err)
	}
}

func auditEvents(t *testing.T) []auditv1.Event {
	t.Helper()
	f, err := os.Open(e2e.auditLog())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var events []auditv1.Event
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		var ev auditv1.Event
		if err := json.Unmarshal(s.Bytes(), &ev); err != nil {
			t.Fatalf("audit line is not an event: %v", err)
		}
		events = append(events, ev)
	}
	return events
}
