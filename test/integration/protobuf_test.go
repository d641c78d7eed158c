package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	clientset "github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/scheme"
)

// protobufMagic starts every protobuf-encoded Kubernetes object, on the wire
// and in etcd.
var protobufMagic = []byte("k8s\x00")

// exchange is one HTTP request a client made and what came back.
type exchange struct {
	method, path, requestType, accept, responseType string
	status                                          int
}

// recorder is a RoundTripper that notes every exchange.
type recorder struct {
	mu        sync.Mutex
	exchanges []exchange
	next      http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exchanges = append(r.exchanges, exchange{
		method: req.Method, path: req.URL.Path,
		requestType: req.Header.Get("Content-Type"), accept: req.Header.Get("Accept"),
		responseType: resp.Header.Get("Content-Type"), status: resp.StatusCode,
	})
	return resp, nil
}

func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.exchanges...)
}

// recordingClient is a generated clientset, configured as applications
// configure it (nothing about content types), whose exchanges are recorded.
func recordingClient(t *testing.T, cfg *rest.Config) (clientset.Interface, *recorder) {
	t.Helper()
	rec := &recorder{}
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	client, err := clientset.NewForConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return client, rec
}

func isProtobuf(contentType string) bool {
	return strings.HasPrefix(contentType, runtime.ContentTypeProtobuf)
}

// The generated clientset speaks protobuf by default, for every kind and
// verb: request bodies (create, update, status, evaluate, evaluations) and
// responses (get, list, watch, create, update, patch, apply, delete).
func TestProtobufClientsetByDefault(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, rec := recordingClient(t, s.AdminConfig)
	fp := client.FlagpoleV1beta1()
	const ns = "proto"

	w, err := fp.Flags(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	seg, err := fp.Segments(ns).Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"},
		Spec: v1beta1.SegmentSpec{When: `context.email.endsWith("@example.com")`, Include: []string{"u1"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seg.Spec.Exclude = []string{"u2"}
	if _, err := fp.Segments(ns).Update(ctx, seg, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := fp.Segments(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 1 || l.Items[0].Spec.Exclude[0] != "u2" {
		t.Fatalf("list segments: %v %v", l, err)
	}

	created, err := fp.Flags(ns).Create(ctx, boolFlag("new-checkout"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(created.Spec.Variants[0].Value.Raw) != "true" || created.Spec.Rules[1].Rollout.Distribution[1].Weight != 90 {
		t.Errorf("created flag came back as %+v", created.Spec)
	}
	expectWatched(t, ctx, w, watch.Added, "new-checkout")
	f := waitForStatus(t, client, ns, "new-checkout")
	f.Spec.Variants = append(f.Spec.Variants, v1beta1.Variant{Name: "maybe", Value: raw(map[string]any{"nested": []any{1.5, "x", nil}})})
	f.Spec.Type = v1beta1.FlagTypeObject
	f.Spec.Variants[0].Value, f.Spec.Variants[1].Value = raw(map[string]any{"on": true}), raw(map[string]any{})
	if f, err = fp.Flags(ns).Update(ctx, f, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := string(f.Spec.Variants[2].Value.Raw); got != `{"nested":[1.5,"x",null]}` {
		t.Errorf("a nested value came back as %s", got)
	}
	f = waitForStatus(t, client, ns, "new-checkout")
	f.Status.Conditions[0].Message = "checked by the test"
	if _, err := fp.Flags(ns).UpdateStatus(ctx, f, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
		t.Fatal(err)
	}
	if _, err := fp.Flags(ns).Patch(ctx, "new-checkout", types.MergePatchType, []byte(`{"spec":{"owner":"team-proto"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, err := fp.Flags(ns).List(ctx, metav1.ListOptions{LabelSelector: "team=checkout"}); err != nil || len(l.Items) != 1 || l.Items[0].Spec.Owner != "team-proto" {
		t.Fatalf("list flags: %v %v", l, err)
	}

	res, err := fp.Flags(ns).Evaluate(ctx, "new-checkout", &v1beta1.EvaluationRequest{Context: raw(map[string]any{"targetingKey": "u1"})}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != "new-checkout" || res.Value == nil || len(res.Value.Raw) == 0 {
		t.Errorf("evaluate: %+v", res.FlagEvaluation)
	}
	bulk, err := fp.Evaluations(ns).Create(ctx, &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Context: raw(map[string]any{"targetingKey": "u1"})}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(bulk.Status.Results) != 1 || bulk.Status.Results[0].Key != "new-checkout" {
		t.Errorf("evaluations: %+v", bulk.Status)
	}

	o, err := fp.FlagOverrides(ns).Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "force-on"},
		Spec: v1beta1.FlagOverrideSpec{Flag: "new-checkout", Variant: "on", TargetingKeys: []string{"u9"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Status.ExpiresAt == nil || o.Spec.TTL == nil || o.Spec.TTL.Duration != time.Hour {
		t.Errorf("override came back as %+v", o)
	}
	if l, err := fp.FlagOverrides(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 1 {
		t.Fatalf("list overrides: %v %v", l, err)
	}
	if err := fp.FlagOverrides(ns).Delete(ctx, "force-on", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := fp.Flags(ns).Delete(ctx, "new-checkout", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectWatched(t, ctx, w, watch.Deleted, "new-checkout")

	seen := map[string]bool{}
	for _, ex := range rec.all() {
		what := fmt.Sprintf("%s %s (%d)", ex.method, ex.path, ex.status)
		if ex.status >= 300 && ex.status != http.StatusConflict {
			t.Errorf("%s: status %d", what, ex.status)
		}
		if !strings.HasPrefix(ex.accept, runtime.ContentTypeProtobuf) {
			t.Errorf("%s: Accept %q, want protobuf first", what, ex.accept)
		}
		if !isProtobuf(ex.responseType) {
			t.Errorf("%s: response Content-Type %q, want protobuf", what, ex.responseType)
		}
		if (ex.method == http.MethodPost || ex.method == http.MethodPut) && !isProtobuf(ex.requestType) {
			t.Errorf("%s: request Content-Type %q, want protobuf", what, ex.requestType)
		}
		seen[ex.method+" "+lastSegment(ex.path)] = true
	}
	for _, want := range []string{"GET flags", "GET segments", "GET flagoverrides", "GET new-checkout", "POST flags", "POST segments",
		"POST flagoverrides", "POST evaluate", "POST evaluations", "PUT new-checkout", "PUT employees", "PUT status", "PATCH new-checkout", "DELETE new-checkout"} {
		if !seen[want] {
			t.Errorf("no %s request was recorded: %v", want, seen)
		}
	}
}

func lastSegment(path string) string { return path[strings.LastIndex(path, "/")+1:] }

func expectWatched(t *testing.T, ctx context.Context, w watch.Interface, typ watch.EventType, name string) {
	t.Helper()
	for {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				t.Fatalf("watch closed before %s %s", typ, name)
			}
			if f, ok := ev.Object.(*v1beta1.Flag); ok && ev.Type == typ && f.Name == name {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s event for %s", typ, name)
		}
	}
}

// GET, LIST and WATCH answer protobuf to a plain client asking for it, for
// every resource; each body decodes to the kind asked for.
func TestProtobufRESTReads(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns = "proto-rest"
	createOneOfEach(t, s.Client, ns)

	base := "/apis/flagpole.dev/v1beta1/namespaces/" + ns
	decoder := scheme.Codecs.UniversalDeserializer()
	for path, want := range map[string]runtime.Object{
		base + "/flags":                    &v1beta1.FlagList{},
		base + "/flags/f":                  &v1beta1.Flag{},
		base + "/flags/f/status":           &v1beta1.Flag{},
		base + "/segments":                 &v1beta1.SegmentList{},
		base + "/segments/s":               &v1beta1.Segment{},
		base + "/flagoverrides":            &v1beta1.FlagOverrideList{},
		base + "/flagoverrides/o":          &v1beta1.FlagOverride{},
		"/apis/flagpole.dev/v1beta1/flags": &v1beta1.FlagList{},
	} {
		code, body := do(t, s.AdminConfig, http.MethodGet, path, "", nil, "Accept", runtime.ContentTypeProtobuf)
		if code != http.StatusOK || !bytes.HasPrefix(body, protobufMagic) {
			t.Errorf("GET %s: %d %q", path, code, body[:min(len(body), 80)])
			continue
		}
		obj, _, err := decoder.Decode(body, nil, nil)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		if fmt.Sprintf("%T", obj) != fmt.Sprintf("%T", want) {
			t.Errorf("GET %s decoded to %T, want %T", path, obj, want)
		}
	}

	// A watch through a REST client that asks for protobuf only.
	cfg := rest.CopyConfig(s.AdminConfig)
	cfg.GroupVersion = &v1beta1.SchemeGroupVersion
	cfg.APIPath = "/apis"
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf
	cfg.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rec := &recorder{}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { rec.next = rt; return rec })
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, resource := range []string{"flags", "segments", "flagoverrides"} {
		w, err := rc.Get().Namespace(ns).Resource(resource).VersionedParams(&metav1.ListOptions{Watch: true}, scheme.ParameterCodec).Watch(ctx)
		if err != nil {
			t.Fatalf("watch %s: %v", resource, err)
		}
		select {
		case ev := <-w.ResultChan():
			if ev.Type != watch.Added {
				t.Errorf("watch %s: first event %s %v", resource, ev.Type, ev.Object)
			}
		case <-ctx.Done():
			t.Fatalf("watch %s: no event", resource)
		}
		w.Stop()
	}
	for _, ex := range rec.all() {
		if ex.responseType != runtime.ContentTypeProtobuf+";stream=watch" {
			t.Errorf("watch %s: Content-Type %q", ex.path, ex.responseType)
		}
	}
}

// createOneOfEach creates the flag f, the segment s and the override o.
func createOneOfEach(t *testing.T, client clientset.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	createFlag(t, client, ns, boolFlag("f"))
	if _, err := client.FlagpoleV1beta1().Segments(ns).Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Spec: v1beta1.SegmentSpec{Include: []string{"a"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.FlagpoleV1beta1().FlagOverrides(ns).Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "o"}, Spec: v1beta1.FlagOverrideSpec{Flag: "f", Variant: "on"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// etcdSocketClient reaches the embedded etcd of a server started in dir.
func etcdSocketClient(t *testing.T, dir string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"unix://" + filepath.Join(dir, "run", "etcd.sock")}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// storedValue is the value etcd holds for an object, and its key.
func storedValue(t *testing.T, cli *clientv3.Client, resource, ns, name string) ([]byte, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/registry/flagpole.dev/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	suffix := "/" + resource + "/" + ns + "/" + name
	for _, kv := range resp.Kvs {
		if strings.HasSuffix(string(kv.Key), suffix) {
			return kv.Value, string(kv.Key)
		}
	}
	t.Fatalf("etcd has no key ending in %s", suffix)
	return nil, ""
}

// By default every kind is stored in etcd as protobuf.
func TestProtobufStorage(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	s := startServerIn(t, dir)
	const ns = "proto-storage"
	createOneOfEach(t, s.Client, ns)
	cli := etcdSocketClient(t, dir)
	for _, key := range [][2]string{{"flags", "f"}, {"segments", "s"}, {"flagoverrides", "o"}} {
		v, _ := storedValue(t, cli, key[0], ns, key[1])
		if !bytes.HasPrefix(v, protobufMagic) {
			t.Errorf("%s/%s is stored as %q, want protobuf", key[0], key[1], v[:min(len(v), 40)])
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(v, nil, nil)
		if err != nil || gvk.GroupVersion() != v1beta1.SchemeGroupVersion {
			t.Errorf("%s/%s: stored protobuf decodes to %v %v", key[0], key[1], gvk, err)
		}
		if f, ok := obj.(*v1beta1.Flag); ok && string(f.Spec.Variants[0].Value.Raw) != "true" {
			t.Errorf("stored flag's variant value: %s", f.Spec.Variants[0].Value.Raw)
		}
	}
}
