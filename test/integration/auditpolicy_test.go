package integration

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// The audit policy artifacts/audit/policy.yaml ships records every change
// to Flagpole's objects with the objects, and no evaluation (flags/evaluate,
// evaluations, OFREP) and no read.
func TestShippedAuditPolicy(t *testing.T) {
	t.Parallel()
	policy, err := filepath.Abs("../../artifacts/audit/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	auditLog := filepath.Join(t.TempDir(), "audit.log")
	s := startServer(t, "--audit-policy-file", policy, "--audit-log-path", auditLog, "--audit-log-mode", "blocking")
	const ns = "audited"
	ctx := context.Background()
	f := boolFlag("checkout")
	f.Spec.Rules[0].Segments = nil
	createFlag(t, s.Client, ns, f)
	evaluate(t, s, ns, "checkout", map[string]any{"targetingKey": "u1"})
	if _, err := s.Client.FlagpoleV1beta1().Evaluations(ns).Create(ctx, &v1beta1.Evaluation{}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, body := do(t, s.AdminConfig, "POST", "/namespaces/"+ns+"/ofrep/v1/evaluate/flags/checkout", "application/json", []byte(`{"context":{"targetingKey":"u1"}}`)); code != http.StatusOK {
		t.Fatalf("OFREP: %d %s", code, body)
	}
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Get(ctx, "checkout", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.FlagpoleV1beta1().Flags(ns).Patch(ctx, "checkout", types.MergePatchType, []byte(`{"spec":{"owner":"team-payments"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	var writes []string
	for _, ev := range auditEvents(t, auditLog) {
		if ev.ObjectRef == nil || ev.ObjectRef.APIGroup != "flagpole.dev" || ev.ObjectRef.Namespace != ns || ev.User.Username == "system:apiserver" {
			continue // the server's own controllers' status updates, recorded too
		}
		what := ev.Verb + " " + ev.ObjectRef.Resource
		if ev.ObjectRef.Subresource != "" {
			what += "/" + ev.ObjectRef.Subresource
		}
		if ev.Level != auditv1.LevelRequestResponse || ev.RequestObject == nil || ev.ResponseObject == nil {
			t.Errorf("%s recorded at %s, with request object %v and response object %v; want RequestResponse with both",
				what, ev.Level, ev.RequestObject != nil, ev.ResponseObject != nil)
		}
		writes = append(writes, what)
	}
	if got := strings.Join(writes, ", "); got != "create flags, patch flags" {
		t.Errorf("audited in %s: %s; want the create and the patch of the flag only", ns, got)
	}
}
