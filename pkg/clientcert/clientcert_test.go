package clientcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	clocktesting "k8s.io/utils/clock/testing"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

var serial int64

func newCA(t testing.TB, name string) *ca {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert: cert, key: key, pool: pool}
}

func (c *ca) issue(t testing.TB, cn string, groups []string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, Organization: groups},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func request(cert *x509.Certificate, header ...string) *http.Request {
	req, _ := http.NewRequest("GET", "https://flagpole/", nil)
	req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return req
}

// options returns what a dynamic CA provider returns: the current pool.
func options(current **x509.CertPool) x509request.VerifyOptionFunc {
	return func() (x509.VerifyOptions, bool) {
		opts := x509request.DefaultVerifyOptions()
		opts.Roots = *current
		return opts, true
	}
}

func TestAuthenticatorCachesVerificationOnly(t *testing.T) {
	now := time.Now()
	clk := clocktesting.NewFakePassiveClock(now)
	cache := NewCache(clk)
	clients := newCA(t, "clients")
	pool := clients.pool
	a := NewAuthenticator(cache, options(&pool), x509request.CommonNameUserConversion)

	alice := clients.issue(t, "alice", []string{"team-a"}, now.Add(10*time.Minute))
	for range 2 { // the second answer comes from the cache
		resp, ok, err := a.AuthenticateRequest(request(alice))
		if err != nil || !ok || resp.User.GetName() != "alice" || resp.User.GetGroups()[0] != "team-a" {
			t.Fatalf("alice: %v %v %v", resp, ok, err)
		}
	}
	if cache.entries.Len() != 1 {
		t.Errorf("%d cache entries after two requests with one certificate, want 1", cache.entries.Len())
	}

	// Another CA's certificate is refused, and not remembered.
	stranger := newCA(t, "stranger").issue(t, "mallory", nil, now.Add(time.Hour))
	if _, ok, err := a.AuthenticateRequest(request(stranger)); ok || err == nil {
		t.Errorf("a certificate from an untrusted CA authenticated (ok=%v err=%v)", ok, err)
	}
	if cache.entries.Len() != 1 {
		t.Errorf("a failed verification was cached")
	}

	// Rotating the CA bundle: nothing verified against the old pool is reused.
	pool = newCA(t, "rotated").pool
	if _, ok, err := a.AuthenticateRequest(request(alice)); ok || err == nil {
		t.Errorf("alice authenticated against a bundle without her CA (ok=%v err=%v)", ok, err)
	}
	pool = clients.pool

	// Expiry is honoured even though the entry is younger than the TTL.
	bob := clients.issue(t, "bob", nil, now.Add(30*time.Second))
	if _, ok, err := a.AuthenticateRequest(request(bob)); !ok || err != nil {
		t.Fatalf("bob: %v %v", ok, err)
	}
	clk.SetTime(now.Add(31 * time.Second))
	if _, ok, err := a.AuthenticateRequest(request(bob)); ok || err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("bob after his certificate expired: ok=%v err=%v, want expired", ok, err)
	}
	// And the TTL bounds reuse of a long-lived certificate's verification.
	clk.SetTime(now.Add(TTL + time.Second))
	if _, ok, err := a.AuthenticateRequest(request(alice)); !ok || err != nil {
		t.Errorf("alice after the TTL (re-verified): %v %v", ok, err)
	}
}

func TestRequestHeaderReadsHeadersEveryRequest(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Now())
	proxyCA := newCA(t, "front-proxy")
	pool := proxyCA.pool
	names := func(v ...string) headerrequest.StringSliceProvider { return headerrequest.StaticStringSlice(v) }
	a := NewRequestHeader(NewCache(clk), options(&pool), names("front-proxy-client"),
		names("X-Remote-User"), names("X-Remote-Uid"), names("X-Remote-Group"), names("X-Remote-Extra-"))

	proxy := proxyCA.issue(t, "front-proxy-client", nil, time.Now().Add(time.Hour))
	for _, user := range []string{"alice", "bob"} {
		resp, ok, err := a.AuthenticateRequest(request(proxy, "X-Remote-User", user, "X-Remote-Group", user+"-group"))
		if err != nil || !ok || resp.User.GetName() != user || resp.User.GetGroups()[0] != user+"-group" {
			t.Errorf("as %s: %v %v %v", user, resp, ok, err)
		}
	}
	other := proxyCA.issue(t, "not-the-proxy", nil, time.Now().Add(time.Hour))
	if _, ok, err := a.AuthenticateRequest(request(other, "X-Remote-User", "alice")); ok || err == nil {
		t.Errorf("a certificate with a common name not allowed authenticated (ok=%v err=%v)", ok, err)
	}
	if _, ok, err := a.AuthenticateRequest(request(newCA(t, "x").issue(t, "front-proxy-client", nil, time.Now().Add(time.Hour)), "X-Remote-User", "alice")); ok || err == nil {
		t.Errorf("a proxy certificate from another CA authenticated (ok=%v err=%v)", ok, err)
	}
}

// BenchmarkClientCertificate compares upstream's per-request verification
// with the cache, for one client certificate presented over and over.
func BenchmarkClientCertificate(b *testing.B) {
	clients := newCA(b, "clients")
	pool := clients.pool
	req := request(clients.issue(b, "alice", nil, time.Now().Add(time.Hour)))
	b.Run("upstream", func(b *testing.B) {
		a := x509request.NewDynamic(options(&pool), x509request.CommonNameUserConversion)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := a.AuthenticateRequest(req); !ok || err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		a := NewAuthenticator(NewCache(clocktesting.NewFakePassiveClock(time.Now())), options(&pool), x509request.CommonNameUserConversion)
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := a.AuthenticateRequest(req); !ok || err != nil {
				b.Fatal(err)
			}
		}
	})
}
