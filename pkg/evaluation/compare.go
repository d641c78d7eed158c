package evaluation

import (
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

// stringCompare is a predicate of the most common shape a targeting rule
// has, `context.<key> == "<literal>"` (or !=, either side), answered without
// the CEL interpreter: CEL's runtime cost tracking, which Kubernetes' base
// environment turns on for every program (OptTrackCost), costs such a rule
// more than the comparison itself — about 600 ns and 8 allocations, against
// a map lookup. The answer is CEL's, to the error text
// (TestStringCompareIsCEL compares them over a corpus of contexts):
//   - the key absent: CEL's "no such key" error, so the rule's outcome is
//     MissingAttribute as it would be;
//   - a string: compared;
//   - a number, bool, null, list or map: false for ==, true for != (CEL's
//     heterogeneous equality: values of different types are not equal);
//   - a value of any other Go type: CEL answers.
//
// Only a select of context's field directly is recognised: nested fields,
// indexes, presence tests and targetingKey go through CEL.
type stringCompare struct {
	key     string
	literal string
	negate  bool // !=
}

// stringCompareOf recognises e; nil when it has another shape.
func stringCompareOf(e celast.Expr) *stringCompare {
	if e.Kind() != celast.CallKind {
		return nil
	}
	call := e.AsCall()
	var negate bool
	switch call.FunctionName() {
	case operators.Equals:
	case operators.NotEquals:
		negate = true
	default:
		return nil
	}
	if call.IsMemberFunction() || len(call.Args()) != 2 {
		return nil
	}
	a, b := call.Args()[0], call.Args()[1]
	if b.Kind() == celast.SelectKind {
		a, b = b, a
	}
	if a.Kind() != celast.SelectKind || b.Kind() != celast.LiteralKind {
		return nil
	}
	sel := a.AsSelect()
	if sel.IsTestOnly() || sel.Operand().Kind() != celast.IdentKind || sel.Operand().AsIdent() != varContext {
		return nil
	}
	lit, ok := b.AsLiteral().(types.String)
	if !ok {
		return nil
	}
	return &stringCompare{key: sel.FieldName(), literal: string(lit), negate: negate}
}

// eval answers for attrs, the context's attributes; err wraps errAbsentKey
// as Program.eval's would, with CEL's message. ok is false for a value of a
// type it does not know CEL's answer for (a named string type, say, which
// CEL converts to a string): the caller asks CEL.
func (c *stringCompare) eval(expr string, attrs map[string]any) (matched bool, ok bool, err error) {
	v, present := attrs[c.key]
	if !present {
		return false, true, absentKeyError(expr, absentKeyPrefix+c.key)
	}
	switch v := v.(type) {
	case string:
		return (v == c.literal) != c.negate, true, nil
	case nil, bool, float64, float32, int, int64, int32, uint64, uint32, map[string]any, []any:
		return c.negate, true, nil
	}
	return false, false, nil
}
