//go:build node

package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Bounds of every load loop: each stops after maxRequestsPerLoop requests
// or when its test stops it, whichever comes first, and paces itself.
const (
	maxRequestsPerLoop = 20000
	loadInterval       = 40 * time.Millisecond
	requestTimeout     = 15 * time.Second
)

// traffic counts one kind of request.
type traffic struct {
	name       string
	ok, failed atomic.Int64
	// refused counts the failures that are kube-apiserver's aggregator
	// unable to resend a request Flagpole never processed (unprocessed): a
	// stream a replica's GOAWAY refused, or a keep-alive connection a
	// replica closed as it was reused.
	refused atomic.Int64
	mu      sync.Mutex
	errors  []string // the first few failures, with their time
}

// refusedByGoAway reports whether err is kube-apiserver's proxy answering
// 503 because a Flagpole replica that began shutting down sent GOAWAY while
// the request's stream was in flight: Go's HTTP/2 client retries such a
// request on another connection only when it can read its body again, and
// the aggregator's proxy hands on the caller's body, which it cannot. The
// stream is above the GOAWAY's last stream ID, so Flagpole never processed
// it (RFC 9113 6.8). docs/install.md ("Restarts and writes") has more.
func refusedByGoAway(err error) bool {
	msg := describeError(err)
	return strings.Contains(msg, "graceful shutdown GOAWAY") && strings.Contains(msg, "after Request.Body was written")
}

// closedAsReused reports whether err is kube-apiserver's proxy answering
// 503 because the HTTP/1.1 keep-alive connection it reused for the request
// was closed by a replica that was shutting down, as the request went out
// ("error trying to reach service: EOF"). Go's transport retries such a
// request itself only when it can send the body again, which the
// aggregator's proxy cannot; the replica closed the connection while it
// was idle, so it read nothing of the request. The HTTP/1.1 port makes
// this rarer than HTTP/2's GOAWAY race (none in most runs, one write of a
// step's few hundred in some) but cannot rule out the instant at which an
// idle connection is closed.
func closedAsReused(err error) bool {
	return strings.Contains(describeError(err), "error trying to reach service: EOF")
}

// unprocessed is a failed write Flagpole never saw: safe to retry.
func unprocessed(err error) bool { return refusedByGoAway(err) || closedAsReused(err) }

func (tr *traffic) fail(err error) {
	tr.failed.Add(1)
	if unprocessed(err) {
		tr.refused.Add(1)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.errors) < 5 {
		tr.errors = append(tr.errors, time.Now().Format("15:04:05.000")+" "+describeError(err))
	}
}

// describeError is err with what client-go keeps out of its message: the
// body of an answer that was no Status (the aggregator's proxy errors, say
// "error trying to reach service: ..."), which says where it failed.
func describeError(err error) string {
	msg := err.Error()
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if d := status.Status().Details; d != nil {
			for _, c := range d.Causes {
				msg += "; " + c.Message
			}
		}
	}
	return msg
}

func (tr *traffic) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := fmt.Sprintf("%s: %d ok, %d failed", tr.name, tr.ok.Load(), tr.failed.Load())
	if len(tr.errors) > 0 {
		s += " (" + strings.Join(tr.errors, "; ") + ")"
	}
	return s
}

// load runs reads and writes through kube-apiserver and OFREP evaluations
// through Flagpole's Service, concurrently, until stopped.
type load struct {
	ofrep  *ofrepClient
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kinds  []*traffic
	// acked are the flags whose create was answered with success;
	// refused those whose create failed unprocessed.
	mu      sync.Mutex
	acked   []string
	refused []string
}

// startLoad starts one loop per kind: reads (GET of readFlag through
// kube-apiserver), writes (creates of new flags named prefix-N) and OFREP
// evaluations of readFlag.
func startLoad(t *testing.T, ofrep *ofrepClient, readFlag, prefix string) *load {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, ofrep: ofrep}
	flags := env.flagpole.FlagpoleV1beta1().Flags(appNamespace)
	var n atomic.Int64
	ops := map[string]func(context.Context) error{
		"reads": func(ctx context.Context) error {
			_, err := flags.Get(ctx, readFlag, metav1.GetOptions{})
			return err
		},
		"writes": func(ctx context.Context) error {
			name := fmt.Sprintf("%s-%d", prefix, n.Add(1))
			if _, err := flags.Create(ctx, booleanFlag(name), metav1.CreateOptions{}); err != nil {
				if unprocessed(err) {
					l.mu.Lock()
					l.refused = append(l.refused, name)
					l.mu.Unlock()
				}
				return err
			}
			l.mu.Lock()
			l.acked = append(l.acked, name)
			l.mu.Unlock()
			return nil
		},
		"ofrep evaluations": func(ctx context.Context) error {
			_, err := ofrep.evaluate(ctx, readFlag)
			return err
		},
	}
	names := make([]string, 0, len(ops))
	for name := range ops {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tr := &traffic{name: name}
		l.kinds = append(l.kinds, tr)
		op := ops[name]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < maxRequestsPerLoop && ctx.Err() == nil; i++ {
				rctx, rcancel := context.WithTimeout(ctx, requestTimeout)
				err := op(rctx)
				rcancel()
				switch {
				case err == nil:
					tr.ok.Add(1)
				case ctx.Err() != nil:
					// Stopped by the test, not failed.
				default:
					tr.fail(err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(loadInterval):
				}
			}
		}()
	}
	t.Cleanup(l.stop)
	return l
}

// stop ends the loops and waits for them.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// report stops the load, logs every kind's counts and returns the failures.
func (l *load) report(t *testing.T) (failed int64) {
	t.Helper()
	l.stop()
	for _, tr := range l.kinds {
		t.Log(tr)
		failed += tr.failed.Load()
		if tr.ok.Load() == 0 {
			t.Errorf("%s: no request succeeded: the load did not run", tr.name)
		}
	}
	return failed
}

// maxUnprocessed is how many writes per step may fail unprocessed
// (closedAsReused): the instant a draining replica closes an idle
// keep-alive connection the aggregator is about to reuse cannot be ruled
// out from the server's side. Each is checked not to have been applied.
// A write refused by GOAWAY fails the step: the HTTP/1.1 port is there so
// that there is none.
const maxUnprocessed = 1

// requireNoFailures stops the load and fails the step if any request
// failed, beyond maxUnprocessed writes that Flagpole never processed, each
// checked not to have been applied so that a retry would be safe; every
// failure is logged.
func (l *load) requireNoFailures(t *testing.T, during string) {
	t.Helper()
	failed := l.report(t)
	var total, unprocessedWrites int64
	for _, tr := range l.kinds {
		total += tr.ok.Load() + tr.failed.Load()
		unprocessedWrites += tr.refused.Load()
	}
	if unprocessedWrites > 0 {
		t.Logf("%d of %d requests %s were writes kube-apiserver's aggregator could not resend after a replica refused or closed their connection (never processed)", unprocessedWrites, total, during)
		l.mu.Lock()
		names := append([]string(nil), l.refused...)
		l.mu.Unlock()
		for _, name := range names {
			if _, err := env.flagpole.FlagpoleV1beta1().Flags(appNamespace).Get(context.Background(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("flag %s, whose create failed unprocessed, exists or cannot be read (%v): the failure was not clean", name, err)
			}
		}
	}
	var goAway int64
	for _, tr := range l.kinds {
		tr.mu.Lock()
		for _, e := range tr.errors {
			if strings.Contains(e, "graceful shutdown GOAWAY") {
				goAway++
			}
		}
		tr.mu.Unlock()
	}
	if other := failed - unprocessedWrites; other != 0 || unprocessedWrites > maxUnprocessed || goAway > 0 {
		t.Errorf("%d of %d requests failed %s (%d of them writes never processed, at most %d allowed, none refused by GOAWAY); want no other", failed, total, during, unprocessedWrites, maxUnprocessed)
	}
}

func (l *load) acknowledged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

func booleanFlag(name string) *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.FlagSpec{
			Type: v1beta1.FlagTypeBoolean,
			Variants: []v1beta1.Variant{
				{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}},
				{Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}},
			},
			DefaultVariant: "off",
		},
	}
}

// ofrepClient evaluates over OFREP as an application in the cluster does:
// to Flagpole's Service (its ClusterIP, which kube-proxy's rules in the
// node's network namespace send to a ready replica), verifying the serving
// certificate for api.flagpole-system.svc against Flagpole's CA bundle, with
// a ServiceAccount token. Like an application that reads its mounted copy
// of ca.crt again when it changes, it takes the Secret's bundle anew every
// second, so that a CA rotation (a new CA in the bundle before any
// certificate from it is served) reaches it.
type ofrepClient struct {
	client *http.Client
	token  string
}

func newOFREPClient(ctx context.Context, t *testing.T) *ofrepClient {
	t.Helper()
	svc, err := env.kube.CoreV1().Services(flagpoleNS).Get(ctx, "api", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var roots atomic.Pointer[x509.CertPool]
	loadRoots := func(ctx context.Context) error {
		secret, err := env.kube.CoreV1().Secrets(flagpoleNS).Get(ctx, servingCert, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(secret.Data["ca.crt"]) {
			return fmt.Errorf("secret %s has no ca.crt", servingCert)
		}
		roots.Store(pool)
		return nil
	}
	if err := loadRoots(ctx); err != nil {
		t.Fatal(err)
	}
	reloadCtx, stopReload := context.WithCancel(context.Background())
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for reloadCtx.Err() == nil {
			select {
			case <-reloadCtx.Done():
			case <-time.After(time.Second):
				_ = loadRoots(reloadCtx) // a failed read keeps the bundle held
			}
		}
	}()
	t.Cleanup(func() {
		stopReload()
		<-reloaded
	})
	tok, err := env.kube.CoreV1().ServiceAccounts(appNamespace).CreateToken(ctx, "app",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(svc.Spec.ClusterIP, "443")
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{
			ServerName: servingHost,
			MinVersion: tls.VersionTLS12,
			// The chain is verified below against the bundle held at the
			// time of each handshake (crypto/tls has no callback for
			// RootCAs); nothing is accepted unverified.
			InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
			VerifyConnection: func(cs tls.ConnectionState) error {
				intermediates := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					intermediates.AddCert(c)
				}
				_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
					Roots: roots.Load(), Intermediates: intermediates, DNSName: cs.ServerName,
				})
				return err
			},
		},
		MaxIdleConnsPerHost: 4,
		// HTTP/2, as Go's default transport (and so a Go OFREP provider)
		// negotiates it.
		ForceAttemptHTTP2: true,
	}
	t.Cleanup(transport.CloseIdleConnections)
	return &ofrepClient{client: &http.Client{Transport: transport, Timeout: requestTimeout}, token: tok.Status.Token}
}

// ofrepAnswer is the part of OFREP's answer the tests read.
type ofrepAnswer struct {
	Value   json.RawMessage `json:"value"`
	Variant string          `json:"variant"`
	Reason  string          `json:"reason"`
}

// evaluate evaluates key once, as an OpenFeature provider that does not
// retry: any answer but 200 is a failure. A replica that is shutting down
// sends its clients to another connection while it still serves
// (pkg/connguard's Drain), so that no request reaches it after its
// shutdown delay (which upstream would answer 503 with Retry-After).
func (c *ofrepClient) evaluate(ctx context.Context, key string) (ofrepAnswer, error) {
	url := "https://" + servingHost + "/namespaces/" + appNamespace + "/ofrep/v1/evaluate/flags/" + key
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(`{"context":{"targetingKey":"node-e2e"}}`)))
	if err != nil {
		return ofrepAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.client.Do(req)
	if err != nil {
		return ofrepAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ofrepAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return ofrepAnswer{}, fmt.Errorf("OFREP %s: %d (Retry-After %q) %.200s", key, resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	var a ofrepAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return ofrepAnswer{}, fmt.Errorf("OFREP %s: %v in %.200s", key, err, body)
	}
	return a, nil
}
