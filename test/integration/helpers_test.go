package integration

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
)

func startServer(t *testing.T, args ...string) *framework.Server {
	t.Helper()
	return framework.StartServer(t, t.TempDir(), args...)
}

func raw(v any) v1beta1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return v1beta1.JSON{Raw: b}
}

func boolFlag(name string) *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "checkout"}},
		Spec: v1beta1.FlagSpec{
			Description: "New checkout flow",
			Type:        v1beta1.FlagTypeBoolean,
			Variants: []v1beta1.Variant{
				{Name: "on", Value: raw(true)},
				{Name: "off", Value: raw(false)},
			},
			DefaultVariant: "off",
			Rules: []v1beta1.Rule{
				{Name: "staff", Segments: []string{"employees"}, When: `context.plan == "enterprise"`, Variant: "on"},
				{Name: "gradual", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 10}, {Variant: "off", Weight: 90}}}},
			},
			Owner: "team-checkout",
		},
	}
}

func startServerIn(t *testing.T, dir string, args ...string) *framework.Server {
	t.Helper()
	return framework.StartServer(t, dir, args...)
}

// createFlag creates f and waits until its status describes its generation
// and evaluation answers from it.
func createFlag(t *testing.T, client clientset.Interface, namespace string, f *v1beta1.Flag) *v1beta1.Flag {
	t.Helper()
	ctx := context.Background()
	if _, err := client.FlagpoleV1beta1().Flags(namespace).Create(ctx, f, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return waitForStatus(t, client, namespace, f.Name)
}

// waitForStatus waits until the flag's status describes its current generation.
func waitForStatus(t *testing.T, client clientset.Interface, namespace, name string) *v1beta1.Flag {
	t.Helper()
	return waitFlag(t, client, namespace, name, "status written for the current generation", func(f *v1beta1.Flag) bool {
		return len(f.Status.Conditions) == 2
	})
}

// waitFlag polls the flag until its status describes its current generation
// and done holds, and returns it.
func waitFlag(t *testing.T, client clientset.Interface, namespace, name, what string, done func(*v1beta1.Flag) bool) *v1beta1.Flag {
	t.Helper()
	var last *v1beta1.Flag
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		f, err := client.FlagpoleV1beta1().Flags(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = f
		return f.Status.ObservedGeneration == f.Generation && done(f), nil
	})
	if err != nil {
		var status []byte
		if last != nil {
			status, _ = json.Marshal(last.Status)
		}
		t.Fatalf("flag %s/%s: %s: %v (last status %s)", namespace, name, what, err, status)
	}
	waitEvaluable(t, client, last)
	return last
}

// waitEvaluable waits until evaluation answers from f's resourceVersion or a
// later one. The status in a write says nothing about when the evaluator's
// watch delivers it, so tests that evaluate right after a write wait here.
func waitEvaluable(t *testing.T, client clientset.Interface, f *v1beta1.Flag) {
	t.Helper()
	want, err := strconv.ParseUint(f.ResourceVersion, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", f.ResourceVersion, err)
	}
	var last string
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		res, err := client.FlagpoleV1beta1().Flags(f.Namespace).Evaluate(ctx, f.Name, &v1beta1.EvaluationRequest{}, metav1.CreateOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = res.Metadata.ResourceVersion
		got, err := strconv.ParseUint(res.Metadata.ResourceVersion, 10, 64)
		return err == nil && got >= want, nil
	})
	if err != nil {
		t.Fatalf("flag %s/%s: evaluation never answered from resourceVersion %s (last: %s): %v", f.Namespace, f.Name, f.ResourceVersion, last, err)
	}
}

// scrape reads the server's /metrics.
func scrape(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(cfg.Host + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s %v", resp.Status, err)
	}
	return string(b)
}

// auditEvents reads every event of a JSON audit log (--audit-log-path).
func auditEvents(t *testing.T, path string) []auditv1.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditv1.Event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev auditv1.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}
