// Package expression checks CEL expressions on write with the flag engine's
// own compiler, so that what the server stores the engine can run. The
// strategies of flags and segments take Compile as a required argument:
// validation never runs without it.
package expression

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

var _ validation.CompileFunc = Compile

// Compile compiles and cost-checks one expression for validation.
func Compile(fldPath *field.Path, expr string, kind validation.ExpressionKind, stored bool) field.ErrorList {
	k := evaluation.Predicate
	if kind == validation.ExpressionBucketBy {
		k = evaluation.BucketKey
	}
	if _, err := evaluation.CompileExpression(expr, k, stored); err != nil {
		return field.ErrorList{field.Invalid(fldPath, expr, err.Error())}
	}
	return nil
}
