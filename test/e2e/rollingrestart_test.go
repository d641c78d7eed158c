//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	aggregator "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	tcluster "github.com/flagpole-dev/flagpole/test/cluster"
	"github.com/flagpole-dev/flagpole/test/process"
)

// replicaShutdownDelay is the test replicas' --shutdown-delay-duration: how
// long a replica keeps serving after SIGTERM with /readyz failing, so that
// the front (polling every frontPollInterval) stops sending it new
// connections before it stops accepting them.
const (
	replicaShutdownDelay = 3 * time.Second
	frontPollInterval    = 200 * time.Millisecond
)

// TestTwoReplicasRollingRestart runs two Flagpole replicas (R1, R2) on the
// e2e's etcd behind a Service-like TCP front, moves the APIService to the
// front, and restarts R1 then R2 (SIGTERM, wait for exit, start, wait
// ready) under a steady stream of reads, writes and evaluations through
// kube-apiserver. No request may fail and the APIService must stay
// Available. A write through R1 must reach a watch on R2. The APIService is
// moved back to the e2e's own replica at the end, on failure too.
func TestTwoReplicasRollingRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	agg := aggregator.NewForConfigOrDie(e2e.RestConfig(userAdmin))

	r1, r2, f := servePair(ctx, t, agg, "flagpole")

	// A write through R1 is seen by a watch on R2.
	direct1 := clientset.NewForConfigOrDie(e2e.directFlagpoleConfigAt(r1.port, userAdmin, "system:masters")).FlagpoleV1beta1()
	direct2 := clientset.NewForConfigOrDie(e2e.directFlagpoleConfigAt(r2.port, userAdmin, "system:masters")).FlagpoleV1beta1()
	list, err := direct2.Flags(e2eNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := direct2.Flags(e2eNamespace).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct1.Flags(e2eNamespace).Create(ctx, rollingFlag("rolling-eval"), metav1.CreateOptions{}); err != nil {
		w.Stop()
		t.Fatal(err)
	}
	seenOnR2(t, w, "rolling-eval")
	t.Cleanup(func() {
		_ = clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1().Flags(e2eNamespace).DeleteCollection(
			context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "e2e=rolling-restart"})
	})

	// Reads, writes and evaluations through kube-apiserver.
	flags := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1()
	var created atomic.Int64
	req := &v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":"u-1"}`)}}
	stream := startRequestStream(ctx, agg,
		func(ctx context.Context) error {
			_, err := flags.Flags(e2eNamespace).List(ctx, metav1.ListOptions{Limit: 5})
			return err
		},
		func(ctx context.Context) error {
			_, err := flags.Flags(e2eNamespace).Create(ctx, rollingFlag(fmt.Sprintf("rolling-%d", created.Add(1))), metav1.CreateOptions{})
			return err
		},
		func(ctx context.Context) error {
			res, err := flags.Flags(e2eNamespace).Evaluate(ctx, "rolling-eval", req, metav1.CreateOptions{})
			if err == nil && res.Variant != "off" {
				err = fmt.Errorf("evaluate rolling-eval: variant %q, want off", res.Variant)
			}
			return err
		})
	defer stream.stop()
	stream.waitRequests(t, 30)

	for i, r := range []*replica{r1, r2} {
		stopped := time.Now()
		if err := r.p.Stop(60 * time.Second); err != nil {
			t.Fatalf("%s did not exit cleanly on SIGTERM: %v\n%s", r.name, err, r.p.Tail(tcluster.TailBytes))
		}
		t.Logf("%s exited %s after SIGTERM", r.name, time.Since(stopped).Round(10*time.Millisecond))
		stream.waitRequests(t, 20) // served by the other replica alone
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.waitReady(ctx, i); err != nil {
			t.Fatal(err)
		}
		stream.waitRequests(t, 20)
	}

	ok, failed, unavailable, errs := stream.stop()
	conns := f.connections()
	t.Logf("through kube-apiserver during the rolling restart: %d requests ok (%d flags created), %d failed; APIService seen not Available %d times; front connections per replica %v",
		ok, created.Load(), failed, unavailable, conns)
	if failed != 0 {
		t.Errorf("%d requests failed during the rolling restart:\n%s", failed, strings.Join(errs, "\n"))
	}
	if unavailable != 0 {
		t.Errorf("the APIService left Available during the rolling restart:\n%s", strings.Join(errs, "\n"))
	}
	for i, n := range conns {
		if n == 0 {
			t.Errorf("the front never sent a connection to replica %d: the test did not exercise it", i+1)
		}
	}
}

// replica is a Flagpole process of the test, with StartFlagpole's flags plus
// a shutdown delay and its extra flags; it keeps its port and data
// directory across restarts.
type replica struct {
	name  string
	extra []string
	port  int
	// http1 is its --http1-secure-port, behind the front as the
	// APIService's Service port is.
	http1 int
	p     *process.Process
}

func (r *replica) start(ctx context.Context) error {
	if r.port == 0 {
		var err error
		if r.port, err = tcluster.FreePort(); err != nil {
			return err
		}
		if r.http1, err = tcluster.FreePort(); err != nil {
			return err
		}
	}
	args := append(e2e.flagpoleArgs(r.port, e2e.Path(r.name), e2e.Path(r.name+"-audit.log")),
		"--shutdown-delay-duration", replicaShutdownDelay.String(), "--http1-secure-port", strconv.Itoa(r.http1))
	args = append(args, r.extra...)
	p, err := e2e.StartProcess(r.name, e2e.flagpoleBin, args...)
	if err != nil {
		return err
	}
	r.p = p
	return tcluster.WaitFor(ctx, p, 90*time.Second, func() error {
		return tcluster.GetOK(e2e.directFlagpoleConfigAt(r.port, userAdmin, "system:masters"), "/readyz")
	})
}

func (r *replica) stop() {
	if r.p != nil {
		_ = r.p.Stop(60 * time.Second)
	}
}

func rollingFlag(name string) *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"e2e": "rolling-restart"}},
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

func seenOnR2(t *testing.T, w watch.Interface, name string) {
	t.Helper()
	defer w.Stop()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch on R2 ended before it saw %s", name)
			}
			if f, isFlag := ev.Object.(*v1beta1.Flag); isFlag && ev.Type == watch.Added && f.Name == name {
				return
			}
		case <-timeout:
			t.Fatalf("a watch on R2 did not see %s created through R1 within 30s", name)
		}
	}
}

// servePair starts two replicas (named prefix-r1 and prefix-r2, each with
// extra flags) behind a front, points the APIService at the front and, on
// cleanup, back at the e2e replica: what the tests that stop, restart or
// count replicas through kube-apiserver share.
func servePair(ctx context.Context, t *testing.T, agg aggregator.Interface, prefix string, extra ...string) (r1, r2 *replica, f *front) {
	t.Helper()
	r1, r2 = &replica{name: prefix + "-r1", extra: extra}, &replica{name: prefix + "-r2", extra: extra}
	for _, r := range []*replica{r1, r2} {
		if err := r.start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.stop)
	}
	f, err := newFront(r1.http1, r2.http1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	if err := f.waitReady(ctx, 0, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer ccancel()
		if err := setAPIServicePort(cctx, agg, e2e.AggregatorPort); err != nil {
			t.Errorf("cleanup: moving the APIService back to port %d: %v", e2e.AggregatorPort, err)
			return
		}
		if err := e2e.WaitAPIService(cctx, true, 90*time.Second); err != nil {
			t.Errorf("cleanup: APIService not Available on the e2e replica: %v", err)
		}
	})
	if err := setAPIServicePort(ctx, agg, f.port); err != nil {
		t.Fatal(err)
	}
	if err := e2e.WaitAPIService(ctx, true, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	return r1, r2, f
}

// waitKubeReaches waits until kube-apiserver's proxy, which follows the
// APIService by itself a moment after it changes, reaches r's Flagpole: a
// flag only it has, created on r directly, is seen through kube-apiserver.
func waitKubeReaches(ctx context.Context, t *testing.T, r *replica, ns string) {
	t.Helper()
	direct := clientset.NewForConfigOrDie(e2e.directFlagpoleConfigAt(r.port, userAdmin, "system:masters")).FlagpoleV1beta1()
	marker := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Name: "marker"}, Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean,
		Variants: []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}}}}
	if _, err := direct.Flags(ns).Create(ctx, marker, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	throughKube := clientset.NewForConfigOrDie(e2e.RestConfig(userAdmin)).FlagpoleV1beta1()
	if err := tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
		_, err := throughKube.Flags(ns).Get(ctx, "marker", metav1.GetOptions{})
		return err
	}); err != nil {
		t.Fatalf("kube-apiserver does not reach the test's replicas: %v", err)
	}
	if err := throughKube.Flags(ns).Delete(ctx, "marker", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func setAPIServicePort(ctx context.Context, agg aggregator.Interface, port int) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		svc, err := agg.ApiregistrationV1().APIServices().Get(ctx, "v1beta1.flagpole.dev", metav1.GetOptions{})
		if err != nil {
			return err
		}
		svc.Spec.Service.Port = ptr.To(int32(port))
		_, err = agg.ApiregistrationV1().APIServices().Update(ctx, svc, metav1.UpdateOptions{})
		return err
	})
}

// front is what a Service's endpoints and kube-proxy do for the test's
// replicas: it accepts TCP connections on loopback and hands each, round
// robin, to a backend whose /readyz passed at the last poll. A connection
// stays with its backend until either side closes it, whatever the
// backend's readiness does later, as with kube-proxy.
type front struct {
	port     int
	l        net.Listener
	backends []int
	ready    []atomic.Bool
	conns    []atomic.Int64
	next     atomic.Uint64
	slots    chan struct{} // bounds the connections handled at once
	done     chan struct{}
	wg       sync.WaitGroup

	mu   sync.Mutex
	open map[net.Conn]struct{}
	once sync.Once
}

const frontMaxConns = 64

func newFront(ports ...int) (*front, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &front{
		port:     l.Addr().(*net.TCPAddr).Port,
		l:        l,
		backends: ports,
		ready:    make([]atomic.Bool, len(ports)),
		conns:    make([]atomic.Int64, len(ports)),
		slots:    make(chan struct{}, frontMaxConns),
		done:     make(chan struct{}),
		open:     map[net.Conn]struct{}{},
	}
	for i, port := range ports {
		// /readyz as a kubelet probe asks it: HTTPS without credentials,
		// and without verifying the certificate (a replica is probed
		// whichever certificate it serves).
		client := &http.Client{
			Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // as the kubelet probes
			Timeout:   time.Second,
		}
		url := "https://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
		f.wg.Add(1)
		go f.poll(i, client, url)
	}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *front) poll(i int, client *http.Client, url string) {
	defer f.wg.Done()
	defer client.CloseIdleConnections()
	for {
		ok := false
		if resp, err := client.Get(url); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
		f.ready[i].Store(ok)
		select {
		case <-f.done:
			return
		case <-time.After(frontPollInterval):
		}
	}
}

func (f *front) accept() {
	defer f.wg.Done()
	for {
		select {
		case f.slots <- struct{}{}:
		case <-f.done:
			return
		}
		conn, err := f.l.Accept()
		if err != nil {
			<-f.slots
			return // closed
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer func() { <-f.slots }()
			f.serve(conn)
		}()
	}
}

func (f *front) serve(conn net.Conn) {
	defer conn.Close()
	i, ok := f.pick()
	if !ok {
		return // no ready backend: refused, as a Service without endpoints
	}
	back, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(f.backends[i]), 2*time.Second)
	if err != nil {
		return
	}
	defer back.Close()
	f.conns[i].Add(1)
	if !f.track(conn, back) {
		return
	}
	defer f.untrack(conn, back)
	copied := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(back, conn); copied <- struct{}{} }()
	go func() { _, _ = io.Copy(conn, back); copied <- struct{}{} }()
	<-copied // one side closed: close both, which ends the other copy
	conn.Close()
	back.Close()
	<-copied
}

func (f *front) pick() (int, bool) {
	n := len(f.backends)
	start := int(f.next.Add(1))
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if f.ready[i].Load() {
			return i, true
		}
	}
	return 0, false
}

func (f *front) track(conns ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		return false // closed
	}
	for _, c := range conns {
		f.open[c] = struct{}{}
	}
	return true
}

func (f *front) untrack(conns ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range conns {
		delete(f.open, c)
	}
}

// waitReady waits until the front sends connections to each backend given.
func (f *front) waitReady(ctx context.Context, backends ...int) error {
	return tcluster.WaitFor(ctx, nil, 60*time.Second, func() error {
		for _, i := range backends {
			if !f.ready[i].Load() {
				return fmt.Errorf("front: replica %d not ready", i+1)
			}
		}
		return nil
	})
}

func (f *front) connections() []int64 {
	out := make([]int64, len(f.conns))
	for i := range f.conns {
		out[i] = f.conns[i].Load()
	}
	return out
}

// close stops accepting and polling, closes every open connection and
// waits for every goroutine of the front.
func (f *front) close() {
	f.once.Do(func() {
		close(f.done)
		f.l.Close()
		f.mu.Lock()
		for c := range f.open {
			c.Close()
		}
		f.open = nil
		f.mu.Unlock()
		f.wg.Wait()
	})
}
