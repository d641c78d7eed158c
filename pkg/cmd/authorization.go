package cmd

import (
	"fmt"

	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/authorization/path"
	unionauthz "k8s.io/apiserver/pkg/authorization/union"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// unthrottleDelegatedAuthorization rebuilds the delegated authorizer that
// DelegatingAuthorizationOptions.ApplyTo made, the same way (always-allow
// groups, always-allow paths, then SubjectAccessReviews with the options'
// cache TTLs, retry backoff and timeout), with one difference: its
// SubjectAccessReview client is not rate limited. Upstream's allows 200
// reviews per second (burst 400), and every request for a distinct object
// by a user outside the always-allow groups is a distinct review (the
// allowed-cache key includes the name), so a replica served at most 200
// GETs or updates of named objects per second to ServiceAccounts, however
// idle it was (docs/benchmarks.md). Concurrent reviews are bounded by the
// requests in flight instead (flow control), as kubernetes/kubernetes#79939
// suggests. Without a kubeconfig or in-cluster config (standalone) it
// leaves the authorizer as it is.
func unthrottleDelegatedAuthorization(c *genericapiserver.RecommendedConfig, s *genericoptions.DelegatingAuthorizationOptions) error {
	if s == nil {
		return nil // authorization off: upstream allows everything
	}
	cfg, err := reviewClientConfig(s)
	if err != nil || cfg == nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var authorizers []unionauthz.NamedAuthorizer
	if len(s.AlwaysAllowGroups) > 0 {
		authorizers = append(authorizers, unionauthz.NamedAuthorizer{
			AuthorizerName: "kubernetes.io/always-allow-groups",
			Authorizer:     authorizerfactory.NewPrivilegedGroups(s.AlwaysAllowGroups...),
		})
	}
	if len(s.AlwaysAllowPaths) > 0 {
		a, err := path.NewAuthorizer(s.AlwaysAllowPaths)
		if err != nil {
			return err
		}
		authorizers = append(authorizers, unionauthz.NamedAuthorizer{AuthorizerName: "kubernetes.io/always-allow-paths", Authorizer: a})
	}
	delegated, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client.AuthorizationV1(),
		AllowCacheTTL:             s.AllowCacheTTL,
		DenyCacheTTL:              s.DenyCacheTTL,
		WebhookRetryBackoff:       s.WebhookRetryBackoff,
	}.New()
	if err != nil {
		return err
	}
	authorizers = append(authorizers, unionauthz.NamedAuthorizer{AuthorizerName: "kubernetes.io/webhook", Authorizer: delegated})
	var union authorizer.Authorizer
	if union, err = unionauthz.New(authorizers...); err != nil {
		return err
	}
	c.Authorization.Authorizer = union
	return nil
}

// reviewClientConfig is the SubjectAccessReview client's configuration as
// upstream loads it (--authorization-kubeconfig, else in-cluster; nil when
// neither exists and that is allowed), without a rate limit.
func reviewClientConfig(s *genericoptions.DelegatingAuthorizationOptions) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if s.RemoteKubeConfigFile != "" {
		loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
			&clientcmd.ClientConfigLoadingRules{ExplicitPath: s.RemoteKubeConfigFile}, &clientcmd.ConfigOverrides{})
		cfg, err = loader.ClientConfig()
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil && s.RemoteKubeConfigFileOptional {
			return nil, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("failed to get delegated authorization kubeconfig: %w", err)
	}
	// A negative QPS is client-go's "no rate limiter".
	cfg.QPS, cfg.Burst = -1, -1
	cfg.Timeout = s.ClientTimeout
	if s.CustomRoundTripperFn != nil {
		cfg.Wrap(s.CustomRoundTripperFn)
	}
	return cfg, nil
}
