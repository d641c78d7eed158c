package servingcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	corev1informers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// resync is the informer's full resync, as upstream's ConfigMap CA content
// has it: the watch is what keeps the content current.
const resync = 12 * time.Hour

// Content is the serving certificate of every replica in self-managed
// mode: the key pair of one Secret, watched by an informer of that Secret
// alone (field selector metadata.name, so that RBAC can grant the one
// Secret by name), in the shape of upstream's dynamic certificate content
// (dynamiccertificates.ConfigMapCAController is its model for a CA bundle).
// Set as SecureServingInfo.Cert, it is run by the generic server, which
// reloads its TLS configuration whenever the pair changes. Until the Secret
// holds a usable pair it serves the fallback (the self-signed certificate in
// --cert-dir); a damaged pair, or a deleted Secret, leaves the last good
// pair served.
type Content struct {
	namespace, secretName string
	client                kubernetes.Interface
	informer              cache.SharedIndexInformer
	fallback              dynamiccertificates.CertKeyContentProvider

	current atomic.Pointer[keyPair]
	mu      sync.Mutex // guards listeners
	// listeners are told of a new pair: the generic server's serving
	// certificate controller.
	listeners []dynamiccertificates.Listener
}

type keyPair struct {
	cert, key []byte
	leaf      *x509.Certificate
}

var (
	_ dynamiccertificates.CertKeyContentProvider = &Content{}
	_ dynamiccertificates.ControllerRunner       = &Content{}
)

// NewContent serves the key pair of Secret namespace/name, and fallback
// until it holds one; fallback may be nil (then nothing is served until
// then).
func NewContent(client kubernetes.Interface, namespace, name string, fallback dynamiccertificates.CertKeyContentProvider) *Content {
	informer := corev1informers.NewFilteredSecretInformer(client, namespace, resync, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	c := &Content{
		namespace:  namespace,
		secretName: name,
		client:     client,
		informer:   informer,
		fallback:   fallback,
	}
	// The informer holds the one Secret: every event is about it. A deleted
	// Secret keeps the pair being served.
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.load(obj) },
		UpdateFunc: func(_, obj any) { c.load(obj) },
	})
	return c
}

// Name identifies the content in upstream's logs.
func (c *Content) Name() string {
	return "serving-cert::secret::" + c.namespace + "/" + c.secretName
}

// Namespace and SecretName name the Secret.
func (c *Content) Namespace() string  { return c.namespace }
func (c *Content) SecretName() string { return c.secretName }

// CurrentCertKeyContent is the pair served now.
func (c *Content) CurrentCertKeyContent() ([]byte, []byte) {
	if p := c.current.Load(); p != nil {
		return p.cert, p.key
	}
	if c.fallback != nil {
		return c.fallback.CurrentCertKeyContent()
	}
	return nil, nil
}

// AddListener adds a listener told of every new pair.
func (c *Content) AddListener(l dynamiccertificates.Listener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, l)
}

// Served is the certificate served from the Secret, nil while the fallback
// is served.
func (c *Content) Served() *x509.Certificate {
	if p := c.current.Load(); p != nil {
		return p.leaf
	}
	return nil
}

// Check is a readyz check: a replica is ready once it serves a pair from
// the Secret, which the aggregator and applications can verify with ca.crt.
func (c *Content) Check(*http.Request) error {
	if c.current.Load() == nil {
		return fmt.Errorf("no serving certificate from Secret %s/%s yet (the leader writes it)", c.namespace, c.secretName)
	}
	return nil
}

// RunOnce reads the Secret once, so that the first connections are served
// its pair; a failure is logged and left to Run, as upstream's content
// controllers do.
func (c *Content) RunOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := c.client.CoreV1().Secrets(c.namespace).Get(ctx, c.secretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		klog.InfoS("Serving certificate Secret not found yet; serving the self-signed certificate meanwhile", "secret", klog.KRef(c.namespace, c.secretName))
	case err != nil:
		klog.ErrorS(err, "Reading the serving certificate Secret; the watch will retry", "secret", klog.KRef(c.namespace, c.secretName))
	default:
		c.load(s)
	}
	return nil
}

// Run watches the Secret until ctx is done.
func (c *Content) Run(ctx context.Context, _ int) {
	klog.InfoS("Starting controller", "name", c.Name())
	defer klog.InfoS("Shutting down controller", "name", c.Name())
	c.informer.Run(ctx.Done())
}

// Informer is the informer of the Secret, for the leader's controller.
func (c *Content) Informer() cache.SharedIndexInformer { return c.informer }

func (c *Content) load(obj any) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	cert, key := s.Data[TLSCertKey], s.Data[TLSKeyKey]
	if len(cert) == 0 && len(key) == 0 {
		return // not written yet
	}
	if p := c.current.Load(); p != nil && bytes.Equal(p.cert, cert) && bytes.Equal(p.key, key) {
		return
	}
	leaf := servingCertificate(cert, key)
	if leaf == nil {
		klog.ErrorS(nil, "The serving certificate Secret's key pair is unusable; serving the previous pair", "secret", klog.KObj(s))
		return
	}
	c.current.Store(&keyPair{cert: cert, key: key, leaf: leaf})
	klog.InfoS("Serving a new certificate from the Secret", "secret", klog.KObj(s), "certificate", describe(leaf))
	c.mu.Lock()
	listeners := append([]dynamiccertificates.Listener(nil), c.listeners...)
	c.mu.Unlock()
	for _, l := range listeners {
		l.Enqueue()
	}
}
