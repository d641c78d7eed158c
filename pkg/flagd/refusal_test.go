package flagd

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func flagDoc(targeting string) string {
	return fmt.Sprintf(`{"flags": {"my-flag": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a", "targeting": %s}}}`, targeting)
}

// What cannot be translated exactly is refused, at its JSON path, with
// every problem of the import at once.
func TestRefusals(t *testing.T) {
	many := `{"a0": 0`
	for i := 1; i < 100; i++ {
		many += fmt.Sprintf(`, "a%d": %d`, i, i)
	}
	many += "}"
	for _, tc := range []struct {
		name, doc string
		want      map[string]string // path → a fragment of the detail
	}{
		{"unknown operator", flagDoc(`{"if": [{"some_unknown_op": [1]}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0].some_unknown_op": "flagd knows no operator"}},
		{"JsonLogic operator not translated", flagDoc(`{"if": [{"==": [{"+": [1, 2]}, 3]}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0].==[0].+": "not translated"}},
		{"unresolved $ref", flagDoc(`{"if": [{"$ref": "nope"}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0]": `no evaluator "nope"`}},
		{"var of a computed path", flagDoc(`{"var": {"cat": ["a"]}}`),
			map[string]string{"flags.my-flag.targeting.var": "literal string"}},
		{"var of the whole context", flagDoc(`{"if": [{"var": ""}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0].var": "whole context"}},
		{"comparison without an argument list", flagDoc(`{"if": [{"==": "a"}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0].==": "must be an array"}},
		{"in without arguments", flagDoc(`{"if": [{"in": []}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0].in": "without arguments"}},
		{"cat of a number", flagDoc(`{"cat": 5}`),
			map[string]string{"flags.my-flag.targeting.cat": "cat of a number"}},
		{"an ignored argument that can fail", flagDoc(`{"if": [{"==": [1, 1, {"in": [{"var": "x"}, {"var": "y"}]}]}, "a", "b"]}`),
			map[string]string{"flags.my-flag.targeting.if[0].==[2]": "ignores it"}},
		{"flag key that is no Flagpole name", `{"flags": {"headerColor": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"}}}`,
			map[string]string{"flags.headerColor": "not renamed"}},
		{"variant name the API refuses", `{"flags": {"f": {"state": "ENABLED", "variants": {"on off": true, "b": false}}}}`,
			map[string]string{"flags.f.variants.on off": "spec.variants[0].name"}},
		{"mixed variant types", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": true, "b": "x"}}}}`,
			map[string]string{"flags.f.variants.b": "every variant of a flag has one type"}},
		{"null variant", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": null}}}}`,
			map[string]string{"flags.f.variants.a": "not null"}},
		{"unknown state", `{"flags": {"f": {"state": "ON", "variants": {"a": 1}}}}`,
			map[string]string{"flags.f.state": "ENABLED or DISABLED"}},
		{"default that is no variant", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "z"}}}`,
			map[string]string{"flags.f.defaultVariant": "not one of the flag's variants"}},
		{"evaluator referring to an evaluator", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": true}, "targeting": {"if": [{"$ref": "x"}, "a", null]}}},
			"$evaluators": {"x": {"and": [{"$ref": "y"}, true]}, "y": {"==": [1, 1]}}}`,
			map[string]string{"$evaluators.x.and[0]": "random order"}},
		{"flags of two flag sets with one key", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "metadata": {"flagSetId": "one"}}}}` + "\x00" +
			`{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1}, "metadata": {"flagSetId": "two"}}}}`,
			map[string]string{"flags.f": "namespace of its own"}},
		{"too many rules", fmt.Sprintf(`{"flags": {"f": {"state": "ENABLED", "variants": %s, "targeting": {"if": [{"var": "x"}, {"var": "y"}, {"if": [{"var": "z"}, {"var": "w"}, {"var": "v"}]}]}}}}`, many),
			map[string]string{"flags.f.targeting": "spec.rules, which Flagpole refuses: Too many"}},
		{"missing flags", `{"$evaluators": {}}`, map[string]string{"flags": "required"}},
		{"not an object", `[1, 2]`, map[string]string{"": "is a JSON object"}},
		{"number beyond float64", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": 1e400}}}}`, map[string]string{"": "does not fit a 64-bit float"}},
		{"several problems at once", `{"flags": {"Bad": {"state": "ENABLED", "variants": {"a": 1}}, "f": {"state": "x", "variants": {"a": 1}},
			"g": {"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"nope": 1}, "a", null]}}}}`,
			map[string]string{"flags.Bad": "not renamed", "flags.f.state": "ENABLED or DISABLED", "flags.g.targeting.if[0].nope": "no operator"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sources []Source
			for i, d := range strings.Split(tc.doc, "\x00") {
				sources = append(sources, Source{Name: fmt.Sprintf("file%d.json", i+1), Data: []byte(d)})
			}
			res, err := Import(sources, Options{})
			var ps Problems
			if !errors.As(err, &ps) || res != nil {
				t.Fatalf("want Problems, got %v, %v", res, err)
			}
			got := map[string]string{}
			for _, p := range ps {
				got[p.Path] += p.Detail + "; "
			}
			for path, fragment := range tc.want {
				if !strings.Contains(got[path], fragment) {
					t.Errorf("no problem at %q containing %q; problems:\n%v", path, fragment, err)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("problems at %d paths, want %d:\n%v", len(got), len(tc.want), err)
			}
		})
	}
}
