//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
)

// TestEvaluateThroughKubeAPIServer: the generated clientset's Evaluate
// through the aggregator, and RBAC that separates evaluating from writing.
func TestEvaluateThroughKubeAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mustKubectl(t, userAdmin, "apply", "-n", e2eNamespace, "-f", "artifacts/examples/")

	app := clientset.NewForConfigOrDie(e2e.RestConfig(userEvaluator))
	req := &v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":"tester-1","plan":"enterprise"}`)}}
	var res *v1beta1.EvaluationResult
	// The flag status and caches settle asynchronously after apply.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		res, err = app.FlagpoleV1beta1().Flags(e2eNamespace).Evaluate(ctx, "new-checkout", req, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		return res.Metadata.Rule == "staff", nil
	})
	if err != nil {
		t.Fatalf("evaluate as an application: %v (last %+v)", err, res)
	}
	if res.Reason != "TARGETING_MATCH" || res.Variant != "on" || string(res.Value.Raw) != "true" {
		t.Errorf("result: %+v", res.FlagEvaluation)
	}

	// Evaluating is not writing, nor reading, nor bulk evaluation.
	_, err = app.FlagpoleV1beta1().Flags(e2eNamespace).Patch(ctx, "new-checkout", types.MergePatchType, []byte(`{"spec":{"state":"Disabled"}}`), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("patch by an evaluate-only user: %v, want 403", err)
	}
	if _, err = app.FlagpoleV1beta1().Flags(e2eNamespace).Get(ctx, "new-checkout", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("get by an evaluate-only user: %v, want 403", err)
	}
	_, err = app.FlagpoleV1beta1().Evaluations(e2eNamespace).Create(ctx, &v1beta1.Evaluation{}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "evaluations") {
		t.Errorf("bulk evaluation by an evaluate-only user: %v, want 403", err)
	}

	// The admin may do bulk evaluation through kube-apiserver too.
	admin := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	bulk, err := admin.FlagpoleV1beta1().Evaluations(e2eNamespace).Create(ctx, &v1beta1.Evaluation{
		Spec: v1beta1.EvaluationSpec{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":"tester-1"}`)}, Flags: []string{"banner-color", "new-checkout"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bulk.Status.Results) != 2 || bulk.Status.Results[0].Key != "banner-color" || bulk.Status.Results[0].Reason != "STATIC" {
		t.Errorf("bulk: %+v", bulk.Status.Results)
	}

	// kubectl create --raw, as docs/evaluation.md shows.
	out := mustKubectl(t, userAdmin, "create", "--raw", "/apis/flagpole.dev/v1beta1/namespaces/"+e2eNamespace+"/flags/banner-color/evaluate",
		"-f", writeManifest(t, "req.json", `{"context":{"targetingKey":"u"}}`))
	if !strings.Contains(out, `"variant":"red"`) || !strings.Contains(out, `"reason":"STATIC"`) {
		t.Errorf("kubectl create --raw evaluate: %s", out)
	}
}
