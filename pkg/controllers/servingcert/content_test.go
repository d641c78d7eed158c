package servingcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	kubefake "k8s.io/client-go/kubernetes/fake"
)

type countingListener struct{ n atomic.Int32 }

func (l *countingListener) Enqueue() { l.n.Add(1) }

// servingSecret is a Secret with a fresh key pair for hosts.
func servingSecret(t *testing.T, hosts ...string) *corev1.Secret {
	t.Helper()
	ca, caKeyPEM, err := newCA(time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, caKey := signerOf([]*x509.Certificate{ca}, caKeyPEM)
	certPEM, keyPEM, err := newServingCert(time.Now(), time.Hour, ca, caKey, hosts)
	if err != nil {
		t.Fatal(err)
	}
	s := emptySecret()
	s.Data = map[string][]byte{CACertKey: encodeCertificates([]*x509.Certificate{ca}), CAKeyKey: caKeyPEM, TLSCertKey: certPEM, TLSKeyKey: keyPEM}
	return s
}

// Every replica serves the Secret's pair, the fallback until there is one,
// and the last good pair when the Secret's is damaged or the Secret goes.
func TestContentServesTheSecret(t *testing.T) {
	fallbackSecret := servingSecret(t, "fallback")
	fallback, err := dynamiccertificates.NewStaticCertKeyContent("fallback", fallbackSecret.Data[TLSCertKey], fallbackSecret.Data[TLSKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	client := kubefake.NewClientset()
	c := NewContent(client, testNamespace, testSecret, fallback)
	l := &countingListener{}
	c.AddListener(l)

	// No Secret yet: the fallback, and not ready.
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cert, _ := c.CurrentCertKeyContent(); !bytes.Equal(cert, fallbackSecret.Data[TLSCertKey]) {
		t.Error("without the Secret the fallback is not served")
	}
	if c.Check(nil) == nil || c.Served() != nil {
		t.Error("ready, or serving from the Secret, before the Secret exists")
	}

	// The Secret appears: served, listeners told, ready.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, 1)
	first := servingSecret(t, "api.flagpole-system.svc")
	if _, err := client.CoreV1().Secrets(testNamespace).Create(ctx, first, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitServed(t, c, first)
	if l.n.Load() == 0 {
		t.Error("the listener was not told of the new pair")
	}
	if err := c.Check(nil); err != nil {
		t.Errorf("not ready while serving the Secret's pair: %v", err)
	}

	// A new pair replaces it, without a restart.
	second := servingSecret(t, "api.flagpole-system.svc")
	toldBefore := l.n.Load()
	if _, err := client.CoreV1().Secrets(testNamespace).Update(ctx, second, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitServed(t, c, second)
	// The pair is served before the listeners are told: wait for that too,
	// so that the count below is the damaged pair's alone.
	if err := wait.PollUntilContextTimeout(ctx, time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return l.n.Load() > toldBefore, nil
	}); err != nil {
		t.Fatal("the listener was not told of the second pair")
	}

	// A damaged pair (a certificate with another pair's key) is not served.
	damaged := second.DeepCopy()
	damaged.Data[TLSKeyKey] = first.Data[TLSKeyKey]
	told := l.n.Load()
	c.load(damaged)
	if cert, _ := c.CurrentCertKeyContent(); !bytes.Equal(cert, second.Data[TLSCertKey]) || l.n.Load() != told {
		t.Error("a damaged pair replaced the good one")
	}

	// A deleted Secret leaves the pair served.
	if err := client.CoreV1().Secrets(testNamespace).Delete(ctx, testSecret, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return len(c.Informer().GetStore().List()) == 0, nil
	}); err != nil {
		t.Fatal("the informer did not see the deletion")
	}
	if cert, _ := c.CurrentCertKeyContent(); !bytes.Equal(cert, second.Data[TLSCertKey]) {
		t.Error("after the Secret was deleted the pair is no longer served")
	}
}

func waitServed(t *testing.T, c *Content, s *corev1.Secret) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		cert, key := c.CurrentCertKeyContent()
		return bytes.Equal(cert, s.Data[TLSCertKey]) && bytes.Equal(key, s.Data[TLSKeyKey]), nil
	}); err != nil {
		t.Fatal("the Secret's pair is not served")
	}
}
