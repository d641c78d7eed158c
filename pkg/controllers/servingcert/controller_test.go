package servingcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

const (
	testNamespace  = "flagpole-system"
	testSecret     = "flagpole-serving-cert"
	testAPIService = "v1beta1.flagpole.dev"
)

var (
	testHosts = []string{"api.flagpole-system.svc", "api.flagpole-system.svc.cluster.local", "flagpole.example.com"}
	// testSchedule is short, as a test overlay would set it; the logic is
	// the same at any scale.
	testSchedule = Schedule{CAValidity: 10 * time.Minute, CertValidity: 2 * time.Minute}
)

// fixture is a controller on fake clients with a fake clock, and a replay
// of every write it made, checked as it goes.
type fixture struct {
	t     *testing.T
	clock *clocktesting.FakeClock
	kube  *kubefake.Clientset
	agg   *aggregatorfake.Clientset
	ctrl  *Controller
	inv   *invariant
	// writes are the updates of both clients, in the order made.
	writes []runtime.Object
}

func emptySecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret}, Type: corev1.SecretTypeOpaque}
}

func apiService(caBundle []byte) *apiregistrationv1.APIService {
	return &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: testAPIService},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "flagpole.dev", Version: "v1beta1", GroupPriorityMinimum: 1000, VersionPriority: 15,
			Service:  &apiregistrationv1.ServiceReference{Namespace: testNamespace, Name: "api", Port: ptr.To[int32](443)},
			CABundle: caBundle,
		},
	}
}

func newFixture(t *testing.T, secret *corev1.Secret, as *apiregistrationv1.APIService) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: clocktesting.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	var objs []runtime.Object
	if secret != nil {
		objs = append(objs, secret)
	}
	f.kube = kubefake.NewClientset(objs...)
	f.agg = aggregatorfake.NewSimpleClientset(as)
	record := func(a clienttesting.Action) (bool, runtime.Object, error) {
		if w, ok := a.(interface{ GetObject() runtime.Object }); ok {
			f.writes = append(f.writes, w.GetObject().DeepCopyObject())
		}
		return false, nil, nil // and let the fake store it
	}
	f.kube.PrependReactor("create", "secrets", record)
	f.kube.PrependReactor("update", "secrets", record)
	f.agg.PrependReactor("update", "apiservices", record)
	var err error
	f.ctrl, err = NewController(ControllerConfig{
		Content:     NewContent(f.kube, testNamespace, testSecret, nil),
		APIServices: []string{testAPIService},
		Hosts:       testHosts[2:],
		Schedule:    testSchedule,
		Kube:        f.kube,
		Aggregator:  f.agg,
		Clock:       f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.inv = &invariant{t: t, trustedSince: map[string]time.Time{}, delay: testSchedule.TrustDelay()}
	if secret != nil {
		f.inv.leaf = servingCertificate(secret.Data[TLSCertKey], secret.Data[TLSKeyKey])
	}
	f.inv.apiService(f.clock.Now(), as.Spec.CABundle)
	return f
}

// sync runs one pass at the fake clock's time and replays its writes.
func (f *fixture) sync() time.Duration {
	f.t.Helper()
	next, err := f.ctrl.sync(context.Background())
	if err != nil {
		f.t.Fatalf("sync at %s: %v", f.clock.Now().Format(time.TimeOnly), err)
	}
	f.replay()
	return next
}

func (f *fixture) replay() {
	f.t.Helper()
	now := f.clock.Now()
	for _, obj := range f.writes {
		switch obj := obj.(type) {
		case *corev1.Secret:
			f.inv.secret(now, obj)
		case *apiregistrationv1.APIService:
			f.inv.apiService(now, obj.Spec.CABundle)
		}
	}
	f.writes = nil
	f.kube.ClearActions()
	f.agg.ClearActions()
}

// invariant follows what the replicas serve (the Secret's certificate) and
// what the aggregator trusts (the caBundle), write by write, and fails the
// test when a served certificate is not trusted once a certificate has
// been, or when a certificate from a CA is written less than the trust delay
// after the caBundle first held that CA.
type invariant struct {
	t            *testing.T
	delay        time.Duration
	leaf         *x509.Certificate
	bundle       []*x509.Certificate
	trustedSince map[string]time.Time // by CA fingerprint
	everTrusted  bool
	leaves, cas  int // certificates and CAs seen written
}

func (v *invariant) apiService(now time.Time, caBundle []byte) {
	v.bundle = caCertificates(caBundle)
	for _, ca := range v.bundle {
		if _, ok := v.trustedSince[fingerprint(ca)]; !ok {
			v.trustedSince[fingerprint(ca)] = now
		}
	}
	for fp := range v.trustedSince {
		if !slices.ContainsFunc(v.bundle, func(ca *x509.Certificate) bool { return fingerprint(ca) == fp }) {
			delete(v.trustedSince, fp)
		}
	}
	v.check(now, "caBundle written")
}

func (v *invariant) secret(now time.Time, s *corev1.Secret) {
	leaf := servingCertificate(s.Data[TLSCertKey], s.Data[TLSKeyKey])
	if leaf != nil && (v.leaf == nil || !bytes.Equal(leaf.Raw, v.leaf.Raw)) {
		v.leaves++
		if v.everTrusted && (v.leaf == nil || !sameIssuer(leaf, v.leaf)) {
			// A certificate from another CA than the one served, once the
			// aggregator trusted one: its CA must have been trusted for
			// the delay.
			ok := false
			for _, ca := range v.bundle {
				if leaf.CheckSignatureFrom(ca) == nil && !now.Before(v.trustedSince[fingerprint(ca)].Add(v.delay)) {
					ok = true
				}
			}
			if !ok {
				v.t.Errorf("%s: a certificate was written whose CA the caBundle has not held for %s: %s", now.Format(time.TimeOnly), v.delay, describe(leaf))
			}
		}
		v.leaf = leaf
	}
	v.check(now, "Secret written")
}

// sameIssuer reports whether a and b were signed by the same key.
func sameIssuer(a, b *x509.Certificate) bool {
	return bytes.Equal(a.AuthorityKeyId, b.AuthorityKeyId) && len(a.AuthorityKeyId) > 0
}

func (v *invariant) check(now time.Time, what string) {
	if v.leaf == nil {
		return
	}
	trusted := signedBy(v.leaf, v.bundle, now) && now.Before(v.leaf.NotAfter)
	if trusted {
		v.everTrusted = true
	} else if v.everTrusted {
		v.t.Errorf("%s, %s: the served certificate %s is not trusted by the caBundle (%d CAs)", now.Format(time.TimeOnly), what, describe(v.leaf), len(v.bundle))
	}
}

func (f *fixture) secretNow() secretState {
	f.t.Helper()
	s, err := f.kube.CoreV1().Secrets(testNamespace).Get(context.Background(), testSecret, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.kube.ClearActions()
	return readSecret(s)
}

func (f *fixture) caBundleNow() []byte {
	f.t.Helper()
	as, err := f.agg.ApiregistrationV1().APIServices().Get(context.Background(), testAPIService, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	f.agg.ClearActions()
	return as.Spec.CABundle
}

func countWrites(actions []clienttesting.Action) int {
	n := 0
	for _, a := range actions {
		if a.GetVerb() != "get" {
			n++
		}
	}
	return n
}

// A fresh install: no Secret, and an APIService without caBundle. One pass
// creates the Secret (of type kubernetes.io/tls) with the CA, sets the
// caBundle, then writes the certificate, for the APIService's Service names
// and --tls-san; a second pass writes nothing.
func TestFreshInstall(t *testing.T) {
	f := newFixture(t, nil, apiService(nil))
	next := f.sync()
	st := f.secretNow()
	if st.secret.Type != corev1.SecretTypeTLS {
		t.Errorf("the Secret's type is %q", st.secret.Type)
	}
	if len(st.cas) != 1 || st.signer == nil || st.leaf == nil {
		t.Fatalf("after one pass: %d CAs, signer %v, certificate %v", len(st.cas), st.signer != nil, st.leaf != nil)
	}
	if !bytes.Equal(f.caBundleNow(), st.secret.Data[CACertKey]) {
		t.Error("the caBundle is not the Secret's ca.crt")
	}
	if !covers(st.leaf, testHosts) {
		t.Errorf("certificate names %v %v, want %v", st.leaf.DNSNames, st.leaf.IPAddresses, testHosts)
	}
	roots := x509.NewCertPool()
	roots.AddCert(st.signer)
	if _, err := st.leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "api.flagpole-system.svc", CurrentTime: f.clock.Now()}); err != nil {
		t.Errorf("the certificate does not verify for the aggregator's name: %v", err)
	}
	if got, want := st.leaf.NotAfter.Sub(f.clock.Now()), testSchedule.CertValidity; got != want {
		t.Errorf("certificate valid for %s, want %s", got, want)
	}
	if want := renewAt(st.leaf).Sub(f.clock.Now()); next != min(want, apiServiceRecheck) {
		t.Errorf("next pass in %s, want %s", next, min(want, apiServiceRecheck))
	}
	if f.inv.leaves != 1 || !f.inv.everTrusted {
		t.Errorf("replay: %d certificates written, trusted %v", f.inv.leaves, f.inv.everTrusted)
	}

	f.sync()
	if n := countWrites(f.kube.Actions()) + countWrites(f.agg.Actions()); n != 0 {
		t.Errorf("a second pass wrote %d times", n)
	}
}

// Over three CA lifetimes, with a pass whenever the controller asks for
// one: the certificate is renewed before it expires, the CA is replaced
// before it expires, old and new CA are trusted together during each
// change, a certificate from a new CA is served only once the caBundle has
// held it for the trust delay, an expired CA leaves the bundle, and the
// served certificate is never untrusted (the replay checks it write by
// write).
func TestRotationsKeepTheServedCertificateTrusted(t *testing.T) {
	f := newFixture(t, nil, apiService(nil))
	end := f.clock.Now().Add(3 * testSchedule.CAValidity)
	var signers []string
	maxCAs := 0
	for f.clock.Now().Before(end) {
		next := f.sync()
		st := f.secretNow()
		if fp := fingerprint(st.signer); !slices.Contains(signers, fp) {
			signers = append(signers, fp)
		}
		maxCAs = max(maxCAs, len(st.cas))
		for _, ca := range st.cas {
			if !f.clock.Now().Before(ca.NotAfter) {
				t.Fatalf("%s: an expired CA is still in ca.crt", f.clock.Now())
			}
		}
		if !bytes.Equal(f.caBundleNow(), st.secret.Data[CACertKey]) {
			t.Fatalf("%s: the caBundle differs from ca.crt", f.clock.Now())
		}
		// The pass comes when asked; the certificate never expires first.
		f.clock.Step(next)
		if !f.clock.Now().Before(st.leaf.NotAfter) {
			t.Fatalf("the certificate %s expired before the next pass (%s later)", describe(st.leaf), next)
		}
	}
	if len(signers) < 3 || maxCAs != 2 {
		t.Errorf("over three CA lifetimes: %d CAs signed, at most %d trusted at once; want at least 3, and 2 during each change", len(signers), maxCAs)
	}
	// Renewed when a third of the lifetime is left: every 2/3 of it.
	if min := int(3 * testSchedule.CAValidity / (testSchedule.CertValidity * 2 / 3)); f.inv.leaves < min {
		t.Errorf("%d certificates written, want at least %d", f.inv.leaves, min)
	}
}

// The CA change step by step: the new CA is trusted beside the old first,
// the certificate changes to the new CA one trust delay later, and the old
// CA leaves only when it expires.
func TestCAChangeOrder(t *testing.T) {
	f := newFixture(t, nil, apiService(nil))
	f.sync()
	first := f.secretNow()
	// Just before the CA is due, renewals keep the same CA.
	for f.clock.Now().Before(renewAt(first.signer)) {
		f.clock.Step(f.sync())
	}
	f.sync()
	st := f.secretNow()
	if len(st.cas) != 2 || !contains(st.cas, first.signer) || st.signer.Equal(first.signer) {
		t.Fatalf("when the CA is due: %d CAs, new signer %v; want the old and a new one", len(st.cas), !st.signer.Equal(first.signer))
	}
	if !bytes.Equal(f.caBundleNow(), st.secret.Data[CACertKey]) {
		t.Fatal("the caBundle does not trust both CAs")
	}
	if st.leaf.CheckSignatureFrom(first.signer) != nil {
		t.Fatal("the certificate changed to the new CA in the same pass that trusted it")
	}
	next := f.sync()
	if next > testSchedule.TrustDelay() {
		t.Errorf("while waiting for trust the next pass is in %s, want within the trust delay %s", next, testSchedule.TrustDelay())
	}
	f.clock.Step(testSchedule.TrustDelay())
	f.sync()
	after := f.secretNow()
	if after.leaf.CheckSignatureFrom(st.signer) != nil {
		t.Fatalf("one trust delay after the new CA was trusted the certificate is still from the old one: %s", describe(after.leaf))
	}
	if len(after.cas) != 2 {
		t.Fatalf("the old CA left the bundle before it expired (%d CAs)", len(after.cas))
	}
	for f.clock.Now().Before(first.signer.NotAfter) {
		f.clock.Step(f.sync())
	}
	f.sync()
	if final := f.secretNow(); len(final.cas) != 1 || !final.cas[0].Equal(st.signer) {
		t.Errorf("after the old CA expired: %d CAs, want the new one alone", len(final.cas))
	}
}

// Moving from hack/deploy-certs.sh (or cert-manager) to self-managed: the
// Secret holds the script's CA and certificate, without the CA's key, and
// the caBundle is the script's CA. The leader makes a CA of its own, trusts
// both, and changes the certificate only after the trust delay, so that
// the script's certificate, still served, stays trusted.
func TestTakesOverFromScriptCertificates(t *testing.T) {
	scriptCA, scriptKeyPEM, err := newCA(time.Now(), 10*365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, scriptKey := signerOf([]*x509.Certificate{scriptCA}, scriptKeyPEM)
	certPEM, keyPEM, err := newServingCert(time.Now(), 365*24*time.Hour, scriptCA, scriptKey, testHosts[:2])
	if err != nil {
		t.Fatal(err)
	}
	secret := emptySecret()
	secret.Type = corev1.SecretTypeTLS
	secret.Data = map[string][]byte{TLSCertKey: certPEM, TLSKeyKey: keyPEM, CACertKey: encodeCertificates([]*x509.Certificate{scriptCA})}
	f := newFixture(t, secret, apiService(secret.Data[CACertKey]))
	f.sync()
	st := f.secretNow()
	if len(st.cas) != 2 || !st.cas[0].Equal(scriptCA) || st.signer.Equal(scriptCA) {
		t.Fatalf("after the first pass: %d CAs; want the script's and a new one", len(st.cas))
	}
	if !bytes.Equal(st.secret.Data[TLSCertKey], certPEM) {
		t.Fatal("the script's certificate was replaced before the new CA was trusted for the delay")
	}
	f.clock.Step(testSchedule.TrustDelay())
	f.sync()
	if st := f.secretNow(); st.leaf.CheckSignatureFrom(st.signer) != nil {
		t.Errorf("after the delay the certificate is not from the new CA: %s", describe(st.leaf))
	}
	if f.inv.leaves != 1 {
		t.Errorf("%d new certificates served, want one", f.inv.leaves)
	}
}

// A Secret emptied by hand while the replicas serve a certificate from
// before: the CAs the APIService trusts stay trusted, and the new
// certificate waits for the trust delay, because this replica still serves
// the old one.
func TestEmptiedSecretKeepsServedCertificateTrusted(t *testing.T) {
	f := newFixture(t, emptySecret(), apiService(nil))
	f.sync()
	before := f.secretNow()
	f.ctrl.cfg.Content.load(before.secret)
	if f.ctrl.cfg.Content.Served() == nil {
		t.Fatal("the content does not serve the Secret's certificate")
	}
	if _, err := f.kube.CoreV1().Secrets(testNamespace).Update(context.Background(), emptySecret(), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.kube.ClearActions()
	f.inv.leaf = before.leaf // what the replicas still serve
	f.sync()
	st := f.secretNow()
	if !contains(st.cas, before.signer) || len(st.cas) != 2 {
		t.Fatalf("the CA the APIService trusted left the bundle (%d CAs)", len(st.cas))
	}
	if st.leaf != nil {
		t.Fatalf("a new certificate was written at once: %s", describe(st.leaf))
	}
	f.clock.Step(testSchedule.TrustDelay())
	f.sync()
	if st := f.secretNow(); st.leaf == nil || st.leaf.CheckSignatureFrom(st.signer) != nil {
		t.Errorf("after the delay: certificate %s", describe(st.leaf))
	}
}

// When the APIService may not be updated (RBAC), the pass fails and says
// so; on a fresh install the certificate is still written (nothing trusted
// one before), so that OFREP clients with ca.crt are served.
func TestAPIServiceUpdateRefused(t *testing.T) {
	f := newFixture(t, nil, apiService(nil))
	f.agg.PrependReactor("update", "apiservices", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}, testAPIService, errors.New("RBAC"))
	})
	_, err := f.ctrl.sync(context.Background())
	if !apierrors.IsForbidden(err) {
		t.Fatalf("sync: %v, want the Forbidden", err)
	}
	st := f.secretNow()
	if st.leaf == nil {
		t.Error("no certificate written on a fresh install whose APIService cannot be updated")
	}
	if _, ok := st.trustedSince(st.signer); ok {
		t.Error("the Secret records the CA as trusted though the caBundle was not written")
	}
}

// A Secret emptied by hand (or made empty by someone else) is filled.
func TestEmptySecretIsFilled(t *testing.T) {
	f := newFixture(t, emptySecret(), apiService(nil))
	f.sync()
	if st := f.secretNow(); st.leaf == nil || st.signer == nil || st.secret.Type != corev1.SecretTypeOpaque {
		t.Errorf("the empty Secret was not filled in place: certificate %v, CA %v, type %s", st.leaf != nil, st.signer != nil, st.secret.Type)
	}
}

// A change of names (another --tls-san) gives a new certificate at once,
// from the same CA.
func TestNewHostsNewCertificate(t *testing.T) {
	f := newFixture(t, nil, apiService(nil))
	f.sync()
	before := f.secretNow()
	f.ctrl.cfg.Hosts = []string{"flagpole.example.org"}
	f.sync()
	st := f.secretNow()
	if bytes.Equal(st.leaf.Raw, before.leaf.Raw) || !st.signer.Equal(before.signer) {
		t.Fatal("no new certificate from the same CA after the names changed")
	}
	if err := st.leaf.VerifyHostname("flagpole.example.org"); err != nil {
		t.Error(err)
	}
}

func TestScheduleValidate(t *testing.T) {
	for _, s := range []Schedule{
		{CAValidity: time.Hour, CertValidity: 10 * time.Second},
		{CAValidity: time.Minute, CertValidity: time.Hour},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if err := DefaultSchedule.Validate(); err != nil {
		t.Error(err)
	}
	if d := DefaultSchedule.TrustDelay(); d != time.Minute {
		t.Errorf("default trust delay %s", d)
	}
}
