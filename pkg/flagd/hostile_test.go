package flagd

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Hostile documents are refused with a problem, quickly, never a panic.
func TestHostileInputs(t *testing.T) {
	deep := func(n int, open, close string) string {
		return strings.Repeat(open, n) + "true" + strings.Repeat(close, n)
	}
	wideIf := `{"if": [`
	for i := 0; i < 150; i++ {
		wideIf += fmt.Sprintf(`{"==": [{"var": "k"}, %d]}, "a", `, i)
	}
	wideIf += `"b"]}`
	bigVariant := `"` + strings.Repeat("x", 40*1024) + `"`
	for _, tc := range []struct{ name, doc, fragment string }{
		{"targeting nested 100,000 levels", flagDoc(deep(100000, `{"!": [`, `]}`)), "nested more than"},
		{"arrays nested 1,000,000 levels", flagDoc(deep(1000000, `[`, `]`)), "nested more than"},
		{"a document over the size limit", `{"flags": {}, "x": "` + strings.Repeat("a", MaxDocumentBytes) + `"}`, "more than the"},
		{"not JSON", `{"flags": {`, "unexpected end"},
		{"trailing data", `{"flags": {}} {}`, "trailing data"},
		{"an if of 150 branches", flagDoc(wideIf), "which Flagpole refuses"},
		{"a variant over the API's size limit", `{"flags": {"f": {"state": "ENABLED", "variants": {"a": ` + bigVariant + `}}}}`, "Too long"},
		{"wrong types everywhere", `{"flags": {"f": {"state": 1, "variants": [], "defaultVariant": 2, "targeting": {"if": 3}, "metadata": 4}}, "$evaluators": 5, "metadata": 6}`, "must be"},
		{"operators as variant values", flagDoc(`{"if": [true, {"var": "x"}, {"fractional": "x"}]}`), ""},
		{"invalid UTF-8", "{\"flags\": {\"f\xff\": {\"state\": \"ENABLED\", \"variants\": {\"a\": 1}}}}", "not a Flagpole flag name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, err := Import([]Source{{Name: "hostile.json", Data: []byte(tc.doc)}}, Options{})
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v", d)
			}
			if tc.fragment == "" {
				if err != nil {
					t.Logf("refused: %v", err)
				} else if len(res.Flags) != 1 {
					t.Errorf("flags: %+v", res.Flags)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || !strings.Contains(err.Error(), tc.fragment) {
				t.Errorf("want a problem containing %q, got %v", tc.fragment, err)
			}
		})
	}
}

// 5,000 flags in one document import in well under a minute.
func TestManyFlags(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"flags": {`)
	for i := range 5000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"flag-%d": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off", "targeting": {"if": [{"==": [{"var": "n"}, %d]}, "on", null]}}`, i, i)
	}
	b.WriteString("}}")
	start := time.Now()
	res := mustImport(t, Options{}, Source{Name: "many.json", Data: []byte(b.String())})
	if len(res.Flags) != 5000 {
		t.Fatalf("%d flags", len(res.Flags))
	}
	got, _ := evaluate(t, res, "flag-4321", map[string]any{"n": 4321}, "")
	if got.Variant != "on" {
		t.Errorf("flag-4321: %+v", got)
	}
	t.Logf("5000 flags in %v", time.Since(start))
}
