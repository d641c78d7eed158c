package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/test/process"
)

// apiPath is one way to reach Flag objects: the CRD through kube-apiserver,
// Flagpole through kube-apiserver (aggregated), or Flagpole direct.
type apiPath struct {
	name       string
	short      string // object name prefix
	cfg        *rest.Config
	client     dynamic.Interface
	gvr        schema.GroupVersionResource
	apiVersion string
	etcdURL    string           // the etcd that stores its objects
	server     *process.Process // the server that stores them
	// typed, for Flagpole's paths, is its generated clientset, which
	// speaks protobuf: set on the rows that measure what a typed client
	// gets instead of the dynamic client's JSON.
	typed clientset.Interface
	// kind is the CRD a CRD path reaches; nil on Flagpole's paths.
	kind *crdKind
}

// newCRDPath is the path to kind's objects through kube-apiserver.
func newCRDPath(k *crdKind, short string, cfg *rest.Config, etcdURL string, server *process.Process) (*apiPath, error) {
	p, err := newAPIPath(k.name+" through kube-apiserver", short, cfg, k.group, etcdURL, server)
	if err != nil {
		return nil, err
	}
	p.kind, p.gvr.Resource = k, k.resource
	return p, nil
}

// object is the bench's flag named name as p's server holds it.
func (p *apiPath) object(name string) map[string]any {
	if p.kind != nil {
		return p.kind.object(p.apiVersion, name)
	}
	return benchFlag(p.apiVersion, name)
}

// withTypedClient is p measured with Flagpole's generated clientset
// (protobuf) instead of the dynamic client (JSON).
func (p *apiPath) withTypedClient() (*apiPath, error) {
	typed, err := clientset.NewForConfig(p.cfg)
	if err != nil {
		return nil, err
	}
	q := *p
	q.name, q.short, q.typed = p.name+", protobuf", p.short+"pb", typed
	return &q, nil
}

// create creates the bench's flag named name through p.
func (p *apiPath) create(ctx context.Context, ns, name string) error {
	obj := p.object(name)
	if p.typed == nil {
		_, err := p.flags(ns).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		return err
	}
	var f v1beta1.Flag
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &f); err != nil {
		return err
	}
	_, err := p.typed.FlagpoleV1beta1().Flags(ns).Create(ctx, &f, metav1.CreateOptions{})
	return err
}

// get reads the flag named name through p.
func (p *apiPath) get(ctx context.Context, ns, name string) (runtime.Object, error) {
	if p.typed == nil {
		return p.flags(ns).Get(ctx, name, metav1.GetOptions{})
	}
	return p.typed.FlagpoleV1beta1().Flags(ns).Get(ctx, name, metav1.GetOptions{})
}

// updateDescription writes obj, as read by get, back with a new description.
func (p *apiPath) updateDescription(ctx context.Context, ns string, obj runtime.Object, description string) error {
	if p.typed == nil {
		u := obj.(*unstructured.Unstructured).DeepCopy()
		field := []string{"spec", "description"}
		if p.kind != nil {
			field = p.kind.descriptionPath
		}
		if err := unstructured.SetNestedField(u.Object, description, field...); err != nil {
			return err
		}
		_, err := p.flags(ns).Update(ctx, u, metav1.UpdateOptions{})
		return err
	}
	f := obj.(*v1beta1.Flag).DeepCopy()
	f.Spec.Description = description
	_, err := p.typed.FlagpoleV1beta1().Flags(ns).Update(ctx, f, metav1.UpdateOptions{})
	return err
}

func newAPIPath(name, short string, cfg *rest.Config, group, etcdURL string, server *process.Process) (*apiPath, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &apiPath{
		name: name, short: short, cfg: cfg, client: client,
		gvr:        schema.GroupVersionResource{Group: group, Version: crdVersion, Resource: "flags"},
		apiVersion: group + "/" + crdVersion,
		etcdURL:    etcdURL, server: server,
	}, nil
}

func (p *apiPath) flags(ns string) dynamic.ResourceInterface {
	return p.client.Resource(p.gvr).Namespace(ns)
}

func (p *apiPath) listURL(ns string) string {
	return fmt.Sprintf("%s/apis/%s/namespaces/%s/%s", strings.TrimRight(p.cfg.Host, "/"), p.apiVersion, ns, p.gvr.Resource)
}

// runOps runs op for i in [0, n) on workers goroutines, each taking the
// next i as soon as its last answered (a closed loop over a fixed amount of
// work): the window is the wall time of the whole batch.
func runOps(ctx context.Context, n, workers int, op func(ctx context.Context, i int) error) *result {
	var next atomic.Int64
	start := time.Now()
	total := inWorkers(workers, func(r *result) {
		for ctx.Err() == nil {
			i := int(next.Add(1)) - 1
			if i >= n {
				return
			}
			t0 := time.Now()
			if err := op(ctx, i); err != nil {
				r.errs[errKind(err)]++
				continue
			}
			r.ok++
			r.lat = append(r.lat, time.Since(t0))
		}
	})
	total.window = time.Since(start)
	return total
}

// errKind shortens an error to a countable kind: its first 80 bytes.
func errKind(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// etcdRevision is the header revision of the etcd at url, through its JSON
// gateway: it grows by one with every write.
func etcdRevision(ctx context.Context, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v3/kv/range", strings.NewReader(`{"key":"AA==","count_only":true}`))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, fmt.Errorf("etcd range: %w", err)
	}
	return strconv.ParseInt(out.Header.Revision, 10, 64)
}

// settledRevision waits until the etcd's revision has not moved for quiet
// (controllers done writing after a batch), at most limit, and returns it.
func settledRevision(ctx context.Context, url string, quiet, limit time.Duration) (int64, error) {
	deadline := time.Now().Add(limit)
	last, err := etcdRevision(ctx, url)
	if err != nil {
		return 0, err
	}
	since := time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(quiet / 4):
		}
		rev, err := etcdRevision(ctx, url)
		if err != nil {
			return 0, err
		}
		if rev != last {
			last, since = rev, time.Now()
			continue
		}
		if time.Since(since) >= quiet {
			return rev, nil
		}
	}
	return last, nil
}

// listResult is one LIST of a whole namespace in one format.
type listResult struct {
	status int
	bytes  int
	items  int // counted in JSON answers; -1 otherwise
	times  []time.Duration
}

// list GETs every object of ns reps times with Accept: accept, after one
// untimed warm-up, and keeps the last answer's status and size.
func list(ctx context.Context, p *apiPath, ns, accept string, reps int) (*listResult, error) {
	c, err := rest.HTTPClientFor(p.cfg)
	if err != nil {
		return nil, err
	}
	c.Timeout = 2 * time.Minute
	r := &listResult{items: -1}
	for i := range reps + 1 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.listURL(ns), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", accept)
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		r.status, r.bytes = resp.StatusCode, len(body)
		if resp.StatusCode != http.StatusOK {
			return r, nil // no format to time
		}
		if i == 0 {
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				var l struct {
					Items []json.RawMessage `json:"items"`
				}
				if err := json.Unmarshal(body, &l); err != nil {
					return nil, err
				}
				r.items = len(l.Items)
			}
			continue
		}
		r.times = append(r.times, d)
	}
	return r, nil
}

// watchSeqAnnotation carries the number of the fan-out write a watcher waits for.
const watchSeqAnnotation = "bench.flagpole.dev/seq"

// fanout opens watchers watches on one object of ns through p, then writes
// it writes times (a merge patch of an annotation) and measures, for each
// write, the time from just before the write until the last watcher has its
// event. missed counts watchers that had not seen a write within timeout.
//
// On a typed path the watchers use Flagpole's generated clientset, which
// speaks protobuf, instead of the dynamic client's JSON.
func fanout(ctx context.Context, p *apiPath, ns string, watchers, writes int, timeout time.Duration) (lat []time.Duration, missed int, err error) {
	typed := p.typed != nil
	name := "fanout-" + p.short
	obj := &unstructured.Unstructured{Object: p.object(name)}
	if _, err := p.flags(ns).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return nil, 0, err
	}
	// Let a status write after the create land before the watches start.
	time.Sleep(2 * time.Second)
	cur, err := p.flags(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, 0, err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Watchers share a connection per group of perClient; each group a
	// transport of its own (a Dial function keeps client-go from caching
	// one transport for all).
	const perClient = 50
	var watches []func(context.Context, metav1.ListOptions) (watch.Interface, error)
	for range (watchers + perClient - 1) / perClient {
		cfg := rest.CopyConfig(p.cfg)
		d := &net.Dialer{Timeout: 10 * time.Second}
		cfg.Dial = d.DialContext
		if typed {
			cl, err := clientset.NewForConfig(cfg)
			if err != nil {
				return nil, 0, err
			}
			watches = append(watches, cl.FlagpoleV1beta1().Flags(ns).Watch)
			continue
		}
		cl, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return nil, 0, err
		}
		watches = append(watches, cl.Resource(p.gvr).Namespace(ns).Watch)
	}
	var want atomic.Int64 // the write every watcher waits for
	var got atomic.Int64  // watchers that have it
	var last atomic.Int64 // UnixNano when the last one got it
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := range watchers {
		w, err := watches[i/perClient](wctx, metav1.ListOptions{
			FieldSelector:   "metadata.name=" + name,
			ResourceVersion: cur.GetResourceVersion(),
		})
		if err != nil {
			return nil, 0, fmt.Errorf("watch %d: %w", i, err)
		}
		wg.Go(func() {
			defer w.Stop()
			seen := int64(0)
			for ev := range w.ResultChan() {
				u, err := meta.Accessor(ev.Object)
				if err != nil {
					continue
				}
				seq, _ := strconv.ParseInt(u.GetAnnotations()[watchSeqAnnotation], 10, 64)
				if seq > seen && seq == want.Load() {
					seen = seq
					now := time.Now().UnixNano()
					if got.Add(1) == int64(watchers) {
						last.Store(now)
					}
				}
			}
		})
	}
	for k := 1; k <= writes; k++ {
		got.Store(0)
		last.Store(0)
		want.Store(int64(k))
		patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"%d"}}}`, watchSeqAnnotation, k)
		t0 := time.Now()
		if _, err := p.flags(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return nil, 0, err
		}
		deadline := t0.Add(timeout)
		for last.Load() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if l := last.Load(); l != 0 {
			lat = append(lat, time.Unix(0, l).Sub(t0))
		} else {
			missed += watchers - int(got.Load())
		}
		// Let stragglers of this write drain before the next.
		time.Sleep(100 * time.Millisecond)
	}
	return lat, missed, ctx.Err()
}

// heapInUse forces a garbage collection in the server behind cfg (through
// its heap profile, which it returns) and reads, from its /metrics right
// after, the heap in use (go_memstats_heap_inuse_bytes: every span holding a
// live object, whole) and the live heap (go_memstats_alloc_bytes: the live
// objects' bytes, exact after the collection). What lies between is
// fragmentation: free slots in spans a live object keeps.
func heapInUse(ctx context.Context, cfg *rest.Config) (profile []byte, inuse, live int64, err error) {
	if profile, err = debugGet(ctx, cfg, "/debug/pprof/heap?gc=1"); err != nil {
		return nil, 0, 0, err
	}
	metrics, err := debugGet(ctx, cfg, "/metrics")
	if err != nil {
		return profile, 0, 0, err
	}
	inuse, live = -1, -1
	for _, line := range strings.Split(string(metrics), "\n") {
		for name, v := range map[string]*int64{"go_memstats_heap_inuse_bytes ": &inuse, "go_memstats_alloc_bytes ": &live} {
			if value, ok := strings.CutPrefix(line, name); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
				if err != nil {
					return profile, 0, 0, err
				}
				*v = int64(f)
			}
		}
	}
	if inuse < 0 || live < 0 {
		return profile, 0, 0, fmt.Errorf("no go_memstats_heap_inuse_bytes or go_memstats_alloc_bytes in /metrics")
	}
	return profile, inuse, live, nil
}

// debugGet GETs one of a server's non-resource paths (/metrics,
// /debug/pprof/...) with cfg's credentials.
func debugGet(ctx context.Context, cfg *rest.Config, path string) ([]byte, error) {
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(cfg.Host, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return b, err
}
