//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
)

// TestServingCertificateRotation replaces Flagpole's serving certificate
// with one from a new CA while requests flow through kube-apiserver, in the
// order docs/install.md gives: (1) a new CA and leaf; (2) caBundle = old +
// new CA; (3) the new key and certificate files, each renamed into place;
// (4) the running server picks them up (no restart); (5) caBundle = new CA
// only. No request through the aggregator may fail, and the APIService must
// stay Available throughout. The cluster is left serving the new
// certificate, with servingCA() its CA.
func TestServingCertificateRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	agg := aggregator.NewForConfigOrDie(e2e.RestConfig(userAdmin))
	oldCA := e2e.Serving
	oldPEM, err := oldCA.CAPEM()
	if err != nil {
		t.Fatal(err)
	}
	// The old CA's bundle is what the APIService holds before the rotation.
	if live := apiServiceCABundle(ctx, t, agg); !bytes.Equal(live, oldPEM) {
		t.Fatalf("caBundle before rotation is not the harness's serving CA:\n%s", live)
	}
	oldLeaf := servedLeaf(t, oldPEM)

	flags := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1()
	stream := startRequestStream(ctx, agg,
		func(ctx context.Context) error {
			_, err := flags.Flags(e2eNamespace).List(ctx, metav1.ListOptions{Limit: 5})
			return err
		},
		func(ctx context.Context) error {
			_, err := flags.Segments(e2eNamespace).List(ctx, metav1.ListOptions{Limit: 5})
			return err
		})
	defer stream.stop()
	restored := false
	t.Cleanup(func() {
		if restored {
			return
		}
		// Whatever step failed, leave an APIService that trusts both CAs,
		// so later tests find the cluster Available.
		newPEM, _ := e2e.Serving.CAPEM()
		bundle := oldPEM
		if !bytes.Equal(newPEM, oldPEM) {
			bundle = append(append([]byte{}, oldPEM...), newPEM...)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if err := setCABundle(cctx, agg, bundle); err != nil {
			t.Logf("cleanup: setting caBundle: %v", err)
		}
		if err := e2e.WaitAPIService(cctx, true, 90*time.Second); err != nil {
			t.Logf("cleanup: APIService not Available: %v", err)
		}
	})
	// Some requests on the old certificate first.
	stream.waitRequests(t, 20)

	// (1) A new CA, in a directory of its own.
	newCA, err := standalone.EnsurePKI(e2e.Path("pki", "flagpole-serving-"+strconv.FormatInt(time.Now().UnixNano(), 36)), nil)
	if err != nil {
		t.Fatal(err)
	}
	newPEM, err := newCA.CAPEM()
	if err != nil {
		t.Fatal(err)
	}
	both := append(append([]byte{}, oldPEM...), newPEM...)

	// (2) Trust both CAs before anything serves a leaf of the new one.
	if err := setCABundle(ctx, agg, both); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, true, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	stream.waitRequests(t, 20)

	// (3) Replace the files Flagpole serves.
	newLeaf, err := e2e.WriteServingCert(newCA)
	if err != nil {
		t.Fatal(err)
	}
	e2e.Serving = newCA
	t.Logf("serving files replaced: serial %s (CA key %x) -> %s (CA key %x)", oldLeaf.SerialNumber, oldLeaf.AuthorityKeyId, newLeaf.SerialNumber, newLeaf.AuthorityKeyId)

	// (4) The running server serves the new leaf: upstream's dynamic serving
	// certificate reloads on a file event, or at the latest on its
	// one-minute resync.
	replaced := time.Now()
	if err := tcluster.WaitFor(ctx, nil, 90*time.Second, func() error {
		var got *x509.Certificate
		if err := dialServingWith(both, func(cs tls.ConnectionState) { got = cs.PeerCertificates[0] }); err != nil {
			return err
		}
		if got.SerialNumber.Cmp(newLeaf.SerialNumber) != 0 {
			return fmt.Errorf("still serving serial %s, want %s", got.SerialNumber, newLeaf.SerialNumber)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("Flagpole served the new certificate %s after the files were replaced", time.Since(replaced).Round(10*time.Millisecond))
	if p := e2e.Procs["flagpole-apiserver"]; p.Exited() {
		t.Fatalf("flagpole exited during rotation: %v", p.Err())
	}
	stream.waitRequests(t, 20)

	// (5) Drop the old CA: the aggregator's new transport must verify the
	// new leaf against the new CA alone.
	if err := setCABundle(ctx, agg, newPEM); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, true, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	restored = true
	stream.waitRequests(t, 50)
	mustKubectl(t, userAdmin, "get", "flags", "-n", e2eNamespace)

	ok, failed, unavailable, errs := stream.stop()
	t.Logf("through kube-apiserver during the rotation: %d requests ok, %d failed; APIService seen not Available %d times", ok, failed, unavailable)
	if failed != 0 {
		t.Errorf("%d requests failed during the rotation:\n%s", failed, strings.Join(errs, "\n"))
	}
	if unavailable != 0 {
		t.Errorf("the APIService left Available during the rotation:\n%s", strings.Join(errs, "\n"))
	}
	// The old CA no longer verifies what Flagpole serves.
	if err := dialServing(oldPEM); err == nil {
		t.Errorf("Flagpole's certificate still verifies against the old CA")
	}

	// Control, with the stream stopped: the aggregator really verifies
	// Flagpole against the caBundle, so the order above matters. A bundle
	// without the new CA makes it refuse the new leaf, and the APIService
	// goes unavailable. The bundle must be one the aggregator has never
	// used: client-go caches transports by CA data, so going back to the
	// old CA alone would reuse the old transport, whose connections were
	// verified against the old leaf before the rotation and stay open for
	// up to 90 s idle (the check then passes without any handshake).
	stranger, err := standalone.EnsurePKI(e2e.Path("pki", "flagpole-stranger-"+strconv.FormatInt(time.Now().UnixNano(), 36)), nil)
	if err != nil {
		t.Fatal(err)
	}
	strangerPEM, err := stranger.CAPEM()
	if err != nil {
		t.Fatal(err)
	}
	restored = false
	if err := setCABundle(ctx, agg, append(append([]byte{}, oldPEM...), strangerPEM...)); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, false, 60*time.Second); err != nil {
		t.Errorf("with a caBundle lacking the new CA the APIService stayed Available: %v", err)
	} else if msg := availableMessage(ctx, t, agg); !strings.Contains(msg, "x509") {
		t.Errorf("the APIService is unavailable for another reason than the certificate: %s", msg)
	} else {
		t.Logf("control: caBundle without the new CA: %s", msg)
	}
	if err := setCABundle(ctx, agg, newPEM); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, true, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	restored = true
	mustKubectl(t, userAdmin, "get", "flags", "-n", e2eNamespace)
}

// servedLeaf dials Flagpole directly, verifying against bundle for the
// Service name the aggregator uses, and returns the certificate it presented.
func servedLeaf(t *testing.T, bundle []byte) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	if err := dialServingWith(bundle, func(cs tls.ConnectionState) { leaf = cs.PeerCertificates[0] }); err != nil {
		t.Fatalf("dialing Flagpole: %v", err)
	}
	return leaf
}

func dialServing(bundle []byte) error { return dialServingWith(bundle, nil) }

func dialServingWith(bundle []byte, f func(tls.ConnectionState)) error {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return fmt.Errorf("no certificate in the bundle")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(e2e.FlagpolePort), &tls.Config{
		RootCAs:    roots,
		ServerName: tcluster.FlagpoleService + "." + tcluster.FlagpoleNamespace + ".svc",
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	if f != nil {
		f(conn.ConnectionState())
	}
	return nil
}

func apiServiceCABundle(ctx context.Context, t *testing.T, agg aggregator.Interface) []byte {
	t.Helper()
	svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.flagpole.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc.Spec.CABundle
}

func availableMessage(ctx context.Context, t *testing.T, agg aggregator.Interface) string {
	t.Helper()
	svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.flagpole.dev", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range svc.Status.Conditions {
		if c.Type == apiregistrationv1.Available {
			return fmt.Sprintf("Available=%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return "no Available condition"
}

func setCABundle(ctx context.Context, agg aggregator.Interface, bundle []byte) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.flagpole.dev", metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Spec.CABundle = bundle
		_, err = agg.ApiregistrationV1().APIServices().Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
}

// requestStream sends requests (ops, in turn) through kube-apiserver, one
// after another, and watches the APIService's Available condition, until
// stopped. It counts what succeeded and keeps what failed.
type requestStream struct {
	ok, failed, unavailable atomic.Int64
	done                    chan struct{}
	wg                      sync.WaitGroup
	once                    sync.Once

	mu   sync.Mutex
	errs []string
}

func startRequestStream(ctx context.Context, agg aggregator.Interface, ops ...func(context.Context) error) *requestStream {
	s := &requestStream{done: make(chan struct{})}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-s.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := ops[i%len(ops)](ctx); err != nil {
				s.failed.Add(1)
				s.record(fmt.Sprintf("%s request failed: %v", time.Now().Format(time.StampMilli), err))
			} else {
				s.ok.Add(1)
			}
		}
	}()
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.flagpole.dev", metav1.GetOptions{})
			if err != nil {
				continue // kube-apiserver's own trouble, not the APIService's
			}
			for _, c := range svc.Status.Conditions {
				if c.Type == apiregistrationv1.Available && c.Status != apiregistrationv1.ConditionTrue {
					s.unavailable.Add(1)
					s.record(fmt.Sprintf("%s APIService Available=%s: %s: %s", time.Now().Format(time.StampMilli), c.Status, c.Reason, c.Message))
				}
			}
		}
	}()
	return s
}

func (s *requestStream) record(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.errs) < 50 {
		s.errs = append(s.errs, msg)
	}
}

// waitRequests waits for n more successful requests (bounded at a minute).
func (s *requestStream) waitRequests(t *testing.T, n int64) {
	t.Helper()
	want := s.ok.Load() + n
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return s.ok.Load() >= want, nil
	}); err != nil {
		t.Fatalf("fewer than %d requests succeeded in a minute (%d failed)", n, s.failed.Load())
	}
}

func (s *requestStream) stop() (ok, failed, unavailable int64, errs []string) {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok.Load(), s.failed.Load(), s.unavailable.Load(), s.errs
}
