package ofrep

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// fakeEvaluator answers from a fixed table, recording the contexts it saw.
type fakeEvaluator struct {
	results map[string]v1beta1.FlagEvaluation // namespace/key
	seen    []*evaluation.Context
}

func (f *fakeEvaluator) Evaluate(_ context.Context, namespace, key string, c *evaluation.Context) (v1beta1.FlagEvaluation, bool) {
	f.seen = append(f.seen, c)
	res, ok := f.results[namespace+"/"+key]
	return res, ok
}

func (f *fakeEvaluator) EvaluateAll(_ context.Context, namespace string, c *evaluation.Context) []v1beta1.FlagEvaluation {
	f.seen = append(f.seen, c)
	var out []v1beta1.FlagEvaluation
	for k, res := range f.results {
		if strings.HasPrefix(k, namespace+"/") {
			out = append(out, res)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func newFake() *fakeEvaluator {
	on := &v1beta1.JSON{Raw: []byte("true")}
	return &fakeEvaluator{results: map[string]v1beta1.FlagEvaluation{
		"apps/new-checkout": {Key: "new-checkout", Value: on, Variant: "on", Reason: evaluation.ReasonTargetingMatch,
			Metadata: v1beta1.EvaluationMetadata{ResourceVersion: "7", Generation: 2, Rule: "staff"}},
		"apps/rollout": {Key: "rollout", Reason: evaluation.ReasonError, ErrorCode: evaluation.ErrorTargetingKeyMissing, ErrorMessage: "needs a targetingKey"},
		"other/hidden": {Key: "hidden", Reason: evaluation.ReasonStatic},
	}}
}

func serve(t *testing.T, h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSingleEvaluation(t *testing.T) {
	h := NewHandler(newFake(), nil, http.NotFoundHandler())
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"success", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"targetingKey":"u"}}`, 200,
			`{"key":"new-checkout","value":true,"reason":"TARGETING_MATCH","variant":"on","metadata":{"flagSetId":"apps","version":"2","resourceVersion":"7","generation":2,"rule":"staff"}}`},
		{"no body is an empty context", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", ``, 200, `"reason":"TARGETING_MATCH"`},
		{"engine error", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/rollout", `{}`, 400,
			`{"key":"rollout","errorCode":"TARGETING_KEY_MISSING","errorDetails":"needs a targetingKey"}`},
		{"not found", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/nope", `{}`, 404, `"errorCode":"FLAG_NOT_FOUND"`},
		{"other namespace's flag", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/hidden", `{}`, 404, `"errorCode":"FLAG_NOT_FOUND"`},
		{"malformed body", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", `{"context":`, 400, `"errorCode":"PARSE_ERROR"`},
		{"context not an object", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", `{"context":[1]}`, 400, `"errorCode":"INVALID_CONTEXT"`},
		{"targetingKey not a string", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"targetingKey":1}}`, 400, `"errorCode":"INVALID_CONTEXT"`},
		{"too large", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", `{"context":{"s":"` + strings.Repeat("x", MaxRequestBytes) + `"}}`, 413, `"errorCode":"INVALID_CONTEXT"`},
		{"wrong method", "GET", "/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout", ``, 405, `"errorCode":"GENERAL"`},
		{"invalid key", "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/Not_A_Name", `{}`, 404, `"errorCode":"FLAG_NOT_FOUND"`},
		{"not an OFREP path", "POST", "/namespaces/apps/ofrep/v1/evaluate", `{}`, 404, `404 page not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, tc.method, tc.path, tc.body)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("%s %s: %d %s, want %d containing %s", tc.method, tc.path, rec.Code, rec.Body, tc.code, tc.want)
			}
		})
	}
}

func TestBulkEvaluationETag(t *testing.T) {
	fake := newFake()
	changes := &Changes{server: "s", clock: clocktesting.NewFakeClock(time.Now()), namespaces: map[string]*namespaceChanges{}, closed: make(chan struct{})}
	h := NewHandler(fake, changes, http.NotFoundHandler())
	path := "/namespaces/apps/ofrep/v1/evaluate/flags"

	first := serve(t, h, "POST", path, `{"context":{"targetingKey":"u"}}`)
	if first.Code != http.StatusOK {
		t.Fatalf("bulk: %d %s", first.Code, first.Body)
	}
	var body struct {
		Flags        []map[string]any `json:"flags"`
		EventStreams []eventStream    `json:"eventStreams"`
	}
	if err := json.Unmarshal(first.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Flags) != 2 || body.Flags[0]["key"] != "new-checkout" || body.Flags[1]["errorCode"] != "TARGETING_KEY_MISSING" {
		t.Errorf("flags = %v, want new-checkout then rollout's failure, and no flag of another namespace", body.Flags)
	}
	if len(body.EventStreams) != 1 || body.EventStreams[0].Endpoint.RequestURI != "/namespaces/apps/ofrep/v1/events" {
		t.Errorf("eventStreams = %+v", body.EventStreams)
	}
	etag := first.Header().Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q is not a quoted entity tag", etag)
	}

	same := serve(t, h, "POST", path, `{"context":{"targetingKey":"u"}}`, "If-None-Match", etag)
	if same.Code != http.StatusNotModified || same.Body.Len() != 0 || same.Header().Get("ETag") != etag {
		t.Errorf("unchanged answer with If-None-Match: %d %q etag %q, want 304 without body", same.Code, same.Body, same.Header().Get("ETag"))
	}
	if rec := serve(t, h, "POST", path, `{}`, "If-None-Match", `"other", W/`+etag); rec.Code != http.StatusNotModified {
		t.Errorf("weak match in a list: %d, want 304", rec.Code)
	}

	// The answer changes (the flag now serves another variant): same
	// context, same If-None-Match, new body.
	res := fake.results["apps/new-checkout"]
	res.Variant, res.Value, res.Metadata.ResourceVersion = "off", &v1beta1.JSON{Raw: []byte("false")}, "8"
	fake.results["apps/new-checkout"] = res
	changed := serve(t, h, "POST", path, `{"context":{"targetingKey":"u"}}`, "If-None-Match", etag)
	if changed.Code != http.StatusOK || changed.Header().Get("ETag") == etag {
		t.Errorf("changed answer: %d etag %q, want 200 with a new ETag", changed.Code, changed.Header().Get("ETag"))
	}
}

func TestRequestInfo(t *testing.T) {
	next := &genericapirequest.RequestInfoFactory{APIPrefixes: nil, GrouplessAPIPrefixes: nil}
	r := RequestInfoResolver{Next: next}
	for path, want := range map[string]genericapirequest.RequestInfo{
		"/namespaces/apps/ofrep/v1/evaluate/flags/new-checkout": {IsResourceRequest: true, Verb: "create", APIGroup: "flagpole.dev", APIVersion: "v1beta1",
			Namespace: "apps", Resource: "flags", Subresource: "evaluate", Name: "new-checkout"},
		"/namespaces/apps/ofrep/v1/evaluate/flags": {IsResourceRequest: true, Verb: "create", APIGroup: "flagpole.dev", APIVersion: "v1beta1",
			Namespace: "apps", Resource: "evaluations"},
		"/namespaces/apps/ofrep/v1/events": {IsResourceRequest: true, Verb: "create", APIGroup: "flagpole.dev", APIVersion: "v1beta1",
			Namespace: "apps", Resource: "evaluations"},
		"/namespaces/apps/ofrep/v2/evaluate/flags":  {Verb: "post"},
		"/namespaces/Bad_NS/ofrep/v1/events":        {Verb: "post"},
		"/namespaces/apps/ofrep/v1/evaluate/flags/": {Verb: "post"},
	} {
		info, err := r.NewRequestInfo(httptest.NewRequest("POST", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if info.IsResourceRequest != want.IsResourceRequest || info.Verb != want.Verb || info.APIGroup != want.APIGroup ||
			info.APIVersion != want.APIVersion || info.Namespace != want.Namespace || info.Resource != want.Resource ||
			info.Subresource != want.Subresource || info.Name != want.Name {
			t.Errorf("%s: %+v, want %+v", path, *info, want)
		}
	}
	if !IsLongRunning(httptest.NewRequest("GET", "/namespaces/apps/ofrep/v1/events", nil)) ||
		IsLongRunning(httptest.NewRequest("POST", "/namespaces/apps/ofrep/v1/evaluate/flags", nil)) {
		t.Error("only the event stream is long-running")
	}
}

func TestEventStream(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))
	changes := &Changes{server: "s1", clock: clk, namespaces: map[string]*namespaceChanges{}, closed: make(chan struct{})}
	srv := httptest.NewServer(NewHandler(newFake(), changes, http.NotFoundHandler()))
	defer srv.Close()
	changes.Notify("apps") // before anyone listens: id s1.1

	openNS := func(namespace, lastEventID string) (*bufio.Reader, func()) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/namespaces/"+namespace+"/ofrep/v1/events", nil)
		if lastEventID != "" {
			req.Header.Set("Last-Event-ID", lastEventID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return bufio.NewReader(resp.Body), func() { cancel(); resp.Body.Close() }
	}
	open := func(lastEventID string) (*bufio.Reader, func()) { return openNS("apps", lastEventID) }
	// readEvent reads one event (skipping keep-alive comments).
	readEvent := func(r *bufio.Reader) (id string, data refetchEvent) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("event stream ended: %v", err)
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &data); err != nil {
					t.Fatal(err)
				}
			case line == "" && id != "":
				return id, data
			}
		}
	}

	// Up to date: nothing until the next change (after a quiet window, so
	// told at once).
	r, closeStream := open("s1.1")
	waitSubscribers(t, changes, "apps", 1)
	clk.Step(CoalesceWindow)
	changes.Notify("other")
	changes.Notify("apps")
	id, ev := readEvent(r)
	if id != "s1.2" || ev.Type != "refetchEvaluation" || ev.ETag != `"s1.2"` || ev.LastModified != 1_800_000_000 {
		t.Errorf("event %q %+v, want id s1.2 refetchEvaluation", id, ev)
	}
	closeStream()

	// Resuming from an id of another replica or an older sequence: told at once.
	for _, last := range []string{"s1.1", "other-replica.9"} {
		r, closeStream := open(last)
		if id, _ := readEvent(r); id != "s1.2" {
			t.Errorf("resume from %s: first event %q, want s1.2 at once", last, id)
		}
		closeStream()
	}
	waitSubscribers(t, changes, "apps", 0)

	// A stream on a namespace that never changed leaves no state behind.
	_, closeStream = openNS("never-changed", "")
	waitSubscribers(t, changes, "never-changed", 1)
	closeStream()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		changes.mu.Lock()
		defer changes.mu.Unlock()
		_, kept := changes.namespaces["never-changed"]
		return !kept, nil
	})
	if err != nil {
		t.Error("a closed stream on a namespace without changes left its state behind")
	}
}

// A storm of changes in a namespace is told as one event at once and one at
// the end of the coalescing window, not one event per change.
func TestEventsCoalesce(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))
	changes := &Changes{server: "s1", clock: clk, namespaces: map[string]*namespaceChanges{}, closed: make(chan struct{})}
	sub := changes.subscribe("apps")
	seq := func() uint64 {
		changes.mu.Lock()
		defer changes.mu.Unlock()
		return changes.namespaces["apps"].seq
	}
	changes.Notify("apps")
	if got := seq(); got != 1 {
		t.Fatalf("first change after a quiet period: seq %d, want 1 (told at once)", got)
	}
	<-sub
	for range 1000 {
		changes.Notify("apps")
	}
	if got := seq(); got != 1 {
		t.Fatalf("1,000 changes within the window: seq %d, want them held for its end", got)
	}
	select {
	case <-sub:
		t.Fatal("an event before the window ended")
	default:
	}
	clk.Step(CoalesceWindow)
	select {
	case <-sub:
	case <-time.After(10 * time.Second):
		t.Fatal("no event at the end of the window")
	}
	if got := seq(); got != 2 {
		t.Errorf("after the window: seq %d, want 2 (one event for the 1,000)", got)
	}
	// Changes keep coming: the next window is twice as long.
	changes.Notify("apps")
	clk.Step(CoalesceWindow)
	select {
	case <-sub:
		t.Fatal("an event one short window into a storm; want the window doubled")
	default:
	}
	clk.Step(CoalesceWindow)
	select {
	case <-sub:
	case <-time.After(10 * time.Second):
		t.Fatal("no event at the end of the doubled window")
	}
	// After a quiet (current) window, a change is told at once again.
	clk.Step(MaxCoalesceWindow)
	changes.Notify("apps")
	select {
	case <-sub:
	default:
		t.Error("a change after a quiet window was not told at once")
	}
}

func waitSubscribers(t *testing.T, ch *Changes, namespace string, n int) {
	t.Helper()
	var got int
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		got = len(ch.namespace(namespace).subscribers)
		return got == n, nil
	})
	if err != nil {
		t.Fatalf("%d subscribers of %s, want %d", got, namespace, n)
	}
}

// Event streams are bounded in all and per user: one over a limit is a 429
// with Retry-After saying which, and closing a stream makes room again.
func TestEventStreamLimits(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_800_000_000, 0))
	changes := &Changes{server: "s1", clock: clk, namespaces: map[string]*namespaceChanges{}, closed: make(chan struct{}),
		limits: StreamLimits{Total: 3, PerUser: 2}}
	h := NewHandler(newFake(), changes, http.NotFoundHandler())
	// The filter chain puts the authenticated user in the context.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req.WithContext(genericapirequest.WithUser(req.Context(), &user.DefaultInfo{Name: req.Header.Get("X-Test-User")})))
	}))
	defer srv.Close()
	defer changes.Close()

	open := func(who string) (*http.Response, func()) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/namespaces/apps/ofrep/v1/events", nil)
		req.Header.Set("X-Test-User", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, func() { cancel(); resp.Body.Close() }
	}
	mustOpen := func(who string) func() {
		t.Helper()
		resp, closeStream := open(who)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream for %s: %d, want 200", who, resp.StatusCode)
		}
		return closeStream
	}
	mustRefuse := func(who, limit string) {
		t.Helper()
		resp, closeStream := open(who)
		defer closeStream()
		var body failure
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" || !strings.Contains(body.ErrorDetails, limit) {
			t.Fatalf("stream for %s over the %s: %d Retry-After=%q %+v, want 429 naming it", who, limit, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}

	closeAlice := mustOpen("alice")
	defer mustOpen("alice")()
	mustRefuse("alice", "limit per user")
	defer mustOpen("bob")()
	mustRefuse("bob", "its limit") // three open: the server's limit
	closeAlice()
	waitSubscribers(t, changes, "apps", 2)
	defer mustOpen("bob")()
	mustRefuse("carol", "its limit")
}

// A bulk answer is gzipped for a client that accepts it, under an entity
// tag of its own; either tag in If-None-Match is a 304.
func TestBulkEvaluationGzip(t *testing.T) {
	fake := newFake()
	// Enough flags for an answer worth compressing.
	for i := range 40 {
		key := fmt.Sprintf("flag-%02d", i)
		fake.results["apps/"+key] = v1beta1.FlagEvaluation{Key: key, Reason: evaluation.ReasonStatic, Variant: "on", Value: &v1beta1.JSON{Raw: []byte("true")}}
	}
	h := NewHandler(fake, nil, http.NotFoundHandler())
	path := "/namespaces/apps/ofrep/v1/evaluate/flags"
	plain := serve(t, h, "POST", path, `{}`)
	gz := serve(t, h, "POST", path, `{}`, "Accept-Encoding", "br, gzip")
	if plain.Code != 200 || gz.Code != 200 {
		t.Fatalf("%d %d", plain.Code, gz.Code)
	}
	if gz.Header().Get("Content-Encoding") != "gzip" || plain.Header().Get("Content-Encoding") != "" {
		t.Fatalf("Content-Encoding %q (accepting gzip) and %q (not)", gz.Header().Get("Content-Encoding"), plain.Header().Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain.Body.Bytes()) {
		t.Fatalf("gzipped answer does not unzip to the plain one (%v)", err)
	}
	if gz.Body.Len() >= plain.Body.Len() {
		t.Errorf("gzipped %d bytes, plain %d", gz.Body.Len(), plain.Body.Len())
	}
	if gz.Header().Get("ETag") == plain.Header().Get("ETag") || !strings.Contains(gz.Header().Get("Vary"), "Accept-Encoding") {
		t.Errorf("ETag %q / %q, Vary %q: the two representations need their own tags", gz.Header().Get("ETag"), plain.Header().Get("ETag"), gz.Header().Get("Vary"))
	}
	for _, etag := range []string{gz.Header().Get("ETag"), plain.Header().Get("ETag")} {
		if rec := serve(t, h, "POST", path, `{}`, "Accept-Encoding", "gzip", "If-None-Match", etag); rec.Code != http.StatusNotModified {
			t.Errorf("If-None-Match %s: %d, want 304", etag, rec.Code)
		}
	}
	if rec := serve(t, h, "POST", path, `{}`, "Accept-Encoding", "gzip;q=0"); rec.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got a gzipped answer")
	}
}

// blockingEvaluator counts bulk evaluations and holds each until released.
type blockingEvaluator struct {
	*fakeEvaluator
	calls   atomic.Int32
	release chan struct{}
}

func (b *blockingEvaluator) EvaluateAll(ctx context.Context, namespace string, c *evaluation.Context) []v1beta1.FlagEvaluation {
	b.calls.Add(1)
	<-b.release
	return b.fakeEvaluator.EvaluateAll(ctx, namespace, c)
}

// Identical bulk evaluations in flight at once (every listener re-fetching
// after one change) are evaluated once.
func TestBulkEvaluationsShared(t *testing.T) {
	b := &blockingEvaluator{fakeEvaluator: newFake(), release: make(chan struct{})}
	h := NewHandler(b, nil, http.NotFoundHandler())
	const n = 50
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() {
			codes[i] = serve(t, h, "POST", "/namespaces/apps/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u"}}`).Code
		})
	}
	// Let the requests reach the evaluation before it answers.
	if err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 5*time.Second, true, func(context.Context) (bool, error) {
		return b.calls.Load() >= 1, nil
	}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the other 49 join the one in flight
	close(b.release)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	if calls := b.calls.Load(); calls > n/5 {
		t.Errorf("%d evaluations for %d identical concurrent requests, want them shared", calls, n)
	}
	// Another context is evaluated on its own.
	if rec := serve(t, h, "POST", "/namespaces/apps/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"v"}}`); rec.Code != 200 || b.calls.Load() < 2 {
		t.Errorf("another context: %d after %d evaluations", rec.Code, b.calls.Load())
	}
}

// A plain-text error a filter answers on an OFREP path (flow control's 429)
// reaches the client as an OFREP error body, status and Retry-After kept;
// JSON errors and other paths pass untouched.
func TestErrorBodies(t *testing.T) {
	tooMany := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "4")
		http.Error(w, "Too many requests, please try again later.", http.StatusTooManyRequests)
	})
	rec := serve(t, WithErrorBodies(tooMany), "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/f", `{}`)
	var f failure
	if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil || rec.Code != 429 || rec.Header().Get("Retry-After") != "4" ||
		f.ErrorCode != evaluation.ErrorGeneral || !strings.Contains(f.ErrorDetails, "Too many requests") || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("OFREP 429: %d %q %q (%v)", rec.Code, rec.Header(), rec.Body, err)
	}
	if rec := serve(t, WithErrorBodies(tooMany), "GET", "/apis/flagpole.dev/v1beta1/flags", ``); !strings.HasPrefix(rec.Body.String(), "Too many") {
		t.Errorf("a kube path's error was rewritten: %q", rec.Body)
	}
	h := NewHandler(newFake(), nil, http.NotFoundHandler())
	direct := serve(t, h, "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/missing", `{}`)
	wrapped := serve(t, WithErrorBodies(h), "POST", "/namespaces/apps/ofrep/v1/evaluate/flags/missing", `{}`)
	if direct.Code != wrapped.Code || direct.Body.String() != wrapped.Body.String() {
		t.Errorf("the handler's own answer changed: %d %q, then %d %q", direct.Code, direct.Body, wrapped.Code, wrapped.Body)
	}
}
