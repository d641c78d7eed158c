package integration

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	flagpoleapiserver "github.com/flagpole-dev/flagpole/pkg/apiserver"
	"github.com/flagpole-dev/flagpole/pkg/generated/clientset/versioned/scheme"
)

// The storage upgrade: objects a server wrote as JSON (as every version
// before protobuf storage did) are read, listed, watched and updated by a
// server storing protobuf; an update rewrites the key as protobuf, an object
// nobody writes stays JSON, and an update that changes nothing (what
// `kubectl replace` of an unchanged object sends) rewrites it too.
func TestProtobufStorageUpgradeFromJSON(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "upgrade"

	old := startServerIn(t, dir, "--storage-media-type", "application/json")
	fp := old.Client.FlagpoleV1beta1()
	names := []string{"rewritten", "replaced", "untouched"}
	if _, err := fp.Segments(ns).Create(ctx, &v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "employees"}, Spec: v1beta1.SegmentSpec{Include: []string{"u1"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := map[string]*v1beta1.Flag{}
	for _, name := range names {
		f := boolFlag(name)
		f.Spec.Variants[0].Value = raw(map[string]any{"enabled": true, "limits": []any{1, 2.5, "x", nil}})
		f.Spec.Type = v1beta1.FlagTypeObject
		f.Spec.Variants[1].Value = raw(map[string]any{})
		createFlag(t, old.Client, ns, f)
		before[name] = waitFlag(t, old.Client, ns, name, "ready", func(f *v1beta1.Flag) bool {
			return len(f.Status.Conditions) == 2 && f.Status.Conditions[0].Status == metav1.ConditionTrue
		})
	}
	override, err := fp.FlagOverrides(ns).Create(ctx, &v1beta1.FlagOverride{ObjectMeta: metav1.ObjectMeta{Name: "force"}, Spec: v1beta1.FlagOverrideSpec{Flag: "untouched", Variant: "on", TargetingKeys: []string{"u7"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// What the JSON-storing server wrote is exactly what Flagpole wrote
	// before protobuf: the v1beta1 JSON of the legacy codec.
	cli := etcdSocketClient(t, dir)
	legacy := flagpoleapiserver.Codecs.LegacyCodec(v1beta1.SchemeGroupVersion)
	for _, name := range names {
		v, key := storedValue(t, cli, "flags", ns, name)
		obj, err := runtime.Decode(legacy, v)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		again, err := runtime.Encode(legacy, obj)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(v, []byte(`{"kind":"Flag"`)) || !bytes.Equal(v, again) {
			t.Fatalf("%s holds %q, not the legacy JSON encoding %q", key, v, again)
		}
	}
	if v, _ := storedValue(t, cli, "flagoverrides", ns, "force"); v[0] != '{' {
		t.Fatalf("override stored as %q", v)
	}
	old.Stop(t)

	s := startServerIn(t, dir)
	cli = etcdSocketClient(t, dir)
	fp = s.Client.FlagpoleV1beta1()
	list, err := fp.Flags(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != len(names) {
		t.Fatalf("listed %d flags, want %d", len(list.Items), len(names))
	}
	for _, got := range list.Items {
		want := before[got.Name]
		if got.UID != want.UID || got.ResourceVersion != want.ResourceVersion || string(got.Spec.Variants[0].Value.Raw) != `{"enabled":true,"limits":[1,2.5,"x",null]}` ||
			got.Spec.Rules[1].Rollout.Distribution[0].Weight != 10 || len(got.Status.Conditions) != 2 {
			t.Errorf("%s after the upgrade: %+v, want %+v", got.Name, got, want)
		}
	}
	if o, err := fp.FlagOverrides(ns).Get(ctx, "force", metav1.GetOptions{}); err != nil || !o.Status.ExpiresAt.Equal(override.Status.ExpiresAt) {
		t.Errorf("override after the upgrade: %+v %v", o, err)
	}
	if res := evaluate(t, s, ns, "untouched", map[string]any{"targetingKey": "u7"}); res.Metadata.Override != "force" {
		t.Errorf("the JSON-stored override does not decide: %+v", res.FlagEvaluation)
	}

	w, err := fp.Flags(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	f, err := fp.Flags(ns).Get(ctx, "rewritten", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Spec.Owner = "team-upgraded"
	if _, err := fp.Flags(ns).Update(ctx, f, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expectWatched(t, ctx, w, watch.Modified, "rewritten")
	// An update that changes nothing, as `kubectl replace` of the object as
	// read sends: no new generation, yet the key is rewritten in protobuf.
	r, err := fp.Flags(ns).Get(ctx, "replaced", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := fp.Flags(ns).Update(ctx, r, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if replaced.Generation != r.Generation {
		t.Errorf("an unchanged update bumped the generation %d → %d", r.Generation, replaced.Generation)
	}
	f = waitFlag(t, s.Client, ns, "rewritten", "owner kept", func(f *v1beta1.Flag) bool { return f.Spec.Owner == "team-upgraded" })
	if string(f.Spec.Variants[0].Value.Raw) != `{"enabled":true,"limits":[1,2.5,"x",null]}` {
		t.Errorf("value after the rewrite: %s", f.Spec.Variants[0].Value.Raw)
	}

	for name, wantProtobuf := range map[string]bool{"rewritten": true, "replaced": true, "untouched": false} {
		v, key := storedValue(t, cli, "flags", ns, name)
		if got := bytes.HasPrefix(v, protobufMagic); got != wantProtobuf {
			t.Errorf("%s: protobuf %v, want %v: %q", key, got, wantProtobuf, v[:min(len(v), 40)])
		}
	}
	if v, _ := storedValue(t, cli, "segments", ns, "employees"); v[0] != '{' {
		t.Errorf("an untouched segment was rewritten: %q", v[:min(len(v), 40)])
	}
	// Both encodings side by side are listed alike.
	list, err = fp.Flags(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != len(names) {
		t.Fatalf("list after the rewrite: %v %v", list, err)
	}
	// An empty merge patch of a JSON-stored flag rewrites it as protobuf too.
	if _, err := fp.Flags(ns).Patch(ctx, "untouched", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if v, _ := storedValue(t, cli, "flags", ns, "untouched"); !bytes.HasPrefix(v, protobufMagic) {
		t.Errorf("a patched flag is still stored as %q", v[:min(len(v), 40)])
	}
}

// protobufBody is the protobuf request body for obj, as a client encodes it.
func protobufBody(t *testing.T, obj runtime.Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	encoder := scheme.Codecs.EncoderForVersion(protobuf.NewSerializer(scheme.Scheme, scheme.Scheme), v1beta1.SchemeGroupVersion)
	if err := encoder.Encode(obj, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A protobuf body is no way around the checks a JSON body gets: a JSON value
// whose raw bytes are no JSON, hold a number no float64 holds, or nest too
// deep is refused with a 400 (decoding) or a 422 naming the field, on every
// endpoint taking one, and nothing is stored.
func TestProtobufBodiesCannotSmuggleJSONValues(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const ns = "smuggle"
	createFlag(t, s.Client, ns, boolFlag("f"))
	base := "/apis/flagpole.dev/v1beta1/namespaces/" + ns

	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for name, tc := range map[string]struct {
		raw   string
		codes []int
		field string
	}{
		"not JSON":         {`{"a":`, []int{http.StatusBadRequest}, ""},
		"trailing garbage": {`true false`, []int{http.StatusBadRequest}, ""},
		"number 1e400":     {`{"n":1e400}`, []int{http.StatusBadRequest}, ""},
		"33 levels":        {deep(33), []int{http.StatusUnprocessableEntity}, ""},
		"10001 levels":     {deep(10001), []int{http.StatusBadRequest}, ""},
	} {
		// Variant values: create and update.
		f := boolFlag("smuggled")
		f.Spec.Type = v1beta1.FlagTypeObject
		f.Spec.Variants[0].Value = v1beta1.JSON{Raw: []byte(tc.raw)}
		f.Spec.Variants[1].Value = raw(map[string]any{})
		f.Spec.Rules = nil
		code, body := do(t, s.AdminConfig, http.MethodPost, base+"/flags", runtime.ContentTypeProtobuf, protobufBody(t, f), "Accept", "application/json")
		checkRefused(t, name+": create", code, body, tc.codes, "spec.variants[0].value")
		if code, _ := do(t, s.AdminConfig, http.MethodGet, base+"/flags/smuggled", "", nil); code != http.StatusNotFound {
			t.Errorf("%s: the flag was stored (%d)", name, code)
		}

		existing, err := s.Client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "f", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		existing.Spec.Type = v1beta1.FlagTypeObject
		existing.Spec.Variants[0].Value = v1beta1.JSON{Raw: []byte(tc.raw)}
		existing.Spec.Variants[1].Value = raw(map[string]any{})
		code, body = do(t, s.AdminConfig, http.MethodPut, base+"/flags/f", runtime.ContentTypeProtobuf, protobufBody(t, existing), "Accept", "application/json")
		checkRefused(t, name+": update", code, body, tc.codes, "spec.variants[0].value")

		// Evaluation contexts.
		req := &v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":"u","x":` + tc.raw + `}`)}}
		code, body = do(t, s.AdminConfig, http.MethodPost, base+"/flags/f/evaluate", runtime.ContentTypeProtobuf, protobufBody(t, req), "Accept", "application/json")
		checkRefused(t, name+": evaluate", code, body, tc.codes, "context")
		bulk := &v1beta1.Evaluation{Spec: v1beta1.EvaluationSpec{Context: v1beta1.JSON{Raw: []byte(`{"targetingKey":"u","x":` + tc.raw + `}`)}}}
		code, body = do(t, s.AdminConfig, http.MethodPost, base+"/evaluations", runtime.ContentTypeProtobuf, protobufBody(t, bulk), "Accept", "application/json")
		checkRefused(t, name+": evaluations", code, body, tc.codes, "spec.context")
	}
	f, err := s.Client.FlagpoleV1beta1().Flags(ns).Get(context.Background(), "f", metav1.GetOptions{})
	if err != nil || f.Spec.Type != v1beta1.FlagTypeBoolean || string(f.Spec.Variants[0].Value.Raw) != "true" {
		t.Errorf("the flag changed: %+v %v", f, err)
	}
}

// checkRefused: a 400, or a 422 naming the field.
func checkRefused(t *testing.T, what string, code int, body []byte, codes []int, field string) {
	t.Helper()
	for _, c := range codes {
		if code != c {
			continue
		}
		if code == http.StatusUnprocessableEntity && !strings.Contains(string(body), field) {
			t.Errorf("%s: 422 does not name %s: %s", what, field, body)
		}
		return
	}
	t.Errorf("%s: %d %s, want one of %v", what, code, body[:min(len(body), 300)], codes)
}
