package evaluations

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Every context the engine refuses is a field error at the context's path
// (a 422), whatever made it unusable; an absent context is an empty one.
func TestParseContextFieldErrors(t *testing.T) {
	path := field.NewPath("spec", "context")
	for _, raw := range []string{
		`null`, `[]`, `"s"`, `{"targetingKey":1}`, `{"targetingKey":1e400}`, `{"n":-1e400}`,
		`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
	} {
		_, errs := parseContext([]byte(raw), path)
		if len(errs) != 1 || errs[0].Type != field.ErrorTypeInvalid || errs[0].Field != "spec.context" {
			t.Errorf("%.30s: %v", raw, errs)
		}
	}
	c, errs := parseContext(nil, path)
	if len(errs) != 0 || c == nil || len(c.Attributes) != 0 {
		t.Errorf("absent context: %+v %v", c, errs)
	}
}
