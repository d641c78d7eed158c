//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// TestNamespaceDeletion: kube-controller-manager's namespace controller
// discovers Flagpole's resources and deletes them, and the namespace goes away.
func TestNamespaceDeletion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "doomed"
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, userAdmin, "apply", "-n", ns, "-f", "artifacts/examples/")

	if err := kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := tcluster.WaitFor(ctx, nil, 150*time.Second, func() error {
		n, err := kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return &stillThere{n.Status}
	}); err != nil {
		t.Fatalf("namespace did not finish deleting: %v", err)
	}

	// Ask Flagpole itself: nothing is left in its etcd for that namespace.
	direct := clientset.NewForConfigOrDie(e2e.directFlagpoleConfig(userAdmin, "system:masters"))
	flags, err := direct.FlagpoleV1beta1().Flags(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(flags.Items) != 0 {
		t.Errorf("flags left: %v %v", flags, err)
	}
	segments, err := direct.FlagpoleV1beta1().Segments(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(segments.Items) != 0 {
		t.Errorf("segments left: %v %v", segments, err)
	}
}

type stillThere struct{ status corev1.NamespaceStatus }

func (s *stillThere) Error() string {
	var b strings.Builder
	b.WriteString("namespace still " + string(s.status.Phase))
	for _, c := range s.status.Conditions {
		b.WriteString("; " + string(c.Type) + "=" + string(c.Status) + ": " + c.Message)
	}
	return b.String()
}

// TestPriorityAndFairness: with APF on, a burst beyond a priority level's
// concurrency is answered 429 with Retry-After, and nothing errors.
func TestPriorityAndFairness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const user = "burst-user"
	kube := kubernetes.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	_, err := kube.FlowcontrolV1().PriorityLevelConfigurations().Create(ctx, &flowcontrolv1.PriorityLevelConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "flagpole-e2e-tiny"},
		Spec: flowcontrolv1.PriorityLevelConfigurationSpec{
			Type: flowcontrolv1.PriorityLevelEnablementLimited,
			Limited: &flowcontrolv1.LimitedPriorityLevelConfiguration{
				NominalConcurrencyShares: ptr.To(int32(1)),
				LendablePercent:          ptr.To(int32(0)),
				BorrowingLimitPercent:    ptr.To(int32(0)),
				LimitResponse:            flowcontrolv1.LimitResponse{Type: flowcontrolv1.LimitResponseTypeReject},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kube.FlowcontrolV1().FlowSchemas().Create(ctx, &flowcontrolv1.FlowSchema{
		ObjectMeta: metav1.ObjectMeta{Name: "flagpole-e2e-burst"},
		Spec: flowcontrolv1.FlowSchemaSpec{
			PriorityLevelConfiguration: flowcontrolv1.PriorityLevelConfigurationReference{Name: "flagpole-e2e-tiny"},
			MatchingPrecedence:         100,
			DistinguisherMethod:        &flowcontrolv1.FlowDistinguisherMethod{Type: flowcontrolv1.FlowDistinguisherMethodByUserType},
			Rules: []flowcontrolv1.PolicyRulesWithSubjects{{
				Subjects: []flowcontrolv1.Subject{{Kind: flowcontrolv1.SubjectKindUser, User: &flowcontrolv1.UserSubject{Name: user}}},
				ResourceRules: []flowcontrolv1.ResourcePolicyRule{{
					Verbs: []string{"*"}, APIGroups: []string{"flagpole.dev"}, Resources: []string{"*"}, Namespaces: []string{"*"},
				}},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.RbacV1().RoleBindings(e2eNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "burst-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "flag-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: "rbac.authorization.k8s.io", Name: user}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Straight to Flagpole, as the aggregator would send it, so that the 429
	// is Flagpole's own and not kube-apiserver's.
	cfg := e2e.directFlagpoleConfig(user, "system:authenticated")
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := cfg.Host + "/apis/flagpole.dev/v1beta1/namespaces/" + e2eNamespace + "/flags"

	// Flagpole learns the new FlowSchema through its informer; burst until
	// it rejects, within bounds.
	var rejected, ok, other int
	burst := func(context.Context) (bool, error) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 60; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := client.Get(url)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					other++
					t.Errorf("request failed: %v", err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					rejected++
					if resp.Header.Get("Retry-After") == "" {
						t.Error("429 without Retry-After")
					}
				default:
					other++
					t.Errorf("status %d: a burst must be answered 200 or 429", resp.StatusCode)
				}
			}()
		}
		close(start)
		wg.Wait()
		return rejected > 0, nil
	}
	// A timeout is not the verdict: the counters below are.
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 60*time.Second, true, burst)
	t.Logf("burst answers: %d ok, %d rejected with 429, %d other", ok, rejected, other)
	if rejected == 0 {
		t.Fatal("no request was rejected with 429: priority and fairness is not limiting Flagpole")
	}
	if ok == 0 {
		t.Error("every request was rejected: the priority level should still admit some")
	}
}
