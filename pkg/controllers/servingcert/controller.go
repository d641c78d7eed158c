package servingcert

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/clock"
)

// apiServiceRecheck is how often the leader reads the APIServices again.
// It may only get and update them, by name (no watch): a caBundle that
// something else changed, or an APIService deleted and re-created, is put
// right within this time.
const apiServiceRecheck = 15 * time.Second

// ControllerConfig is what the leader's controller keeps and with what.
type ControllerConfig struct {
	// Content is this replica's serving content, whose informer the
	// controller reads the Secret from.
	Content *Content
	// APIServices are the names of the APIServices to keep the caBundle
	// of: one per version Flagpole serves.
	APIServices []string
	// Hosts are names the serving certificate carries beside those of the
	// APIServices' Services (--tls-san).
	Hosts    []string
	Schedule Schedule
	Kube     kubernetes.Interface
	// Aggregator reads and updates the APIServices.
	Aggregator aggregator.Interface
	Clock      clock.WithTicker
}

// Controller keeps the Secret's CA and key pair and the APIServices'
// caBundle (see the package documentation). It runs on the leader only,
// once: a new term of leadership makes a new one.
type Controller struct {
	cfg    ControllerConfig
	queue  workqueue.TypedRateLimitingInterface[string]
	handle cache.ResourceEventHandlerRegistration
}

// The controller's queue has one key: everything is one Secret.
const queueKey = "serving-cert"

// NewController registers the controller's handler with the content's
// informer (which the generic server runs).
func NewController(cfg ControllerConfig) (*Controller, error) {
	if cfg.Content == nil || cfg.Kube == nil || cfg.Aggregator == nil || cfg.Clock == nil || len(cfg.APIServices) == 0 {
		return nil, errors.New("servingcert: the controller needs the content, clients, a clock and the APIServices' names")
	}
	if err := cfg.Schedule.Validate(); err != nil {
		return nil, err
	}
	c := &Controller{
		cfg: cfg,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serving-cert", Clock: cfg.Clock}),
	}
	enqueue := func(any) { c.queue.Add(queueKey) }
	handle, err := cfg.Content.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	if err != nil {
		return nil, err
	}
	c.handle = handle
	return c, nil
}

// Run keeps the certificate until ctx is done, and returns once its worker
// has stopped and its handler is removed from the informer.
func (c *Controller) Run(ctx context.Context) {
	defer utilruntime.HandleCrash()
	defer func() {
		if err := c.cfg.Content.Informer().RemoveEventHandler(c.handle); err != nil {
			utilruntime.HandleError(err)
		}
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer c.queue.ShutDown()
	logger := klog.FromContext(ctx)
	logger.Info("Starting serving certificate controller", "secret", klog.KRef(c.cfg.Content.Namespace(), c.cfg.Content.SecretName()), "apiServices", c.cfg.APIServices)
	defer logger.Info("Shutting down serving certificate controller")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.cfg.Content.Informer().HasSynced, c.handle.HasSynced) {
		return
	}
	c.queue.Add(queueKey)
	wg.Go(func() { wait.UntilWithContext(ctx, c.worker, time.Second) })
	<-ctx.Done()
}

func (c *Controller) worker(ctx context.Context) {
	for {
		key, quit := c.queue.Get()
		if quit {
			return
		}
		next, err := c.sync(ctx)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Keeping the serving certificate; retrying")
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
			c.queue.AddAfter(key, next)
		}
		c.queue.Done(key)
	}
}

// secretState is the Secret, read.
type secretState struct {
	secret *corev1.Secret
	// cas are ca.crt's CA certificates, signer the one of them whose key
	// ca.key holds (nil if none), leaf the certificate of tls.crt and
	// tls.key if they belong together.
	cas       []*x509.Certificate
	signer    *x509.Certificate
	signerKey crypto.Signer
	leaf      *x509.Certificate
}

func readSecret(s *corev1.Secret) secretState {
	st := secretState{secret: s, cas: caCertificates(s.Data[CACertKey])}
	st.signer, st.signerKey = signerOf(st.cas, s.Data[CAKeyKey])
	st.leaf = servingCertificate(s.Data[TLSCertKey], s.Data[TLSKeyKey])
	return st
}

// trustedSince is since when every APIService has trusted ca, as recorded.
func (st secretState) trustedSince(ca *x509.Certificate) (time.Time, bool) {
	a := st.secret.Annotations
	if a[trustedCAAnnotation] != fingerprint(ca) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, a[trustedSinceAnnotation])
	return t, err == nil
}

// sync does one pass, in the order that keeps every served certificate
// trusted, and says when the next is due.
func (c *Controller) sync(ctx context.Context) (time.Duration, error) {
	logger := klog.FromContext(ctx)
	content := c.cfg.Content
	ref := klog.KRef(content.Namespace(), content.SecretName())
	// Read from the API, not the informer: a pass must never act on a
	// Secret older than its own last write (an old bundle would take a CA
	// out of the caBundle). A missing Secret is created with the CA.
	secret, err := c.cfg.Kube.CoreV1().Secrets(content.Namespace()).Get(ctx, content.SecretName(), metav1.GetOptions{})
	missing := apierrors.IsNotFound(err)
	if missing {
		// Of type kubernetes.io/tls, as cert-manager's and
		// hack/deploy-certs.sh's, so that either can take it over.
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: content.SecretName(), Namespace: content.Namespace()},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{TLSCertKey: {}, TLSKeyKey: {}},
		}
	} else if err != nil {
		return 0, err
	}
	apiServices, err := c.apiServices(ctx)
	if err != nil {
		return 0, err
	}
	if len(apiServices) == 0 {
		logger.Info("Waiting for Flagpole's APIServices to exist", "apiServices", c.cfg.APIServices)
		return apiServiceRecheck, nil
	}
	hosts := c.hosts(apiServices)
	if len(hosts) == 0 {
		return 0, fmt.Errorf("APIServices %v name no Service and --tls-san no host: nothing to make a serving certificate for", c.cfg.APIServices)
	}
	now := c.cfg.Clock.Now()
	st := readSecret(secret)
	sched := c.cfg.Schedule

	// 1. What is trusted: the CAs that have not expired, and a CA to sign
	// with that is not due for replacement. A Secret without CAs (written
	// for the first time, or emptied by hand) keeps trusting the CAs the
	// APIServices trust now, so that what the replicas serve from before
	// stays trusted until it expires.
	cas := slices.DeleteFunc(slices.Clone(st.cas), func(ca *x509.Certificate) bool { return !now.Before(ca.NotAfter) })
	if len(st.cas) == 0 {
		for _, as := range apiServices {
			for _, ca := range caCertificates(as.Spec.CABundle) {
				if now.Before(ca.NotAfter) && !contains(cas, ca) {
					cas = append(cas, ca)
				}
			}
		}
	}
	signer, signerKeyPEM := st.signer, secret.Data[CAKeyKey]
	if signer == nil || !now.Before(renewAt(signer)) {
		newSigner, keyPEM, err := newCA(now, sched.CAValidity)
		if err != nil {
			return 0, err
		}
		reason := "no usable CA in the Secret"
		if signer != nil {
			reason = "the CA is due for replacement"
		}
		logger.Info("Made a new CA for the serving certificate; trusting it beside the current ones", "secret", ref, "reason", reason,
			"ca", describe(newSigner), "previous", describe(signer))
		signer, signerKeyPEM = newSigner, keyPEM
		cas = append(cas, signer)
	}
	signerKey := st.signerKey
	if signer != st.signer {
		if _, signerKey = signerOf([]*x509.Certificate{signer}, signerKeyPEM); signerKey == nil {
			return 0, errors.New("the new CA's key does not parse")
		}
	}
	// What the APIServices trust before this pass decides whether the
	// certificate the replicas serve now must be kept trusted: the
	// Secret's, or, if it has none, what this replica kept from before. It
	// needs keeping unless it is from the signer itself, which the
	// aggregator then already trusts.
	var trustedBefore []*x509.Certificate
	for _, as := range apiServices {
		trustedBefore = append(trustedBefore, caCertificates(as.Spec.CABundle)...)
	}
	served := st.leaf
	if served == nil {
		served = content.Served()
	}
	protect := served != nil && now.Before(served.NotAfter) && signedBy(served, trustedBefore, now) && served.CheckSignatureFrom(signer) != nil
	leaf := st.leaf
	reason := c.renewal(leaf, signer, hosts, now)

	bundle := encodeCertificates(cas)
	if missing || !bytes.Equal(bundle, secret.Data[CACertKey]) || !bytes.Equal(signerKeyPEM, secret.Data[CAKeyKey]) {
		s := secret.DeepCopy()
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[CACertKey], s.Data[CAKeyKey] = bundle, signerKeyPEM
		secrets := c.cfg.Kube.CoreV1().Secrets(s.Namespace)
		if missing {
			// A new Secret carries its certificate at once when there is
			// nothing to keep trusted (a fresh install): what the replicas
			// served before (their self-signed certificate) was trusted by
			// no one.
			if reason != "" && !protect {
				if s.Data[TLSCertKey], s.Data[TLSKeyKey], err = newServingCert(now, sched.CertValidity, signer, signerKey, hosts); err != nil {
					return 0, err
				}
				leaf = servingCertificate(s.Data[TLSCertKey], s.Data[TLSKeyKey])
				logger.Info("Wrote a new serving certificate", "secret", ref, "reason", reason, "certificate", describe(leaf), "hosts", hosts)
				reason = ""
			}
			secret, err = secrets.Create(ctx, s, metav1.CreateOptions{})
		} else {
			secret, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		}
		if err != nil {
			return 0, fmt.Errorf("writing the CA bundle to Secret %s: %w", ref, err)
		}
	}

	// 2. Every APIService trusts exactly that bundle.
	signerWasTrusted := true
	var publishErr error
	for _, as := range apiServices {
		before := caCertificates(as.Spec.CABundle)
		if bytes.Equal(as.Spec.CABundle, bundle) {
			continue
		}
		if !contains(before, signer) {
			signerWasTrusted = false
		}
		updated := as.DeepCopy()
		updated.Spec.CABundle = bundle
		if _, err := c.cfg.Aggregator.ApiregistrationV1().APIServices().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			publishErr = errors.Join(publishErr, fmt.Errorf("setting the caBundle of APIService %s: %w", as.Name, err))
			continue
		}
		logger.Info("Set the APIService's caBundle", "apiService", as.Name, "cas", len(cas))
	}

	// 3. Since when every APIService has trusted the signer.
	since, recorded := st.trustedSince(signer)
	if !recorded || !signerWasTrusted {
		since, recorded = now, false
	}
	trusted := publishErr == nil && !now.Before(since.Add(sched.TrustDelay()))

	// 4. The serving certificate.
	issue := reason != ""
	var wake []time.Time
	if issue && !trusted && protect {
		issue = false
		if publishErr == nil {
			logger.V(2).Info("Waiting for the new CA to be trusted before serving a certificate it signs", "reason", reason, "until", since.Add(sched.TrustDelay()))
			wake = append(wake, since.Add(sched.TrustDelay()))
		}
	}
	if issue || (!recorded && publishErr == nil) {
		s := secret.DeepCopy()
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		if publishErr == nil {
			s.Annotations[trustedCAAnnotation] = fingerprint(signer)
			s.Annotations[trustedSinceAnnotation] = since.UTC().Format(time.RFC3339)
		}
		if issue {
			certPEM, keyPEM, err := newServingCert(now, sched.CertValidity, signer, signerKey, hosts)
			if err != nil {
				return 0, err
			}
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			s.Data[TLSCertKey], s.Data[TLSKeyKey] = certPEM, keyPEM
			leaf = servingCertificate(certPEM, keyPEM)
		}
		if secret, err = c.cfg.Kube.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{}); err != nil {
			return 0, fmt.Errorf("writing Secret %s: %w", ref, err)
		}
		if issue {
			logger.Info("Wrote a new serving certificate", "secret", ref, "reason", reason, "certificate", describe(leaf), "hosts", hosts)
		}
	}
	if publishErr != nil {
		return 0, publishErr
	}

	// 5. The next pass: the certificate's or the CA's renewal, an old CA's
	// expiry, the end of a wait, or the next look at the APIServices.
	wake = append(wake, renewAt(signer))
	if leaf != nil {
		wake = append(wake, renewAt(leaf))
	}
	for _, ca := range cas {
		if ca != signer {
			wake = append(wake, ca.NotAfter)
		}
	}
	next := apiServiceRecheck
	for _, t := range wake {
		next = min(next, until(now, t))
	}
	return next, nil
}

// renewal says why the serving certificate must be replaced, or "".
func (c *Controller) renewal(leaf, signer *x509.Certificate, hosts []string, now time.Time) string {
	switch {
	case leaf == nil:
		return "no usable serving certificate in the Secret"
	case leaf.CheckSignatureFrom(signer) != nil:
		return "signed by another CA than the newest"
	case !covers(leaf, hosts):
		return "its names differ from the Services'"
	case !now.Before(renewAt(leaf)):
		return "due for renewal"
	}
	return ""
}

// apiServices are Flagpole's APIServices that exist.
func (c *Controller) apiServices(ctx context.Context) ([]*apiregistrationv1.APIService, error) {
	var out []*apiregistrationv1.APIService
	for _, name := range c.cfg.APIServices {
		as, err := c.cfg.Aggregator.ApiregistrationV1().APIServices().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading APIService %s: %w", name, err)
		}
		out = append(out, as)
	}
	return out, nil
}

// hosts are the names the serving certificate carries: those the
// aggregator verifies (<service>.<namespace>.svc, as kube-aggregator's
// transport has it) with the cluster domain's form, then Hosts.
func (c *Controller) hosts(apiServices []*apiregistrationv1.APIService) []string {
	var hosts []string
	add := func(h string) {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	for _, as := range apiServices {
		if svc := as.Spec.Service; svc != nil {
			add(svc.Name + "." + svc.Namespace + ".svc")
			add(svc.Name + "." + svc.Namespace + ".svc.cluster.local")
		}
	}
	for _, h := range c.cfg.Hosts {
		add(h)
	}
	return hosts
}
