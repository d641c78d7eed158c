package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
)

const hardeningNS = "/apis/flagpole.dev/v1beta1/namespaces/hard"

// flagJSON is a flag of type t whose single variant has the raw JSON value.
func flagJSON(name string, t v1beta1.FlagType, value string) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":%q},
		"spec":{"type":%q,"variants":[{"name":"v","value":%s}],"defaultVariant":"v"}}`, name, t, value))
}

// expect4xx fails unless code is one of want; a 5xx or a dropped connection is
// what these tests exist to catch.
func expect4xx(t *testing.T, what string, code int, body []byte, want ...int) {
	t.Helper()
	for _, w := range want {
		if code == w {
			return
		}
	}
	t.Errorf("%s: %d %s, want one of %v", what, code, truncate(body), want)
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}

// TestOutOfRangeNumbersAreRejected: numbers no float64 holds used to panic in
// the managed-fields code before validation ran; every way in is now a 4xx
// that names the field.
func TestOutOfRangeNumbersAreRejected(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	createFlag(t, s.Client, "hard", boolFlag("existing"))
	putBody := func(value string) []byte {
		cur, err := s.Client.FlagpoleV1beta1().Flags("hard").Get(ctx, "existing", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur.Spec.Type = v1beta1.FlagTypeObject
		cur.Spec.Variants = []v1beta1.Variant{{Name: "on", Value: v1beta1.JSON{Raw: []byte(`"placeholder"`)}}}
		cur.Spec.DefaultVariant = "on"
		cur.Spec.Rules = nil
		b, err := json.Marshal(cur)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(strings.Replace(string(b), `"placeholder"`, value, 1))
	}

	for _, value := range []string{`1e400`, `-1e400`, `1e309`, `{"a":1e400}`, `[1e400]`, `[1, {"b": [2, -1e400]}]`} {
		typ := v1beta1.FlagTypeObject
		if !strings.ContainsAny(value[:1], "[{") {
			typ = v1beta1.FlagTypeNumber
		}
		for _, path := range []string{"/flags", "/flags?dryRun=All"} {
			code, body := do(t, s.AdminConfig, "POST", hardeningNS+path, "application/json", flagJSON("big-number", typ, value))
			expect4xx(t, "POST "+path+" "+value, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
			if !strings.Contains(string(body), "spec.variants") {
				t.Errorf("POST %s %s: %s does not name the field", path, value, truncate(body))
			}
		}
		code, body := do(t, s.AdminConfig, "PUT", hardeningNS+"/flags/existing", "application/json", putBody(value))
		expect4xx(t, "PUT flags "+value, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
		code, body = do(t, s.AdminConfig, "PUT", hardeningNS+"/flags/existing/status", "application/json", putBody(value))
		expect4xx(t, "PUT flags/status "+value, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
		code, body = do(t, s.AdminConfig, "PATCH", hardeningNS+"/flags/existing", "application/merge-patch+json",
			[]byte(`{"spec":{"type":"Object","variants":[{"name":"on","value":`+value+`},{"name":"off","value":{}}]}}`))
		expect4xx(t, "merge patch "+value, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)

		context := []byte(`{"n":` + value + `}`)
		code, body = do(t, s.AdminConfig, "POST", hardeningNS+"/evaluations", "application/json",
			[]byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Evaluation","spec":{"context":`+string(context)+`}}`))
		expect4xx(t, "POST evaluations "+value, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
		code, body = do(t, s.AdminConfig, "POST", hardeningNS+"/flags/existing/evaluate", "application/json",
			[]byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"EvaluationRequest","context":`+string(context)+`}`))
		expect4xx(t, "POST flags/evaluate "+value, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
	}

	// Server-side apply in YAML reaches the same decoder.
	code, body := do(t, s.AdminConfig, "PATCH", hardeningNS+"/flags/applied?fieldManager=t", "application/apply-patch+yaml",
		[]byte("apiVersion: flagpole.dev/v1beta1\nkind: Flag\nmetadata:\n  name: applied\nspec:\n  type: Number\n  variants:\n  - name: v\n    value: 1e400\n"))
	expect4xx(t, "apply 1e400", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)

	// A number float64 holds is still a number.
	code, body = do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", flagJSON("fine-number", v1beta1.FlagTypeNumber, "1e300"))
	if code != http.StatusCreated {
		t.Errorf("1e300: %d %s, want 201", code, truncate(body))
	}
}

// TestStrategicMergePatchPanicsAreBadRequests: upstream's strategic merge
// patch panics on $setElementOrder for a list without a merge key.
func TestStrategicMergePatchPanicsAreBadRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	createFlag(t, s.Client, "hard", boolFlag("smp"))
	if _, err := s.Client.FlagpoleV1beta1().Segments("hard").Create(context.Background(),
		&v1beta1.Segment{ObjectMeta: metav1.ObjectMeta{Name: "smp"}, Spec: v1beta1.SegmentSpec{Include: []string{"a"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client.FlagpoleV1beta1().FlagOverrides("hard").Create(context.Background(), &v1beta1.FlagOverride{
		ObjectMeta: metav1.ObjectMeta{Name: "smp"},
		Spec:       v1beta1.FlagOverrideSpec{Flag: "smp", Variant: "on", TargetingKeys: []string{"a"}, TTL: &metav1.Duration{Duration: validation.MinOverrideTTL * 60}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for path, patch := range map[string]string{
		"/flags/smp":         `{"spec":{"$setElementOrder/variants":[{"x":1}]}}`,
		"/flags/smp/status":  `{"status":{"$setElementOrder/conditions":[{"x":1}]}}`,
		"/segments/smp":      `{"spec":{"$setElementOrder/include":[{"x":1}]}}`,
		"/flagoverrides/smp": `{"spec":{"$setElementOrder/targetingKeys":[{"x":1}]}}`,
	} {
		code, body := do(t, s.AdminConfig, "PATCH", hardeningNS+path, "application/strategic-merge-patch+json", []byte(patch))
		expect4xx(t, "SMP "+path, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
	}
}

// TestObjectsLargerThanStorageAcceptsAreInvalid: limits that each hold on
// their own used to add up to more than etcd accepts, and etcd's refusal was a 500.
func TestObjectsLargerThanStorageAcceptsAreInvalid(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	bigString := func(n int) string { return strings.Repeat("x", n) }

	for _, n := range []int{56, 100} {
		var variants []string
		for i := 0; i < n; i++ {
			variants = append(variants, fmt.Sprintf(`{"name":"v%d","value":%q}`, i, bigString(28*1024)))
		}
		body := []byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"huge"},
			"spec":{"type":"String","variants":[` + strings.Join(variants, ",") + `]}}`)
		code, out := do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", body)
		expect4xx(t, fmt.Sprintf("flag with %d variants of 28 KiB", n), code, out, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge)
		if code == http.StatusUnprocessableEntity && !strings.Contains(string(out), "spec.variants") {
			t.Errorf("%d variants: %s does not name spec.variants", n, truncate(out))
		}
	}

	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("%05d%s", i, bigString(validation.MaxTargetingKeyLength-5))
	}
	include, _ := json.Marshal(keys)
	body := []byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Segment","metadata":{"name":"huge"},"spec":{"include":` + string(include) + `}}`)
	code, out := do(t, s.AdminConfig, "POST", hardeningNS+"/segments", "application/json", body)
	expect4xx(t, "segment with 10,000 keys of 256 bytes", code, out, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge)

	// An object at the published limits is stored.
	var variants []string
	per := validation.MaxVariantValuesBytes / validation.MaxVariants
	for i := 0; i < validation.MaxVariants; i++ {
		variants = append(variants, fmt.Sprintf(`{"name":"v%d","value":%q}`, i, bigString(per-2)))
	}
	body = []byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Flag","metadata":{"name":"at-limit"},
		"spec":{"type":"String","variants":[` + strings.Join(variants, ",") + `]}}`)
	code, out = do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", body)
	if code != http.StatusCreated {
		t.Errorf("flag at the published limits: %d %s, want 201", code, truncate(out))
	}
}

// TestMalformedResourceVersionsAreClientErrors: kube-apiserver answers 500 to
// these; Flagpole answers 4xx.
func TestMalformedResourceVersionsAreClientErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	createFlag(t, s.Client, "hard", boolFlag("rv"))

	withRV := func(name, rv string) []byte {
		b := flagJSON(name, v1beta1.FlagTypeBoolean, "true")
		return []byte(strings.Replace(string(b), `"metadata":{`, `"metadata":{"resourceVersion":"`+rv+`",`, 1))
	}
	code, body := do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", withRV("rv-create", "5"))
	expect4xx(t, "create with resourceVersion", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
	if !strings.Contains(string(body), "metadata.resourceVersion") {
		t.Errorf("create with resourceVersion: %s does not name metadata.resourceVersion", truncate(body))
	}
	for path, rvBody := range map[string][]byte{
		"/flags/rv":        withRV("rv", "abc"),
		"/flags/rv/status": withRV("rv", "abc"),
	} {
		code, body = do(t, s.AdminConfig, "PUT", hardeningNS+path, "application/json", rvBody)
		expect4xx(t, "PUT "+path+" resourceVersion abc", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusConflict)
	}
	code, body = do(t, s.AdminConfig, "PUT", hardeningNS+"/segments/nope", "application/json",
		[]byte(`{"apiVersion":"flagpole.dev/v1beta1","kind":"Segment","metadata":{"name":"nope","resourceVersion":"abc"},"spec":{}}`))
	expect4xx(t, "PUT segment resourceVersion abc", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusNotFound, http.StatusConflict)

	for _, resource := range []string{"flags", "segments", "flagoverrides"} {
		for _, query := range []string{"?watch=true&resourceVersion=abc", "?resourceVersion=abc", "?resourceVersion=abc&resourceVersionMatch=Exact",
			"?resourceVersion=abc&resourceVersionMatch=NotOlderThan", "?watch=true&resourceVersion=abc&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"} {
			code, body = do(t, s.AdminConfig, "GET", hardeningNS+"/"+resource+query, "", nil)
			expect4xx(t, resource+query, code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
		}
	}
	code, body = do(t, s.AdminConfig, "GET", hardeningNS+"/flags/rv?resourceVersion=abc", "", nil)
	expect4xx(t, "GET flag resourceVersion=abc", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)

	code, body = do(t, s.AdminConfig, "PATCH", hardeningNS+"/flags/rv?fieldManager=t", "application/apply-patch+yaml",
		[]byte("apiVersion: flagpole.dev/v1beta1\nkind: Flag\nmetadata:\n  name: rv\nspec:\n  type: Boolean\n  colour: red\n"))
	expect4xx(t, "apply with an unknown field", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
	if !strings.Contains(string(body), "colour") {
		t.Errorf("apply with an unknown field: %s does not name it", truncate(body))
	}
	// An unquoted YAML on is a boolean where a string belongs.
	code, body = do(t, s.AdminConfig, "PATCH", hardeningNS+"/flags/rv?fieldManager=t", "application/apply-patch+yaml",
		[]byte("apiVersion: flagpole.dev/v1beta1\nkind: Flag\nmetadata:\n  name: rv\nspec:\n  type: Boolean\n  defaultVariant: on\n"))
	expect4xx(t, "apply with a boolean for a string", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
}

// TestDeepValuesAreInvalid: nesting beyond flagpole.MaxJSONDepth is a 422
// with the field path.
func TestDeepValuesAreInvalid(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	nest := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }

	code, body := do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", flagJSON("deep", v1beta1.FlagTypeObject, nest(flagpole.MaxJSONDepth+1)))
	expect4xx(t, "variant value nested one level too deep", code, body, http.StatusUnprocessableEntity)
	if !strings.Contains(string(body), "spec.variants[0].value") {
		t.Errorf("deep value: %s does not name spec.variants[0].value", truncate(body))
	}
	code, body = do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", flagJSON("deep", v1beta1.FlagTypeObject, nest(9990)))
	expect4xx(t, "variant value nested 9,990 levels", code, body, http.StatusBadRequest, http.StatusUnprocessableEntity)
	code, body = do(t, s.AdminConfig, "POST", hardeningNS+"/flags", "application/json", flagJSON("deep", v1beta1.FlagTypeObject, nest(flagpole.MaxJSONDepth)))
	if code != http.StatusCreated {
		t.Errorf("a value at the depth limit: %d %s, want 201", code, truncate(body))
	}
}

// TestStatusWritesKeepMetadata: labels decide what a bulk evaluation selects,
// so a status writer must not change them (nor annotations or finalizers).
func TestStatusWritesKeepMetadata(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	flags := s.Client.FlagpoleV1beta1().Flags("hard")
	createFlag(t, s.Client, "hard", boolFlag("labelled"))

	var after *v1beta1.Flag
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := flags.Get(ctx, "labelled", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Labels = map[string]string{"team": "attacker"}
		cur.Annotations = map[string]string{"written-by": "status"}
		cur.Finalizers = []string{"flagpole.dev/stuck"}
		after, err = flags.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if after.Labels["team"] != "checkout" || after.Annotations != nil || after.Finalizers != nil {
		t.Errorf("flags/status changed metadata: labels=%v annotations=%v finalizers=%v", after.Labels, after.Annotations, after.Finalizers)
	}

	code, body := do(t, s.AdminConfig, "PATCH", hardeningNS+"/flags/labelled/status", "application/merge-patch+json",
		[]byte(`{"metadata":{"labels":{"team":"attacker"}}}`))
	if code != http.StatusOK {
		t.Fatalf("merge patch of flags/status: %d %s", code, truncate(body))
	}
	got, err := flags.Get(ctx, "labelled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["team"] != "checkout" {
		t.Errorf("a patch of flags/status changed labels to %v", got.Labels)
	}
}
