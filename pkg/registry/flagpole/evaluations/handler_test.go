package evaluations

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/metrics"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/legacyregistry"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/fake"
	informers "github.com/flagpole-dev/flagpole/pkg/generated/informers/externalversions"
)

// admissionRecorder is an admission plugin that records what it saw and
// refuses EvaluationRequests that ask for an explanation.
type admissionRecorder struct {
	mutated, validated []string
}

func (a *admissionRecorder) Handles(admission.Operation) bool { return true }

func (a *admissionRecorder) Admit(_ context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	a.mutated = append(a.mutated, attrs.GetResource().Resource+"/"+attrs.GetSubresource()+" "+attrs.GetNamespace()+"/"+attrs.GetName()+" "+attrs.GetUserInfo().GetName())
	return nil
}

func (a *admissionRecorder) Validate(_ context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	a.validated = append(a.validated, attrs.GetResource().Resource+"/"+attrs.GetSubresource())
	if r, ok := attrs.GetObject().(*flagpole.EvaluationRequest); ok && r.Explain {
		return admission.NewForbidden(attrs, nil)
	}
	return nil
}

func directForTest(t *testing.T) (*DirectEvaluate, *admissionRecorder) {
	return directWithLimit(t, 1<<20)
}

func directWithLimit(t *testing.T, maxBody int64) (*DirectEvaluate, *admissionRecorder) {
	t.Helper()
	client := fake.NewSimpleClientset()
	flag := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "dark-mode"}, Spec: v1beta1.FlagSpec{
		Type:           v1beta1.FlagTypeBoolean,
		Variants:       []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte("true")}}, {Name: "off", Value: v1beta1.JSON{Raw: []byte("false")}}},
		DefaultVariant: "off",
	}}
	if _, err := client.FlagpoleV1beta1().Flags("team").Create(t.Context(), flag, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	e, err := evaluator.New(factory, clocktesting.NewFakePassiveClock(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), e.HasSynced)

	scheme := runtime.NewScheme()
	install.Install(scheme)
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	rec := &admissionRecorder{}
	d := &DirectEvaluate{}
	d.Serve(NewEvaluateREST(e), rec, scheme, serializer.NewCodecFactory(scheme), runtime.NewEquivalentResourceRegistry(), maxBody)
	return d, rec
}

// passedOn is the handler behind the direct path: it records the body it
// was given, as the generic handler would read it.
type passedOn struct{ bodies []string }

func (p *passedOn) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil {
		b = []byte("read error: " + err.Error())
	}
	p.bodies = append(p.bodies, string(b))
	w.WriteHeader(http.StatusTeapot)
}

func evaluateRequest(path, contentType, accept, body string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resolver := &genericapirequest.RequestInfoFactory{APIPrefixes: sets.NewString("apis"), GrouplessAPIPrefixes: sets.NewString()}
	info, err := resolver.NewRequestInfo(req)
	if err != nil {
		panic(err)
	}
	ctx := genericapirequest.WithRequestInfo(req.Context(), info)
	ctx = genericapirequest.WithUser(ctx, &user.DefaultInfo{Name: "app"})
	return req.WithContext(ctx)
}

const evaluatePath = "/apis/flagpole.dev/v1beta1/namespaces/team/flags/dark-mode/evaluate"

// The direct path answers plain requests itself, through admission, and
// hands everything else to the generic handler with the body it was sent.
func TestDirectEvaluateAnswersOrPassesOn(t *testing.T) {
	d, rec := directForTest(t)
	next := &passedOn{}
	h := d.Wrap(next)

	for _, tc := range []struct {
		name, path, contentType, accept, body string
		wantStatus                            int
		wantPassed                            bool
	}{
		{name: "plain JSON", contentType: "application/json", body: `{"context":{"targetingKey":"u1"}}`, wantStatus: http.StatusCreated},
		{name: "with apiVersion and kind", contentType: "application/json", accept: "application/json, */*",
			body: `{"apiVersion":"flagpole.dev/v1beta1","kind":"EvaluationRequest","context":{}}`, wantStatus: http.StatusCreated},
		{name: "YAML", contentType: "application/yaml", accept: "application/yaml", body: "context:\n  targetingKey: u1\n", wantStatus: http.StatusCreated},
		{name: "missing flag", path: "/apis/flagpole.dev/v1beta1/namespaces/team/flags/nope/evaluate", contentType: "application/json", body: `{}`, wantStatus: http.StatusNotFound},
		{name: "invalid context", contentType: "application/json", body: `{"context":null}`, wantStatus: http.StatusUnprocessableEntity},
		{name: "refused by admission", contentType: "application/json", body: `{"explain":true}`, wantStatus: http.StatusForbidden},

		{name: "unknown field", contentType: "application/json", body: `{"contxt":{}}`, wantPassed: true},
		{name: "duplicate field", contentType: "application/json", body: `{"context":{},"context":{}}`, wantPassed: true},
		{name: "other kind", contentType: "application/json", body: `{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation"}`, wantPassed: true},
		{name: "other version", contentType: "application/json", body: `{"apiVersion":"flagpole.dev/v1","kind":"EvaluationRequest"}`, wantPassed: true},
		{name: "not JSON", contentType: "application/json", body: `{"context":`, wantPassed: true},
		{name: "unsupported content type", contentType: "text/plain", body: `{}`, wantPassed: true},
		{name: "query", path: evaluatePath + "?dryRun=All", contentType: "application/json", body: `{}`, wantPassed: true},
		{name: "Accept with parameters", contentType: "application/json", accept: "application/json;as=Table;v=v1;g=meta.k8s.io", body: `{}`, wantPassed: true},
		{name: "body over the limit", contentType: "application/json", body: `{"context":{"s":"` + strings.Repeat("a", 1<<20) + `"}}`, wantPassed: true},
		{name: "OFREP", path: "/apis/flagpole.dev/v1beta1/namespaces/team/flags", contentType: "application/json", body: `{}`, wantPassed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = evaluatePath
			}
			before := len(next.bodies)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, evaluateRequest(path, tc.contentType, tc.accept, tc.body))
			passed := len(next.bodies) > before
			if passed != tc.wantPassed {
				t.Fatalf("passed on: %v, want %v (status %d %s)", passed, tc.wantPassed, w.Code, w.Body)
			}
			if passed {
				if got := next.bodies[len(next.bodies)-1]; got != tc.body {
					t.Errorf("the generic handler read %.40q, want the body sent, %.40q", got, tc.body)
				}
				return
			}
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.wantStatus, w.Body)
			}
		})
	}
	if len(rec.mutated) == 0 || rec.mutated[0] != "flags/evaluate team/dark-mode app" {
		t.Errorf("mutating admission saw %q", rec.mutated)
	}
	if len(rec.validated) == 0 || rec.validated[0] != "flags/evaluate" {
		t.Errorf("validating admission saw %q", rec.validated)
	}

	// The answer is an EvaluationResult in the version asked for, counted
	// under the labels go-restful's route for flags/evaluate records.
	metrics.Register()
	const series = "apiserver_request_total"
	labels := map[string]string{"code": "201", "component": "apiserver", "dry_run": "", "group": "flagpole.dev", "resource": "flags",
		"scope": "resource", "subresource": "evaluate", "verb": "POST", "version": "v1beta1"}
	before := counterValue(t, series, labels)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, evaluateRequest(evaluatePath, "application/json", "", `{"context":{"targetingKey":"u1"}}`))
	if after := counterValue(t, series, labels); after != before+1 {
		t.Errorf("%s%v: %v → %v, want one more", series, labels, before, after)
	}
	var res v1beta1.EvaluationResult
	if err := json.Unmarshal(w.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if w.Header().Get("Content-Type") != "application/json" || res.APIVersion != "flagpole.dev/v1beta1" || res.Kind != "EvaluationResult" ||
		res.Key != "dark-mode" || res.Variant != "off" || res.Reason != "STATIC" {
		t.Errorf("answer %s %s", w.Header().Get("Content-Type"), w.Body)
	}
}

// counterValue reads one series of a counter from the process's registry.
func counterValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; !ok || v != l.GetValue() {
					continue series
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// A body limit of 0 is none, as upstream's: the direct path still answers.
func TestDirectEvaluateWithoutABodyLimit(t *testing.T) {
	d, _ := directWithLimit(t, 0)
	next := &passedOn{}
	w := httptest.NewRecorder()
	d.Wrap(next).ServeHTTP(w, evaluateRequest(evaluatePath, "application/json", "", `{"context":{"targetingKey":"u1"}}`))
	if len(next.bodies) != 0 || w.Code != http.StatusCreated {
		t.Errorf("passed on %d, status %d: %s", len(next.bodies), w.Code, w.Body)
	}
}
