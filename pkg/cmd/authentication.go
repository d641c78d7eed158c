package cmd

import (
	"fmt"

	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	unionauthn "k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	unionauthz "k8s.io/apiserver/pkg/authorization/union"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/utils/clock"

	"github.com/flagpole-dev/flagpole/pkg/clientcert"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

// applyStandaloneAuthentication replaces the delegating authenticator with
// one that accepts certificates from the local CA and the bearer tokens of
// <data-dir>/tokens.csv (the application token written on first start, and
// any an operator adds), and lets the evaluators group evaluate.
// DelegatingAuthenticationOptions always enables anonymous requests;
// standalone answers them with 401.
func (o CompletedOptions) applyStandaloneAuthentication(c *genericapiserver.RecommendedConfig, pki *standalone.PKI) error {
	caProvider, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", pki.CACertFile())
	if err != nil {
		return err
	}
	certs := clientcert.NewAuthenticator(clientcert.NewCache(clock.RealClock{}), caProvider.VerifyOptions, x509request.CommonNameUserConversion)
	tokensFile, err := standalone.EnsureAppToken(o.DataDir)
	if err != nil {
		return fmt.Errorf("application token: %w", err)
	}
	tokens, err := tokenfile.NewCSV(tokensFile)
	if err != nil {
		return fmt.Errorf("reading %s: %w", tokensFile, err)
	}
	c.Authentication.Authenticator = group.NewAuthenticatedGroupAdder(unionauthn.New(certs, bearertoken.New(tokens)))
	authz, err := unionauthz.New(
		unionauthz.NamedAuthorizer{AuthorizerName: "standalone-admin", Authorizer: c.Authorization.Authorizer},
		unionauthz.NamedAuthorizer{AuthorizerName: "standalone-evaluators", Authorizer: standalone.EvaluatorAuthorizer},
	)
	if err != nil {
		return err
	}
	c.Authorization.Authorizer = authz
	return nil
}

// cacheFrontProxyVerification puts a front-proxy authenticator that verifies
// each distinct proxy certificate chain once ahead of the delegated
// authenticator upstream built, which verifies it on every request: through
// the aggregator every request carries kube-apiserver's front-proxy
// certificate. Identities still come from each request's X-Remote-* headers.
// A request it cannot authenticate (no proxy certificate, or a client
// certificate of another CA) goes on to upstream's authenticator as before.
func cacheFrontProxyVerification(c *genericapiserver.RecommendedConfig) {
	rh := c.Authentication.RequestHeaderConfig
	if rh == nil || c.Authentication.Authenticator == nil {
		return
	}
	frontProxy := clientcert.NewRequestHeader(clientcert.NewCache(clock.RealClock{}), rh.CAContentProvider.VerifyOptions,
		rh.AllowedClientNames, rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders, rh.ExtraHeaderPrefixes)
	c.Authentication.Authenticator = unionauthn.New(group.NewAuthenticatedGroupAdder(frontProxy), c.Authentication.Authenticator)
}
