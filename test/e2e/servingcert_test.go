//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/process"
)

// The self-managed replicas' schedule: short enough to watch a renewal, a
// CA change and the old CA's expiry in under two minutes (the logic is the
// same at the default ten years and 90 days).
const (
	selfManagedCAValidity   = 90 * time.Second
	selfManagedCertValidity = 45 * time.Second
	servingSecret           = "flagpole-serving-cert"
)

// TestSelfManagedServingCertificate runs two replicas with
// --serving-cert-mode=self-managed, as artifacts/deploy does, with the
// install's RBAC for it (artifacts/deploy/base/serving-cert.yaml) and a
// short schedule, behind a Service-like front. The elected replica creates
// the Secret, a CA and a certificate, and sets the APIService's caBundle
// (keeping the harness's CA, which the replica the APIService still points
// at serves); both replicas serve the Secret's certificate. Then, under
// reads, writes and evaluations through kube-apiserver, the certificate is
// renewed, a new CA is made and trusted beside the old one, the certificate
// changes to it, and the old CA leaves once expired: no request fails, the
// APIService never leaves Available, and each replica serves every new
// certificate without a restart.
func TestSelfManagedServingCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	admin := e2e.RestConfig(userAdmin)
	agg := aggregator.NewForConfigOrDie(admin)
	kube := kubernetes.NewForConfigOrDie(admin)
	harnessCA, err := e2e.servingCA()
	if err != nil {
		t.Fatal(err)
	}

	mustKubectl(t, userAdmin, "apply", "-f", "artifacts/deploy/base/serving-cert.yaml")
	replicas := []*selfManagedReplica{{name: "flagpole-sm1"}, {name: "flagpole-sm2"}}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.stop()
		}
		// The harness's replica and CA back, then the RBAC and Secret gone.
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if err := setAPIServicePort(cctx, agg, e2e.AggregatorPort); err != nil {
			t.Errorf("cleanup: APIService port: %v", err)
		}
		if err := setCABundle(cctx, agg, harnessCA); err != nil {
			t.Errorf("cleanup: caBundle: %v", err)
		}
		if err := e2e.WaitAPIService(cctx, true, 90*time.Second); err != nil {
			t.Errorf("cleanup: APIService not Available: %v", err)
		}
		if out, err := e2e.Kubectl(userAdmin, "delete", "-f", "artifacts/deploy/base/serving-cert.yaml"); err != nil {
			t.Errorf("cleanup: %v\n%s", err, out)
		}
		if err := kube.CoreV1().Secrets(tcluster.FlagpoleNamespace).Delete(cctx, servingSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("cleanup: %v", err)
		}
	})
	for _, r := range replicas {
		if err := r.start(); err != nil {
			t.Fatal(err)
		}
	}
	secret := func() *corev1.Secret {
		s, err := kube.CoreV1().Secrets(tcluster.FlagpoleNamespace).Get(ctx, servingSecret, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		return s
	}
	// The leader creates the Secret; each replica is ready once it serves it.
	for _, r := range replicas {
		if err := tcluster.WaitFor(ctx, r.p, 90*time.Second, func() error {
			s := secret()
			if s == nil || len(s.Data["tls.crt"]) == 0 {
				return errors.New("no certificate in the Secret yet")
			}
			return tcluster.GetOK(e2e.DirectConfig(r.port, s.Data["ca.crt"], userAdmin, "system:masters"), "/readyz")
		}); err != nil {
			t.Fatal(err)
		}
	}
	first := secret()
	if first.Type != corev1.SecretTypeTLS {
		t.Errorf("the Secret's type is %q, want kubernetes.io/tls", first.Type)
	}
	// The harness's CA stays trusted beside the new one: the replica the
	// APIService points at still serves a certificate it signed.
	bundle := apiServiceCABundle(ctx, t, agg)
	if !bytes.Equal(bundle, first.Data["ca.crt"]) || !bytes.Contains(bundle, bytes.TrimSpace(harnessCA)) || len(parseCAs(t, bundle)) != 2 {
		t.Fatalf("caBundle after the first pass: %d CAs, harness's kept %v, same as ca.crt %v", len(parseCAs(t, bundle)),
			bytes.Contains(bundle, bytes.TrimSpace(harnessCA)), bytes.Equal(bundle, first.Data["ca.crt"]))
	}
	if err := e2e.WaitAPIService(ctx, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	f, err := newFront(replicas[0].port, replicas[1].port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	if err := f.waitReady(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := setAPIServicePort(ctx, agg, f.port); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, true, 60*time.Second); err != nil {
		t.Fatal(err)
	}

	// The flag the load evaluates lives in these replicas' storage: once
	// kube-apiserver finds it, it sends flagpole.dev to them.
	direct := clientset.NewForConfigOrDie(e2e.DirectConfig(replicas[0].port, first.Data["ca.crt"], userAdmin, "system:masters")).FlagpoleV1beta1()
	if _, err := direct.Flags(e2eNamespace).Create(ctx, rollingFlag("self-managed-eval"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	flags := clientset.NewForConfigOrDie(admin).FlagpoleV1beta1()
	if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
		_, err := flags.Flags(e2eNamespace).Get(ctx, "self-managed-eval", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatalf("kube-apiserver does not reach the self-managed replicas: %v", err)
	}
	var created atomic.Int64
	req := &v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":"u-1"}`)}}
	stream := startRequestStream(ctx, agg,
		func(ctx context.Context) error {
			_, err := flags.Flags(e2eNamespace).List(ctx, metav1.ListOptions{Limit: 5})
			return err
		},
		func(ctx context.Context) error {
			_, err := flags.Flags(e2eNamespace).Create(ctx, rollingFlag(fmt.Sprintf("self-managed-%d", created.Add(1))), metav1.CreateOptions{})
			return err
		},
		func(ctx context.Context) error {
			_, err := flags.Flags(e2eNamespace).Evaluate(ctx, "self-managed-eval", req, metav1.CreateOptions{})
			return err
		})
	defer stream.stop()
	stream.waitRequests(t, 20)

	// Follow the Secret until the first CA has expired and left: every
	// certificate written is served by both replicas.
	firstCA := parseCAs(t, first.Data["ca.crt"])[1]
	var leaves []*x509.Certificate
	cas := map[string]bool{}
	start := time.Now()
	if err := tcluster.WaitFor(ctx, nil, selfManagedCAValidity+time.Minute, func() error {
		for _, r := range replicas {
			if r.p.Exited() {
				return fmt.Errorf("%s exited: %v", r.name, r.p.Err())
			}
		}
		s := secret()
		if s == nil {
			return errors.New("no Secret")
		}
		for _, ca := range parseCAs(t, s.Data["ca.crt"]) {
			cas[string(ca.Raw)] = true
		}
		leaf, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
		if err != nil {
			return err
		}
		if len(leaves) == 0 || !leaves[len(leaves)-1].Equal(leaf.Leaf) {
			leaves = append(leaves, leaf.Leaf)
		}
		for _, r := range replicas {
			served, err := r.served(s.Data["ca.crt"])
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			if !served.Equal(leaf.Leaf) {
				return fmt.Errorf("%s serves serial %x, the Secret holds %x", r.name, served.SerialNumber, leaf.Leaf.SerialNumber)
			}
		}
		if slices.ContainsFunc(parseCAs(t, s.Data["ca.crt"]), firstCA.Equal) {
			return errors.New("the first CA is still trusted")
		}
		if leaf.Leaf.CheckSignatureFrom(firstCA) == nil {
			return errors.New("the certificate is still from the first CA")
		}
		if live := apiServiceCABundle(ctx, t, agg); !bytes.Equal(live, s.Data["ca.crt"]) {
			return errors.New("the caBundle is not ca.crt yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("after %s: %v (certificates seen %d, CAs seen %d)", time.Since(start).Round(time.Second), err, len(leaves), len(cas))
	}
	t.Logf("in %s: %d certificates served, %d CAs trusted at some point (the harness's, the first, the next)", time.Since(start).Round(time.Second), len(leaves), len(cas))
	if len(cas) < 3 {
		t.Errorf("%d CAs seen, want the harness's and two of the replicas'", len(cas))
	}
	if len(leaves) < 3 {
		t.Errorf("%d certificates seen, want a renewal and a change of CA after the first", len(leaves))
	}
	// Control: the first CA alone no longer verifies what the replicas
	// serve, so the caBundle's changes were what kept them trusted.
	for _, r := range replicas {
		if _, err := r.served(certutilEncode(t, firstCA)); err == nil {
			t.Errorf("%s's certificate still verifies against the first CA alone", r.name)
		}
	}
	stream.waitRequests(t, 20)
	ok, failed, unavailable, errs := stream.stop()
	t.Logf("through kube-apiserver: %d requests ok (%d flags created), %d failed; APIService seen not Available %d times; front connections %v",
		ok, created.Load(), failed, unavailable, f.connections())
	if failed != 0 || unavailable != 0 {
		t.Errorf("%d requests failed, APIService not Available %d times, during the rotation:\n%s", failed, unavailable, strings.Join(errs, "\n"))
	}
	for _, r := range replicas {
		if r.p.Exited() || r.p != r.first {
			t.Errorf("%s was restarted or exited", r.name)
		}
	}
}

// selfManagedReplica is a Flagpole of the test: the harness's delegated
// flags without the certificate files, self-managed, on an etcd prefix of
// its own (so that these two elect their leader among themselves; the
// harness's replica, in files mode, runs no serving-certificate
// controller), with a shutdown delay.
type selfManagedReplica struct {
	name     string
	port     int
	p, first *process.Process
}

func (r *selfManagedReplica) start() error {
	var err error
	if r.port, err = tcluster.FreePort(); err != nil {
		return err
	}
	var args []string
	std := e2e.FlagpoleArgs(r.port, e2e.Path(r.name))
	for i := 0; i < len(std); i++ {
		if std[i] == "--tls-cert-file" || std[i] == "--tls-private-key-file" {
			i++
			continue
		}
		args = append(args, std[i])
	}
	args = append(args,
		"--etcd-prefix", "/flagpole-self-managed",
		"--serving-cert-mode", "self-managed",
		"--serving-cert-secret", tcluster.FlagpoleNamespace+"/"+servingSecret,
		"--serving-ca-validity", selfManagedCAValidity.String(),
		"--serving-cert-validity", selfManagedCertValidity.String(),
		"--tls-san", "localhost,127.0.0.1",
		"--shutdown-delay-duration", replicaShutdownDelay.String())
	if r.p, err = e2e.StartProcess(r.name, e2e.flagpoleBin, args...); err != nil {
		return err
	}
	r.first = r.p
	return nil
}

func (r *selfManagedReplica) stop() {
	if r.p != nil {
		_ = r.p.Stop(60 * time.Second)
	}
}

// served is the certificate the replica presents, verified against bundle
// for the name the aggregator checks.
func (r *selfManagedReplica) served(bundle []byte) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundle) {
		return nil, errors.New("no CA in the bundle")
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(r.port), &tls.Config{
		RootCAs:    roots,
		ServerName: tcluster.FlagpoleService + "." + tcluster.FlagpoleNamespace + ".svc",
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func parseCAs(t *testing.T, bundle []byte) []*x509.Certificate {
	t.Helper()
	cas, err := certutil.ParseCertsPEM(bundle)
	if err != nil {
		t.Fatalf("a CA bundle does not parse: %v", err)
	}
	return cas
}

func certutilEncode(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	out, err := certutil.EncodeCertificates(c)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
