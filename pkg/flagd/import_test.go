package flagd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/flagd/answers"
)

// now is the evaluation time of the tests ($flagd.timestamp).
var now = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// expectedCase is one recorded flagd answer.
type expectedCase = answers.Case

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCases(t testing.TB, name string) []expectedCase {
	t.Helper()
	cases, err := answers.Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

func mustImport(t testing.TB, opts Options, sources ...Source) *Result {
	t.Helper()
	res, err := Import(sources, opts)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

// evaluate answers a context with the engine, as the server does.
func evaluate(t testing.TB, res *Result, key string, ctxValue map[string]any, typ string) (v1beta1.FlagEvaluation, *v1beta1.Flag) {
	t.Helper()
	var flag *v1beta1.Flag
	for i := range res.Flags {
		if res.Flags[i].Name == key {
			flag = &res.Flags[i]
		}
	}
	if flag == nil {
		t.Fatalf("no flag %q imported", key)
	}
	raw, _ := json.Marshal(ctxValue)
	ec, err := evaluation.ParseContext(raw)
	if err != nil {
		t.Fatalf("%s: context %s: %v", key, raw, err)
	}
	lookup := func(name string) *v1beta1.Segment {
		for i := range res.Segments {
			if res.Segments[i].Name == name {
				return &res.Segments[i]
			}
		}
		return nil
	}
	f := flag.DeepCopy()
	f.UID, f.Generation = "uid", 1
	return evaluation.CompileFlag(f, lookup).Evaluate(t.Context(), f, nil,
		evaluation.Request{Context: ec, Now: now, ExpectedType: v1beta1.FlagType(typ)}), flag
}

// checkCase compares Flagpole's answer with flagd's: the same variant and
// value (none: the caller's default), the same error code, and the same
// reason, but for the one documented difference: a fractional translated
// to a rollout answers SPLIT where flagd says TARGETING_MATCH.
func checkCase(t *testing.T, res *Result, c expectedCase) {
	t.Helper()
	got, flag := evaluate(t, res, c.Flag, c.Context, c.Type)
	want := ""
	if c.Variant != nil {
		want = *c.Variant
	}
	describe := func() string {
		ctx, _ := json.Marshal(c.Context)
		return fmt.Sprintf("%s with %s (%s)", c.Flag, ctx, c.Source)
	}
	if got.Variant != want || got.ErrorCode != c.ErrorCode {
		t.Errorf("%s: variant %q error %q (%s), flagd: variant %q error %q", describe(), got.Variant, got.ErrorCode, got.ErrorMessage, want, c.ErrorCode)
		return
	}
	if got.Reason != c.Reason && !(got.Reason == evaluation.ReasonSplit && c.Reason == evaluation.ReasonTargetingMatch) {
		t.Errorf("%s: reason %s, flagd: %s", describe(), got.Reason, c.Reason)
	}
	switch {
	case want == "" && got.Value != nil:
		t.Errorf("%s: value %s, flagd answers the caller's default", describe(), got.Value.Raw)
	case want != "":
		for _, v := range flag.Spec.Variants {
			if string(v.Name) == want && (got.Value == nil || string(got.Value.Raw) != string(v.Value.Raw)) {
				t.Errorf("%s: value %v, want %s", describe(), got.Value, v.Value.Raw)
			}
		}
	}
}

// Every flag of the flagd testbed and of our own file answers every
// listed context as flagd does, with both fractional bucketings.
func TestImportedFlagsAnswerAsFlagd(t *testing.T) {
	for _, tc := range []struct{ flags, cases string }{
		{"testbed.flagd.json", "testbed-expected.json"},
		{"operators.flagd.json", "operators-expected.json"},
	} {
		cases := loadCases(t, tc.cases)
		for _, frac := range []Fractional{FractionalV2, FractionalV1} {
			t.Run(tc.flags+"/"+string(frac), func(t *testing.T) {
				res := mustImport(t, Options{Namespace: "ns", Fractional: frac}, Source{Name: tc.flags, Data: readFile(t, tc.flags)})
				n := 0
				for _, c := range cases {
					if c.Fractional != "" && Fractional(c.Fractional) != frac {
						continue
					}
					checkCase(t, res, c)
					n++
				}
				t.Logf("%d contexts", n)
			})
		}
	}
}
