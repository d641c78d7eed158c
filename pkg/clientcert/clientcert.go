// Package clientcert authenticates requests by client certificate, as
// k8s.io/apiserver's x509 and request-header authenticators do, but
// verifies each distinct certificate chain once rather than on every
// request.
//
// Upstream verifies the presented chain against the CA bundle per request
// (x509.Certificate.Verify: signature checks on every hop). Under load that
// was 41% of Flagpole's CPU, and through the aggregator every request carries
// kube-apiserver's front-proxy certificate, so the same cost hits every
// delegated request. A chain's verification depends only on the chain, the
// CA bundle and the time, so the result is cached keyed by the chain's bytes
// and the CA pool in force (a rotated bundle is a new pool, so nothing
// verified against the old one is reused), until the chain's earliest
// NotAfter or a TTL, whichever comes first. Only verification is cached:
// identities taken from request headers are read on every request.
package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/utils/clock"
	"k8s.io/utils/lru"
)

// Cache bounds.
const (
	// MaxEntries bounds how many verified chains are remembered: far more
	// than distinct client identities a Flagpole serves, small in memory
	// (an entry is a digest, a pool pointer, a time and a response).
	MaxEntries = 4096
	// TTL bounds how long a verification is reused, whatever the chain's
	// validity, so that a verify-time policy change applies within a minute.
	TTL = time.Minute
)

// Cache remembers verified chains. One Cache may serve several
// authenticators: entries are keyed by the CA pool, too.
type Cache struct {
	entries *lru.Cache
	clock   clock.PassiveClock
}

// NewCache returns an empty cache.
func NewCache(c clock.PassiveClock) *Cache {
	return &Cache{entries: lru.New(MaxEntries), clock: c}
}

type key struct {
	roots *x509.CertPool
	chain [sha256.Size]byte
}

type entry struct {
	verified [][]*x509.Certificate
	expires  time.Time
}

// verify verifies the request's chain against opts, from the cache when the
// same chain was verified against the same pool before.
func (c *Cache) verify(peer []*x509.Certificate, opts x509.VerifyOptions) ([][]*x509.Certificate, error) {
	h := sha256.New()
	for _, cert := range peer {
		h.Write(cert.Raw)
	}
	k := key{roots: opts.Roots}
	h.Sum(k.chain[:0])
	now := c.clock.Now()
	if v, ok := c.entries.Get(k); ok {
		if e := v.(entry); now.Before(e.expires) {
			return e.verified, nil
		}
		c.entries.Remove(k)
	}

	if opts.Intermediates == nil && len(peer) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, intermediate := range peer[1:] {
			opts.Intermediates.AddCert(intermediate)
		}
	}
	// Verify at the cache's clock, so that expiry is judged by the same clock
	// that bounds the entry.
	opts.CurrentTime = now
	chains, err := peer[0].Verify(opts)
	if err != nil {
		// Failures are not cached: they cost the caller a verification, as
		// upstream does, and cannot fill the cache.
		return nil, fmt.Errorf("verifying certificate %s failed: %w", peer[0].Subject, err)
	}
	expires := now.Add(TTL)
	for _, chain := range chains {
		for _, cert := range chain {
			if cert.NotAfter.Before(expires) {
				expires = cert.NotAfter
			}
		}
	}
	c.entries.Add(k, entry{verified: chains, expires: expires})
	return chains, nil
}

// Authenticator authenticates a client certificate as upstream's x509
// authenticator does: the user comes from the verified chain alone.
type Authenticator struct {
	cache         *Cache
	verifyOptions x509request.VerifyOptionFunc
	user          x509request.UserConversion
}

var _ authenticator.Request = &Authenticator{}

// NewAuthenticator returns a caching equivalent of x509request.NewDynamic.
func NewAuthenticator(cache *Cache, verifyOptions x509request.VerifyOptionFunc, user x509request.UserConversion) *Authenticator {
	return &Authenticator{cache: cache, verifyOptions: verifyOptions, user: user}
}

// AuthenticateRequest implements authenticator.Request.
func (a *Authenticator) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	opts, ok := a.verifyOptions()
	if !ok {
		return nil, false, nil
	}
	chains, err := a.cache.verify(req.TLS.PeerCertificates, opts)
	if err != nil {
		return nil, false, err
	}
	var errs []error
	for _, chain := range chains {
		resp, ok, err := a.user.User(chain)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return resp, true, nil
		}
	}
	if len(errs) > 0 {
		return nil, false, errs[0]
	}
	return nil, false, nil
}

// RequestHeader authenticates a front proxy's request as upstream's
// request-header authenticator does: the proxy's certificate must verify
// against the request-header CA and carry an allowed common name; the user
// is then read from the X-Remote-* headers of this request.
type RequestHeader struct {
	cache         *Cache
	verifyOptions x509request.VerifyOptionFunc
	allowedNames  headerrequest.StringSliceProvider
	headers       authenticator.Request
}

var _ authenticator.Request = &RequestHeader{}

// NewRequestHeader returns a caching equivalent of
// headerrequest.NewDynamicVerifyOptionsSecure.
func NewRequestHeader(cache *Cache, verifyOptions x509request.VerifyOptionFunc, allowedNames, nameHeaders, uidHeaders, groupHeaders, extraHeaderPrefixes headerrequest.StringSliceProvider) *RequestHeader {
	return &RequestHeader{
		cache:         cache,
		verifyOptions: verifyOptions,
		allowedNames:  allowedNames,
		headers:       headerrequest.NewDynamic(nameHeaders, uidHeaders, groupHeaders, extraHeaderPrefixes),
	}
}

// AuthenticateRequest implements authenticator.Request.
func (a *RequestHeader) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS == nil || len(req.TLS.PeerCertificates) == 0 {
		return nil, false, nil
	}
	opts, ok := a.verifyOptions()
	if !ok {
		return nil, false, nil
	}
	if _, err := a.cache.verify(req.TLS.PeerCertificates, opts); err != nil {
		return nil, false, err
	}
	if allowed := a.allowedNames.Value(); len(allowed) > 0 {
		cn := req.TLS.PeerCertificates[0].Subject.CommonName
		found := false
		for _, name := range allowed {
			if name == cn {
				found = true
				break
			}
		}
		if !found {
			return nil, false, fmt.Errorf("x509: subject with cn=%s is not in the allowed list", cn)
		}
	}
	return a.headers.AuthenticateRequest(req)
}
