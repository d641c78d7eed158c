package integration

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// The server's own informers (evaluator, status controller, admission,
// OFREP change events) list and watch its stores in process: they work —
// a create, an update and a delete reach evaluation — and not one list or
// watch of Flagpole's kinds reaches the HTTP handlers (the audit log, which
// records every request they serve, has none).
func TestInformersReadStoresInProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	auditLog := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--audit-policy-file", policy, "--audit-log-path", auditLog, "--audit-log-mode", "blocking")
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("local")

	created := createFlag(t, s.Client, "local", boolFlag("f"))
	cur := created.DeepCopy()
	cur.Spec.DefaultVariant = "on"
	updated, err := flags.Update(ctx, cur, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitEvaluable(t, s.Client, updated)
	if res, err := flags.Evaluate(ctx, "f", &v1beta1.EvaluationRequest{}, metav1.CreateOptions{}); err != nil || res.Metadata.Generation != 2 {
		t.Fatalf("evaluation after the update: %+v, %v", res, err)
	}
	if err := flags.Delete(ctx, "f", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Deleted: evaluation answers not found once the watch delivers it.
	if err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := flags.Evaluate(ctx, "f", &v1beta1.EvaluationRequest{}, metav1.CreateOptions{})
		return apierrors.IsNotFound(err), nil
	}); err != nil {
		t.Fatalf("evaluation still finds the deleted flag: %v", err)
	}

	// The audit log has every request that reached the handlers.
	sawCreate := false
	for _, ev := range auditEvents(t, auditLog) {
		if ev.ObjectRef == nil || ev.ObjectRef.APIGroup != "flagpole.dev" {
			continue
		}
		sawCreate = sawCreate || ev.Verb == "create" && ev.ObjectRef.Resource == "flags"
		if ev.Verb == "list" || ev.Verb == "watch" {
			t.Errorf("%s %s by %s went through the handlers", ev.Verb, ev.RequestURI, ev.User.Username)
		}
	}
	if !sawCreate {
		t.Fatal("the audit log has no create of a flag: it does not record what this test reads")
	}
}
