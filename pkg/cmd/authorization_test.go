package cmd

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flagpole-dev/flagpole/pkg/apiserver"
)

// sarServer answers SubjectAccessReviews, allowing what allow says, and
// counts them.
func sarServer(t *testing.T, allow func(authorizationv1.SubjectAccessReviewSpec) bool) (kubeconfig string, reviews func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var sar authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(r.Body).Decode(&sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		n++
		mu.Unlock()
		sar.Status.Allowed = allow(sar.Spec)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&sar)
	}))
	t.Cleanup(srv.Close)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kube"] = &clientcmdapi.Cluster{Server: srv.URL}
	cfg.AuthInfos["flagpole"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["kube"] = &clientcmdapi.Context{Cluster: "kube", AuthInfo: "flagpole"}
	cfg.CurrentContext = "kube"
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	return kubeconfig, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// The delegated authorizer decides as upstream's does — always-allow
// groups without a review, everyone else by SubjectAccessReview, cached
// per request's attributes — through a client without a rate limit
// (upstream's allows 200 reviews a second, which capped named reads and
// updates by ServiceAccounts).
func TestDelegatedAuthorizationIsUnthrottled(t *testing.T) {
	kubeconfig, reviews := sarServer(t, func(s authorizationv1.SubjectAccessReviewSpec) bool {
		return s.User == "system:serviceaccount:apps:reader" && s.ResourceAttributes != nil && s.ResourceAttributes.Verb == "get"
	})
	opts := genericoptions.NewDelegatingAuthorizationOptions()
	opts.RemoteKubeConfigFile = kubeconfig
	opts.AlwaysAllowGroups = []string{"system:masters"}

	cfg, err := reviewClientConfig(opts)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rl := client.AuthorizationV1().RESTClient().GetRateLimiter(); rl != nil {
		t.Fatalf("the SubjectAccessReview client has a rate limiter (%T): named requests would be capped by it", rl)
	}

	c := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	if err := unthrottleDelegatedAuthorization(c, opts); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	get := func(u user.Info, name string) authorizer.Decision {
		d, _, err := c.Authorization.Authorizer.Authorize(ctx, authorizer.AttributesRecord{
			User: u, Verb: "get", APIGroup: "flagpole.dev", Resource: "flags", Namespace: "apps", Name: name, ResourceRequest: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	admin := &user.DefaultInfo{Name: "admin", Groups: []string{"system:masters"}}
	if d := get(admin, "f1"); d != authorizer.DecisionAllow || reviews() != 0 {
		t.Errorf("system:masters: %v after %d reviews, want allowed without one", d, reviews())
	}
	reader := &user.DefaultInfo{Name: "system:serviceaccount:apps:reader"}
	if d := get(reader, "f1"); d != authorizer.DecisionAllow || reviews() != 1 {
		t.Errorf("reader: %v after %d reviews, want allowed by one", d, reviews())
	}
	if d := get(reader, "f1"); d != authorizer.DecisionAllow || reviews() != 1 {
		t.Errorf("reader again: %v after %d reviews, want the cached answer", d, reviews())
	}
	other := &user.DefaultInfo{Name: "system:serviceaccount:apps:other"}
	if d := get(other, "f1"); d == authorizer.DecisionAllow {
		t.Errorf("other: %v, want not allowed", d)
	}

	// Without any kubeconfig (standalone), the authorizer stays as it was.
	none := genericoptions.NewDelegatingAuthorizationOptions()
	none.RemoteKubeConfigFileOptional = true
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	c2 := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	c2.Authorization.Authorizer = authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
		return authorizer.DecisionDeny, "sentinel", nil
	})
	if err := unthrottleDelegatedAuthorization(c2, none); err != nil {
		t.Fatal(err)
	}
	if _, reason, _ := c2.Authorization.Authorizer.Authorize(ctx, authorizer.AttributesRecord{}); reason != "sentinel" {
		t.Errorf("standalone's authorizer was replaced (reason %q)", reason)
	}
}
