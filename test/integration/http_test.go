package integration

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/standalone"
)

func do(t *testing.T, cfg *rest.Config, method, path, contentType string, body []byte, header ...string) (int, []byte) {
	t.Helper()
	if contentType != "" {
		header = append([]string{"Content-Type", contentType}, header...)
	}
	resp, out := doRequest(t, cfg, method, path, body, header...)
	return resp.StatusCode, out
}

// doRequest sends one request with the given headers (name, value, ...)
// and returns the response, its body read.
func doRequest(t *testing.T, cfg *rest.Config, method, path string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, cfg.Host+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

func TestFieldSelectors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	flags := s.Client.FlagpoleV1beta1().Flags("fields")

	w, err := flags.Watch(ctx, metav1.ListOptions{FieldSelector: "spec.state=Disabled"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	on := boolFlag("on-flag")
	off := boolFlag("off-flag")
	off.Spec.State = v1beta1.FlagStateDisabled
	str := boolFlag("string-flag")
	str.Spec.Type = v1beta1.FlagTypeString
	str.Spec.Variants = []v1beta1.Variant{{Name: "on", Value: raw("yes")}, {Name: "off", Value: raw("no")}}
	for _, f := range []*v1beta1.Flag{on, off, str} {
		if _, err := flags.Create(ctx, f, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	for selector, want := range map[string]string{
		"spec.state=Disabled":                  "off-flag",
		"spec.type=String":                     "string-flag",
		"spec.type=Boolean,spec.state=Enabled": "on-flag",
		"metadata.name=string-flag":            "string-flag",
	} {
		list, err := flags.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			t.Fatalf("%s: %v", selector, err)
		}
		if len(list.Items) != 1 || list.Items[0].Name != want {
			t.Errorf("%s: got %d items %v, want only %s", selector, len(list.Items), list.Items, want)
		}
	}

	// The watch saw only the disabled flag; flipping the kill switch on
	// another flag brings it into the selection.
	expectEvent(t, ctx, w, watch.Added, "off-flag")
	if _, err := flags.Patch(ctx, "on-flag", types.MergePatchType, []byte(`{"spec":{"state":"Disabled"}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	expectEvent(t, ctx, w, watch.Added, "on-flag")

	_, err = flags.List(ctx, metav1.ListOptions{FieldSelector: "spec.owner=x"})
	if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), "spec.state") {
		t.Errorf("unsupported field selector: %v, want 400 naming the supported fields", err)
	}
}

// expectEvent reads the watch until typ for name arrives. Other events (the
// status controller's MODIFIED) may come between, but never one for a flag
// outside the selection.
func expectEvent(t *testing.T, ctx context.Context, w watch.Interface, typ watch.EventType, name string) {
	t.Helper()
	for {
		select {
		case ev, open := <-w.ResultChan():
			if !open {
				t.Fatalf("watch closed before %s for %s", typ, name)
			}
			f, ok := ev.Object.(*v1beta1.Flag)
			if !ok {
				t.Fatalf("event %s %v", ev.Type, ev.Object)
			}
			if f.Spec.State != v1beta1.FlagStateDisabled {
				t.Fatalf("the spec.state=Disabled watch delivered %s for %s in state %s", ev.Type, f.Name, f.Spec.State)
			}
			if ev.Type == typ && f.Name == name {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s event for %s", typ, name)
		}
	}
}

func TestTableOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	if _, err := s.Client.FlagpoleV1beta1().Flags("table").Create(context.Background(), boolFlag("new-checkout"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s.AdminConfig, "GET", "/apis/flagpole.dev/v1beta1/namespaces/table/flags", "", nil,
		"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	if code != http.StatusOK {
		t.Fatalf("%d: %s", code, body)
	}
	var table metav1.Table
	if err := json.Unmarshal(body, &table); err != nil {
		t.Fatal(err)
	}
	if table.Kind != "Table" {
		t.Fatalf("kind = %s", table.Kind)
	}
	var cols []string
	for _, c := range table.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if got := strings.Join(cols, ","); got != "Name,Type,State,Default,Rules,Last-Evaluated,Stale,Age,Lifecycle,Evaluations-24h,Owner,Description" {
		t.Errorf("columns = %s", got)
	}
	if len(table.Rows) != 1 {
		t.Fatalf("rows = %d", len(table.Rows))
	}
	cells := table.Rows[0].Cells
	if cells[0] != "new-checkout" || cells[1] != "Boolean" || cells[2] != "Enabled" || cells[3] != "off" || cells[4] != float64(2) {
		t.Errorf("cells = %v", cells)
	}
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	code, body := do(t, s.AdminConfig, "GET", "/openapi/v3/apis/flagpole.dev/v1beta1", "", nil)
	if code != http.StatusOK {
		t.Fatalf("openapi v3: %d", code)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"dev.flagpole.v1beta1.Flag", "dev.flagpole.v1beta1.FlagSpec", "dev.flagpole.v1beta1.Segment", "dev.flagpole.v1beta1.Rule"} {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("OpenAPI v3 lacks %s", name)
		}
	}
	spec := doc.Components.Schemas["dev.flagpole.v1beta1.FlagSpec"].Properties
	if spec["variants"]["x-kubernetes-list-type"] != "map" || spec["rules"]["x-kubernetes-list-type"] != "atomic" {
		t.Errorf("list types: variants=%v rules=%v", spec["variants"]["x-kubernetes-list-type"], spec["rules"]["x-kubernetes-list-type"])
	}

	code, body = do(t, s.AdminConfig, "GET", "/openapi/v2", "", nil, "Accept", "application/json")
	if code != http.StatusOK || !bytes.Contains(body, []byte("dev.flagpole.v1beta1.Flag")) {
		t.Errorf("openapi v2: %d, Flag present: %v", code, bytes.Contains(body, []byte("dev.flagpole.v1beta1.Flag")))
	}
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	// What kubectl sends for YAML `name: on` / `defaultVariant: off`.
	body := []byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"yaml"},
		"spec":{"type":"String","variants":[{"name":true,"value":"a"},{"name":"b","value":true}],"defaultVariant":false}}`)
	code, out := do(t, s.AdminConfig, "POST", "/apis/flagpole.dev/v1beta1/namespaces/v/flags", "application/json", body)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422: %s", code, out)
	}
	var status metav1.Status
	if err := json.Unmarshal(out, &status); err != nil {
		t.Fatal(err)
	}
	causes := map[string]string{}
	for _, c := range status.Details.Causes {
		causes[c.Field] = c.Message
	}
	for _, field := range []string{"spec.variants[0].name", "spec.variants[1].value", "spec.defaultVariant"} {
		if !strings.Contains(causes[field], "quote the value") {
			t.Errorf("%s: %q lacks the quoting hint", field, causes[field])
		}
	}

	// A malformed body is a 400, never a 500.
	code, _ = do(t, s.AdminConfig, "POST", "/apis/flagpole.dev/v1beta1/namespaces/v/flags", "application/json", []byte(`{"kind":`))
	if code != http.StatusBadRequest {
		t.Errorf("malformed body: %d, want 400", code)
	}
	// Unknown fields are rejected under strict field validation.
	code, out = do(t, s.AdminConfig, "POST", "/apis/flagpole.dev/v1beta1/namespaces/v/flags?fieldValidation=Strict", "application/json",
		[]byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"x"},"spec":{"type":"Boolean","variantz":[]}}`))
	if code != http.StatusBadRequest || !bytes.Contains(out, []byte("variantz")) {
		t.Errorf("unknown field: %d %s, want 400 naming it", code, out)
	}
	if _, err := s.Client.FlagpoleV1beta1().Flags("v").Get(context.Background(), "yaml", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("rejected flag was stored: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	path := "/apis/flagpole.dev/v1beta1/namespaces/default/flags"

	caPEM, err := os.ReadFile(standalone.Layout{DataDir: s.DataDir}.PKI().CACertFile())
	if err != nil {
		t.Fatal(err)
	}
	anonymous := &rest.Config{Host: s.AdminConfig.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}}
	if code, _ := do(t, anonymous, "GET", path, "", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", code)
	}

	// Another certificate from the same CA authenticates but is not the admin.
	pki, err := standalone.EnsurePKI(standalone.Layout{DataDir: s.DataDir}.PKI().Dir, []string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := pki.Issue(x509.ExtKeyUsageClientAuth, pkix.Name{CommonName: "dev", Organization: []string{"developers"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	developer := &rest.Config{Host: s.AdminConfig.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertData: certPEM, KeyData: keyPEM}}
	code, body := do(t, developer, "GET", path, "", nil)
	if code != http.StatusForbidden || !bytes.Contains(body, []byte(`User \"dev\" cannot list resource \"flags\"`)) {
		t.Errorf("non-admin: %d %s, want 403", code, body)
	}

	// A certificate from a foreign CA is not trusted at all.
	foreign, err := standalone.EnsurePKI(t.TempDir(), []string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	foreignAdmin := &rest.Config{Host: s.AdminConfig.Host, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM, CertFile: foreign.AdminCertFile(), KeyFile: foreign.AdminKeyFile()}}
	if code, _ := do(t, foreignAdmin, "GET", path, "", nil); code != http.StatusUnauthorized {
		t.Errorf("admin certificate of a foreign CA: %d, want 401", code)
	}

	if code, _ := do(t, s.AdminConfig, "GET", path, "", nil); code != http.StatusOK {
		t.Errorf("admin: %d, want 200", code)
	}
}

func TestReadyzChecksStorage(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	code, body := do(t, s.AdminConfig, "GET", "/readyz?verbose", "", nil)
	if code != http.StatusOK {
		t.Fatalf("readyz: %d %s", code, body)
	}
	for _, check := range []string{"[+]etcd-readiness ok", "[+]poststarthook/storage-readiness ok"} {
		if !bytes.Contains(body, []byte(check)) {
			t.Errorf("readyz lacks %q:\n%s", check, body)
		}
	}
}
