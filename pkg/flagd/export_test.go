package flagd

import (
	"maps"
	"slices"
	"strings"
	"testing"

	apiequality "k8s.io/apimachinery/pkg/api/equality"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

var roundTripFiles = []string{"testbed.flagd.json", "operators.flagd.json"}

// import → export → import gives the same Flags and Segments, with either
// bucketing.
func TestRoundTrip(t *testing.T) {
	for _, name := range roundTripFiles {
		for _, frac := range []Fractional{FractionalV2, FractionalV1} {
			first := mustImport(t, Options{Namespace: "ns", Fractional: frac}, Source{Name: name, Data: readFile(t, name)})
			doc, err := Export(first.Flags, first.Segments, ExportOptions{Fractional: frac})
			if err != nil {
				t.Fatalf("%s %s: export: %v", name, frac, err)
			}
			second := mustImport(t, Options{Namespace: "ns", Fractional: frac}, Source{Name: "exported", Data: doc})
			if !sameObjects(t, first, second) {
				t.Errorf("%s %s: the round trip changed the objects; exported:\n%s", name, frac, doc)
			}
			// And once more, from the exported document: stable.
			again, err := Export(second.Flags, second.Segments, ExportOptions{Fractional: frac})
			if err != nil || string(again) != string(doc) {
				t.Errorf("%s %s: a second export differs (%v)", name, frac, err)
			}
		}
	}
}

func sameObjects(t *testing.T, a, b *Result) bool {
	t.Helper()
	index := func(r *Result) (map[string]v1beta1.Flag, map[string]v1beta1.Segment) {
		fs, ss := map[string]v1beta1.Flag{}, map[string]v1beta1.Segment{}
		for _, f := range r.Flags {
			fs[f.Name] = f
		}
		for _, s := range r.Segments {
			ss[s.Name] = s
		}
		return fs, ss
	}
	af, as := index(a)
	bf, bs := index(b)
	ok := true
	for _, k := range slices.Sorted(maps.Keys(af)) {
		if !apiequality.Semantic.DeepEqual(af[k], bf[k]) {
			t.Errorf("flag %s: %+v\nbecame %+v", k, af[k], bf[k])
			ok = false
		}
	}
	if len(af) != len(bf) || !apiequality.Semantic.DeepEqual(as, bs) {
		t.Errorf("%d flags and segments %v became %d and %v", len(af), slices.Sorted(maps.Keys(as)), len(bf), slices.Sorted(maps.Keys(bs)))
		ok = false
	}
	return ok
}

// A flag whose rules were changed after the import (here: the import's
// annotations removed, as for a flag written in Flagpole) is exported from
// its rules: what it exports answers every context as the flag does.
func TestExportFromRules(t *testing.T) {
	for _, tc := range []struct{ flags, cases string }{
		{"testbed.flagd.json", "testbed-expected.json"},
		{"operators.flagd.json", "operators-expected.json"},
	} {
		for _, frac := range []Fractional{FractionalV2, FractionalV1} {
			res := mustImport(t, Options{Namespace: "ns", Fractional: frac}, Source{Name: tc.flags, Data: readFile(t, tc.flags)})
			var exported, refused []string
			for _, f := range res.Flags {
				g := f.DeepCopy()
				delete(g.Annotations, AnnotationTargeting)
				delete(g.Annotations, AnnotationEvaluators)
				doc, err := Export([]v1beta1.Flag{*g}, res.Segments, ExportOptions{Fractional: frac})
				if err != nil {
					refused = append(refused, f.Name+": "+err.Error())
					continue
				}
				exported = append(exported, f.Name)
				again := mustImport(t, Options{Namespace: "ns", Fractional: frac}, Source{Name: f.Name, Data: doc})
				for _, c := range loadCases(t, tc.cases) {
					if c.Flag == f.Name && (c.Fractional == "" || Fractional(c.Fractional) == frac) {
						checkCase(t, again, c)
					}
				}
			}
			t.Logf("%s %s: %d flags exported from their rules, %d refused:\n%s", tc.flags, frac, len(exported), len(refused), strings.Join(refused, "\n"))
			if len(refused) > len(exported)/4 {
				t.Errorf("%s: %d of %d flags refused", tc.flags, len(refused), len(res.Flags))
			}
		}
	}
}
