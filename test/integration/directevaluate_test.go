package integration

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/apiserver"
)

type answer struct {
	status                     int
	contentType, warning, body string
}

func post(t *testing.T, cfg *rest.Config, path string, body []byte, header ...string) answer {
	t.Helper()
	resp, out := doRequest(t, cfg, http.MethodPost, path, body, header...)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), strings.Join(resp.Header.Values("Warning"), " | "), string(out)}
}

// flags/evaluate answers the same whichever handler serves it. A request
// with a query goes to the generic create handler (fieldValidation=Warn is
// the default, so it changes nothing else); the same request without one is
// answered by the direct path when it can be (pkg/registry/flagpole/
// evaluations, DirectEvaluate). Status, media type, warnings and the body,
// to the byte, must be the same.
func TestDirectEvaluateAnswersAsTheGenericHandler(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, auditLog := filepath.Join(dir, "audit-policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, "--audit-policy-file", policy, "--audit-log-path", auditLog, "--audit-log-mode", "blocking")
	const ns = "direct"
	f := boolFlag("checkout")
	f.Spec.Rules[0].Segments = nil
	createFlag(t, s.Client, ns, f)
	evaluate(t, s, ns, "checkout", map[string]any{}) // the evaluator has seen it

	protobuf := func(obj runtime.Object) []byte {
		info, ok := runtime.SerializerInfoForMediaType(apiserver.Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
		if !ok {
			t.Fatal("no protobuf serializer")
		}
		var b bytes.Buffer
		if err := apiserver.Codecs.EncoderForVersion(info.Serializer, v1beta1.SchemeGroupVersion).Encode(obj, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	const jsonType = "application/json"
	path := "/apis/flagpole.dev/v1beta1/namespaces/" + ns + "/flags/checkout/evaluate"
	for _, tc := range []struct {
		name   string
		path   string
		body   []byte
		header []string
		status int
	}{
		{name: "static answer", body: []byte(`{"context":{"targetingKey":"u1"}}`), status: 201},
		{name: "rule and explanation", body: []byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"EvaluationRequest","context":{"plan":"enterprise"},"explain":true}`), status: 201},
		{name: "rollout", body: []byte(`{"context":{"targetingKey":"user-42"}}`), status: 201},
		{name: "type mismatch", body: []byte(`{"type":"String"}`), status: 201},
		{name: "unsupported type", body: []byte(`{"type":"Nope"}`), status: 422},
		{name: "null context", body: []byte(`{"context":null}`), status: 422},
		{name: "missing flag", path: "/apis/flagpole.dev/v1beta1/namespaces/" + ns + "/flags/nope/evaluate", body: []byte(`{}`), status: 404},
		{name: "YAML", body: []byte("context:\n  targetingKey: u1\n"), header: []string{"Content-Type", "application/yaml", "Accept", "application/yaml"}, status: 201},
		{name: "protobuf", body: protobuf(&v1beta1.EvaluationRequest{Context: raw(map[string]any{"targetingKey": "u1"})}),
			header: []string{"Content-Type", runtime.ContentTypeProtobuf, "Accept", runtime.ContentTypeProtobuf}, status: 201},
		{name: "curl pretty-prints", body: []byte(`{}`), header: []string{"User-Agent", "curl/8.5.0", "Accept", "*/*"}, status: 201},
		{name: "unknown field warns", body: []byte(`{"contxt":{}}`), status: 201},
		{name: "duplicate field warns", body: []byte(`{"type":"Boolean","type":"Boolean"}`), status: 201},
		{name: "another kind", body: []byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation"}`), status: 400},
		{name: "not JSON", body: []byte(`{"context":`), status: 400},
		{name: "unsupported media type", body: []byte(`{}`), header: []string{"Content-Type", "text/plain"}, status: 415},
		{name: "not acceptable", body: []byte(`{}`), header: []string{"Accept", "text/html"}, status: 406},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.path
			if p == "" {
				p = path
			}
			header := append([]string{"Content-Type", jsonType}, tc.header...)
			direct := post(t, s.AdminConfig, p, tc.body, header...)
			generic := post(t, s.AdminConfig, p+"?fieldValidation=Warn", tc.body, header...)
			if direct.status != tc.status {
				t.Errorf("status %d, want %d: %s", direct.status, tc.status, direct.body)
			}
			if direct != generic {
				t.Errorf("answers differ:\ndirect  %d %s %q\n%s\ngeneric %d %s %q\n%s", direct.status, direct.contentType, direct.warning, direct.body,
					generic.status, generic.contentType, generic.warning, generic.body)
			}
		})
	}

	// Both audit the same event: the request and response objects, the
	// status, the object reference, the user.
	events := evaluateEvents(t, auditLog, path)
	if len(events) != 2 {
		t.Fatalf("audit events of the static answer: %d, want 2", len(events))
	}
	for i := range events {
		events[i].AuditID, events[i].RequestURI = "", ""
		events[i].RequestReceivedTimestamp, events[i].StageTimestamp = metav1.MicroTime{}, metav1.MicroTime{}
		events[i].Annotations = nil // latency annotations
	}
	if d := cmp.Diff(events[0], events[1]); d != "" {
		t.Errorf("audit events differ (-direct +generic):\n%s", d)
	}
	if events[0].RequestObject == nil || events[0].ResponseObject == nil || events[0].ObjectRef.Subresource != "evaluate" || events[0].ResponseStatus.Code != 201 {
		t.Errorf("audit event: %+v", events[0])
	}
}

// evaluateEvents reads the ResponseComplete audit events of the first
// request to path, the direct one and then the generic one.
func evaluateEvents(t *testing.T, auditLog, path string) []auditv1.Event {
	t.Helper()
	var out []auditv1.Event
	for _, ev := range auditEvents(t, auditLog) {
		if ev.Stage == auditv1.StageResponseComplete && strings.TrimSuffix(ev.RequestURI, "?fieldValidation=Warn") == path &&
			ev.RequestObject != nil && strings.Contains(string(ev.RequestObject.Raw), `"u1"`) && len(out) < 2 {
			out = append(out, ev)
		}
	}
	return out
}
