package pluginsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/flagd/answers"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/exit"
	"github.com/flagpole-dev/flagpole/pkg/kubectlplugin/manifest"
)

// flagdFiles are pkg/flagd's flag files (the flagd testbed's, and ours with
// every operator), with the answers flagd gives for them.
var flagdFiles = []struct{ flags, cases string }{
	{"testbed.flagd.json", "testbed-expected.json"},
	{"operators.flagd.json", "operators-expected.json"},
}

func testdata(env Env, name string) string {
	return filepath.Join(env.RepoRoot, "pkg", "flagd", "testdata", name)
}

// runImports imports pkg/flagd's flag files through the plugin into the
// server — as flagd files (fractional v2), and as OpenFeature Operator
// FeatureFlags on standard input (fractional v1) — and checks the server
// answers every recorded context as flagd does; then FeatureFlags from the
// cluster, refusals, export and the manifest of what was imported.
func runImports(t *testing.T, env Env, admin Plugin) {
	ctx := context.Background()
	v2, v1 := env.Namespaces[1], env.Namespaces[2]
	var files []string
	for _, f := range flagdFiles {
		files = append(files, testdata(env, f.flags))
	}

	// --dry-run sends nothing and prints the objects, which kubectl can apply.
	dry := admin.Run(t, "", append([]string{"import", "flagd", "--dry-run", "-n", v2}, files...)...)
	if dry.Code != exit.OK || !strings.HasPrefix(dry.Stdout, "apiVersion: v1\nitems:\n") || !strings.Contains(dry.Stdout, "kind: Flag\n") {
		t.Fatalf("import --dry-run: exit %d\n%.2000s%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	if !strings.Contains(dry.Stderr, "note: fractional: assumed flagd's fractional-v2 bucketing") {
		t.Errorf("the import does not say which fractional bucketing it assumed:\n%s", dry.Stderr)
	}
	if list, err := env.Client.FlagpoleV1beta1().Flags(v2).List(ctx, metav1.ListOptions{}); err != nil || len(list.Items) != 0 {
		t.Fatalf("--dry-run stored flags: %v %d", err, len(list.Items))
	}

	out := admin.Must(t, append([]string{"import", "flagd", "-n", v2}, files...)...)
	if !strings.Contains(out, "flag.flagpole.dev/new-welcome-banner serverside-applied") || !strings.Contains(out, "segment.flagpole.dev/") {
		t.Errorf("import:\n%s", out)
	}
	// Applying again changes nothing and succeeds (server-side apply).
	admin.Must(t, append([]string{"import", "flagd", "-n", v2}, files...)...)
	// Standard input reads as the file does.
	one, err := os.ReadFile(files[1])
	if err != nil {
		t.Fatal(err)
	}
	fromFile := admin.Must(t, "import", "flagd", files[1], "--dry-run", "-n", v2)
	if fromStdin := admin.Run(t, string(one), "import", "flagd", "-", "--dry-run", "-n", v2); fromStdin.Stdout != fromFile {
		t.Errorf("import flagd - differs from the file: exit %d %s", fromStdin.Code, fromStdin.Stderr)
	}
	// The same documents as OpenFeature Operator FeatureFlags on standard
	// input, assuming fractional-v1.
	ff := featureFlags(t, files)
	res := admin.Run(t, string(ff), "import", "featureflags", "-", "--fractional", "v1", "-n", v1)
	if res.Code != exit.OK || !strings.Contains(res.Stderr, "fractional-v1") {
		t.Fatalf("import featureflags - --fractional v1: exit %d\n%s%s", res.Code, res.Stdout, res.Stderr)
	}

	// Both answer every recorded context as flagd does.
	n := 0
	for _, f := range flagdFiles {
		cases, err := answers.Load(testdata(env, f.cases))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			for _, target := range []struct{ ns, frac string }{{v2, "v2"}, {v1, "v1"}} {
				if c.Fractional == "" || c.Fractional == target.frac {
					checkAnswer(t, env, target.ns, c)
					n++
				}
			}
		}
	}
	t.Logf("%d recorded flagd answers checked against the server", n)

	ffPath := filepath.Join(t.TempDir(), "featureflags.yaml")
	if err := os.WriteFile(ffPath, ff, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := admin.Run(t, "", "import", "featureflags", ffPath, "--dry-run=server", "-n", v2); res.Code != exit.OK || !strings.Contains(res.Stdout, "serverside-applied (server dry run)") {
		t.Errorf("import featureflags FILE --dry-run=server: exit %d\n%.1000s%s", res.Code, res.Stdout, res.Stderr)
	}
	// From the cluster: FeatureFlags where the OpenFeature Operator's CRD
	// is installed, else a clear refusal.
	if env.ClusterFeatureFlags != "" {
		out := admin.Must(t, "import", "featureflags", "--dry-run", "-n", env.ClusterFeatureFlags)
		if !strings.Contains(out, "kind: Flag") {
			t.Errorf("import featureflags from the cluster:\n%s", out)
		}
	} else {
		admin.Fails(t, exit.NotFound, []string{"import", "featureflags", "-n", v2}, "the cluster serves no featureflags.core.openfeature.dev", "hint: is the OpenFeature Operator installed?")
	}

	// What cannot be translated is refused with its JSON path; nothing is applied.
	bad := `{"flags": {"refused-flag": {"state": "ENABLED", "variants": {"a": 1, "b": 2}, "defaultVariant": "a",
	  "targeting": {"if": [{"some_unknown_op": [1]}, "b", "a"]}},
	  "fine-flag": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a"}}}`
	res = admin.Run(t, bad, "import", "flagd", "-", "-n", v2)
	if res.Code != exit.Usage || !strings.Contains(res.Stderr, "flags.refused-flag.targeting.if[0].some_unknown_op") || !strings.Contains(res.Stderr, "nothing was imported") {
		t.Errorf("refused import: exit %d, want %d with the JSON path\n%s", res.Code, exit.Usage, res.Stderr)
	}
	if _, err := env.Client.FlagpoleV1beta1().Flags(v2).Get(ctx, "fine-flag", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused import applied some of its flags: %v", err)
	}

	// Export: the imported flags go back as a flagd document that imports
	// to the same objects.
	doc := admin.Must(t, "export", "flagd", "-n", v2)
	var exported struct {
		Flags      map[string]json.RawMessage `json:"flags"`
		Evaluators map[string]json.RawMessage `json:"$evaluators"`
	}
	if err := json.Unmarshal([]byte(doc), &exported); err != nil || len(exported.Flags) != 76 || len(exported.Evaluators) == 0 {
		t.Fatalf("export flagd: %v, %d flags, %d evaluators", err, len(exported.Flags), len(exported.Evaluators))
	}
	again := admin.Run(t, doc, "import", "flagd", "-", "--dry-run", "-n", v2)
	if again.Code != exit.OK {
		t.Fatalf("importing the export: exit %d %s", again.Code, again.Stderr)
	}
	sameObjects(t, "the exported document", again.Stdout, dry.Stdout)
	admin.Fails(t, exit.Usage, []string{"export", "flagd", "checkout", "-n", env.Namespaces[0]}, "has no JsonLogic equivalent", "nothing was written")

	// The OpenFeature CLI's manifest of everything imported.
	var m manifest.Manifest
	if err := json.Unmarshal([]byte(admin.Must(t, "manifest", "-n", v2)), &m); err != nil || len(m.Flags) != 76 {
		t.Fatalf("manifest of the imported flags: %v, %d flags", err, len(m.Flags))
	}
	checkManifest(t, m)
}

// sameObjects compares two imports' objects (a v1 List in YAML), whatever
// their order and their variants' order: a FeatureFlag's flagd document is
// a Kubernetes object, whose maps (a flag's variants) have no order.
func sameObjects(t *testing.T, what, got, want string) {
	t.Helper()
	index := func(text string) map[string]string {
		var list struct {
			Items []map[string]any `json:"items"`
		}
		if err := yaml.Unmarshal([]byte(text), &list); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		out := map[string]string{}
		for _, it := range list.Items {
			if spec, ok := it["spec"].(map[string]any); ok {
				if vs, ok := spec["variants"].([]any); ok {
					slices.SortFunc(vs, func(a, b any) int {
						return strings.Compare(fmt.Sprint(a.(map[string]any)["name"]), fmt.Sprint(b.(map[string]any)["name"]))
					})
				}
			}
			b, _ := json.Marshal(it)
			md, _ := it["metadata"].(map[string]any)
			out[fmt.Sprint(it["kind"], "/", md["name"])] = string(b)
		}
		return out
	}
	g, w := index(got), index(want)
	if len(g) != len(w) {
		t.Errorf("%s: %d objects, want %d", what, len(g), len(w))
	}
	for k, v := range w {
		if g[k] != v {
			t.Errorf("%s imports %s as\n%s\nwant\n%s", what, k, g[k], v)
		}
	}
}

// checkAnswer evaluates c's context through the API and compares with flagd's answer.
func checkAnswer(t *testing.T, env Env, namespace string, c answers.Case) {
	t.Helper()
	raw, _ := json.Marshal(c.Context)
	got, err := env.Client.FlagpoleV1beta1().Flags(namespace).Evaluate(context.Background(), c.Flag,
		&v1beta1.EvaluationRequest{Context: v1beta1.JSON{Raw: raw}, Type: v1beta1.FlagType(c.Type)}, metav1.CreateOptions{})
	describe := fmt.Sprintf("%s/%s with %s (%s)", namespace, c.Flag, raw, c.Source)
	if err != nil {
		t.Errorf("%s: %v", describe, err)
		return
	}
	want := ""
	if c.Variant != nil {
		want = *c.Variant
	}
	if got.Variant != want || got.ErrorCode != c.ErrorCode {
		t.Errorf("%s: variant %q error %q (%s), flagd: variant %q error %q", describe, got.Variant, got.ErrorCode, got.ErrorMessage, want, c.ErrorCode)
	}
	// A fractional that became a rollout answers SPLIT where flagd says
	// TARGETING_MATCH (docs/flagd-import.md); every other reason is flagd's.
	if got.Reason != c.Reason && !(got.Reason == "SPLIT" && c.Reason == "TARGETING_MATCH") {
		t.Errorf("%s: reason %s, flagd: %s", describe, got.Reason, c.Reason)
	}
	if want == "" && got.Value != nil {
		t.Errorf("%s: value %s, flagd answers the caller's default", describe, got.Value.Raw)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// featureFlags wraps each flagd file in an OpenFeature Operator FeatureFlag.
func featureFlags(t *testing.T, files []string) []byte {
	t.Helper()
	var docs []string
	for i, f := range files {
		var spec map[string]any
		readJSON(t, f, &spec)
		delete(spec, "$schema")
		obj := map[string]any{
			"apiVersion": "core.openfeature.dev/v1beta1", "kind": "FeatureFlag",
			"metadata": map[string]any{"name": fmt.Sprintf("flags-%d", i)},
			"spec":     map[string]any{"flagSpec": spec},
		}
		y, err := yaml.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(y))
	}
	return []byte(strings.Join(docs, "---\n"))
}

// checkManifest checks m against what the OpenFeature CLI's manifest
// schema v0 requires: $schema, and for every flag (a non-empty key) a
// flagType of boolean, string, integer, float or object and a defaultValue
// of that type.
func checkManifest(t *testing.T, m manifest.Manifest) {
	t.Helper()
	if m.Schema != manifest.SchemaURL {
		t.Errorf("$schema %q", m.Schema)
	}
	for key, f := range m.Flags {
		if key == "" {
			t.Error("a flag with an empty key")
		}
		var v any
		if err := json.Unmarshal(f.DefaultValue, &v); err != nil {
			t.Errorf("%s: defaultValue %s: %v", key, f.DefaultValue, err)
			continue
		}
		ok := false
		switch f.FlagType {
		case manifest.TypeBoolean:
			_, ok = v.(bool)
		case manifest.TypeString:
			_, ok = v.(string)
		case manifest.TypeInteger:
			n, isNum := v.(float64)
			ok = isNum && n == float64(int64(n))
		case manifest.TypeFloat:
			_, ok = v.(float64)
		case manifest.TypeObject:
			ok = v != nil
		}
		if !ok {
			t.Errorf("%s: flagType %q with defaultValue %s", key, f.FlagType, f.DefaultValue)
		}
	}
}
