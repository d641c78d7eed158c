package flagd

import (
	"encoding/json"
	"testing"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// translateValue is the CEL of the value a JsonLogic rule evaluates to.
func translateValue(t *testing.T, rule string) (string, Problems) {
	t.Helper()
	var errs Problems
	p := problems{list: &errs, source: "test"}
	v, err := decodeJSON([]byte(rule), nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &translator{p: p, b: newCELBuilder()}
	x := tr.value(parseLogic(p, v, nil, false))
	if len(errs) > 0 {
		return "", errs
	}
	s, err := tr.b.print(x)
	if err != nil {
		t.Fatal(err)
	}
	return s, nil
}

// literalCEL is a JSON value as a CEL literal.
func literalCEL(t *testing.T, raw []byte) string {
	t.Helper()
	v, err := decodeJSON(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := newCELBuilder()
	tr := &translator{b: b}
	s, err := b.print(b.dyn(tr.literal(v)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The JsonLogic test suite: each rule, translated, evaluates to the
// expected value for the scenario's data, in the engine. The scenarios the
// translation refuses are listed, with why.
func TestJsonLogicSuite(t *testing.T) {
	var doc struct {
		Scenarios []struct {
			Section  string          `json:"section"`
			Rule     json.RawMessage `json:"rule"`
			Data     json.RawMessage `json:"data"`
			Expected json.RawMessage `json:"expected"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(readFile(t, "jsonlogic-tests.json"), &doc); err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{
		// A var whose path comes from the context.
		`{"var":[{"?:":[{"<":[{"var":"temp"},110]},"pie.filling","pie.eta"]}]}`: "a computed path",
	}
	seen := 0
	passed := 0
	for _, s := range doc.Scenarios {
		rule := compact(t, s.Rule)
		expr, errs := translateValue(t, rule)
		if errs != nil {
			if _, ok := refused[rule]; !ok {
				t.Errorf("%s %s: refused: %v", s.Section, rule, errs)
			}
			seen++
			continue
		}
		when := "dyn(" + expr + ") == " + literalCEL(t, s.Expected)
		f := &v1beta1.Flag{Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean, State: v1beta1.FlagStateEnabled,
			Variants: []v1beta1.Variant{{Name: "ok", Value: v1beta1.JSON{Raw: []byte("true")}}},
			Rules:    []v1beta1.Rule{{Name: "r", When: when, Variant: "ok"}}}}
		f.Name, f.UID = "suite", "u"
		if _, err := evaluation.CompileExpression(when, evaluation.Predicate, false); err != nil {
			t.Errorf("%s %s: %s: %v", s.Section, rule, when, err)
			continue
		}
		ec, err := evaluation.ParseContext(s.Data)
		if err != nil {
			t.Fatalf("%s: %v", s.Data, err)
		}
		res := evaluation.CompileFlag(f, func(string) *v1beta1.Segment { return nil }).Evaluate(t.Context(), f, nil, evaluation.Request{Context: ec, Now: now})
		if res.Variant != "ok" {
			t.Errorf("%s %s with %s: want %s; %s gave %s %s", s.Section, rule, s.Data, s.Expected, when, res.Reason, res.ErrorMessage)
			continue
		}
		passed++
	}
	if seen != len(refused) || passed+seen != len(doc.Scenarios) {
		t.Errorf("%d scenarios pass, %d are refused, of %d", passed, seen, len(doc.Scenarios))
	}
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	v, err := decodeJSON(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v.marshal()
}
