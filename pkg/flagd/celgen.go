package flagd

import (
	"fmt"
	"strconv"
	"strings"

	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// CEL is built as a syntax tree (cel-go's ast package) and printed with
// cel-go's unparser, so that every literal is escaped by CEL's own rules and
// every operator is parenthesised where it must be.

// celType is the static type of a built expression: CEL's aggregates and
// conditionals must be homogeneous, so a typed expression that joins others
// of another type is wrapped in dyn().
type celType int

const (
	celDyn celType = iota
	celBool
	celString
	celDouble
	celInt
	celNull
	celList
	celMap
)

type cexpr struct {
	e celast.Expr
	t celType
}

type celBuilder struct {
	fac celast.ExprFactory
	id  int64
}

func newCELBuilder() *celBuilder { return &celBuilder{fac: celast.NewExprFactory()} }

func (b *celBuilder) next() int64 {
	b.id++
	return b.id
}

func (b *celBuilder) lit(v any) cexpr {
	switch x := v.(type) {
	case nil:
		return cexpr{b.fac.NewLiteral(b.next(), types.NullValue), celNull}
	case bool:
		return cexpr{b.fac.NewLiteral(b.next(), types.Bool(x)), celBool}
	case float64:
		return cexpr{b.fac.NewLiteral(b.next(), types.Double(x)), celDouble}
	case string:
		return cexpr{b.fac.NewLiteral(b.next(), types.String(x)), celString}
	}
	panic(fmt.Sprintf("no CEL literal for %T", v))
}

func (b *celBuilder) ident(name string, t celType) cexpr {
	return cexpr{b.fac.NewIdent(b.next(), name), t}
}

func (b *celBuilder) call(fn string, t celType, args ...cexpr) cexpr {
	es := make([]celast.Expr, len(args))
	for i, a := range args {
		es[i] = a.e
	}
	return cexpr{b.fac.NewCall(b.next(), fn, es...), t}
}

// dyn makes x's static type dyn.
func (b *celBuilder) dyn(x cexpr) cexpr {
	if x.t == celDyn {
		return x
	}
	return b.call("dyn", celDyn, x)
}

// list is a list literal; its elements are made dyn unless they are all
// strings, all doubles or all booleans.
func (b *celBuilder) list(elems []cexpr) cexpr {
	same := len(elems) > 0
	for _, el := range elems {
		if el.t != elems[0].t || (el.t != celString && el.t != celDouble && el.t != celBool) {
			same = false
		}
	}
	es := make([]celast.Expr, len(elems))
	for i, el := range elems {
		if !same {
			el = b.dyn(el)
		}
		es[i] = el.e
	}
	return cexpr{b.fac.NewList(b.next(), es, nil), celList}
}

func (b *celBuilder) mapOf(keys []string, vals []cexpr) cexpr {
	entries := make([]celast.EntryExpr, len(keys))
	for i, k := range keys {
		entries[i] = b.fac.NewMapEntry(b.next(), b.lit(k).e, b.dyn(vals[i]).e, false)
	}
	return cexpr{b.fac.NewMap(b.next(), entries), celMap}
}

func boolLiteral(x cexpr) (bool, bool) {
	if x.e.Kind() == celast.LiteralKind {
		if v, ok := x.e.AsLiteral().(types.Bool); ok {
			return bool(v), true
		}
	}
	return false, false
}

func (b *celBuilder) not(x cexpr) cexpr {
	if v, ok := boolLiteral(x); ok {
		return b.lit(!v)
	}
	return b.call(operators.LogicalNot, celBool, x)
}

// cond is c ? t : f, folded where c is a literal, and c itself where the
// branches are the literals true and false (errors propagate the same).
func (b *celBuilder) cond(c, t, f cexpr) cexpr {
	if v, ok := boolLiteral(c); ok {
		if v {
			return t
		}
		return f
	}
	tv, tok := boolLiteral(t)
	fv, fok := boolLiteral(f)
	if tok && fok && tv != fv {
		if tv {
			return c
		}
		return b.not(c)
	}
	typ := t.t
	if t.t != f.t {
		t, f, typ = b.dyn(t), b.dyn(f), celDyn
	}
	return b.call(operators.Conditional, typ, c, t, f)
}

// and is a && b for two booleans that cannot fail.
func (b *celBuilder) and(x, y cexpr) cexpr {
	if v, ok := boolLiteral(x); ok {
		if !v {
			return x
		}
		return y
	}
	if v, ok := boolLiteral(y); ok && v {
		return x
	}
	return b.call(operators.LogicalAnd, celBool, x, y)
}

func (b *celBuilder) eq(x, y cexpr) cexpr { return b.call(operators.Equals, celBool, x, y) }

func (b *celBuilder) print(x cexpr) (string, error) {
	return parser.Unparse(x.e, celast.NewSourceInfo(nil))
}

// translator turns one flag's JsonLogic into CEL.
type translator struct {
	p      problems
	b      *celBuilder
	v1     bool
	failed bool
	// usesFrac: the rule has a fractional, whose bucketing matters.
	usesFrac bool
}

func (t *translator) refuse(path *field.Path, format string, args ...any) cexpr {
	t.p.add(path, format, args...)
	t.failed = true
	return t.b.lit(nil)
}

func (t *translator) context() cexpr { return t.b.ident("context", celMap) }
func (t *translator) flagKey() cexpr { return t.b.ident("flagKey", celString) }

// literal is a JSON value as a CEL literal, unevaluated.
func (t *translator) literal(v *value) cexpr {
	switch v.typ {
	case typeArray:
		els := make([]cexpr, len(v.arr))
		for i, el := range v.arr {
			els[i] = t.literal(el)
		}
		return t.b.list(els)
	case typeObject:
		keys := make([]string, len(v.obj))
		vals := make([]cexpr, len(v.obj))
		for i, m := range v.obj {
			keys[i], vals[i] = m.key, t.literal(m.val)
		}
		return t.b.mapOf(keys, vals)
	}
	return t.b.lit(v.native())
}

// unused refuses operand elements flagd evaluates and then ignores when
// they may fail: the translation drops them.
func (t *translator) unused(n *node, from int) {
	for _, el := range n.elems[min(from, len(n.elems)):] {
		if el.mayFail() {
			t.refuse(el.path, "flagd evaluates this argument of %q and ignores it, and it can fail: remove it", n.op)
		}
	}
}

// needArray refuses an operation whose operand must be a literal array.
func (t *translator) needArray(n *node) bool {
	if n.array {
		return true
	}
	t.refuse(childPath(n.path, n.op), "the operand of %q must be an array: flagd fails on another (PARSE_ERROR), or reads a value from the context as its argument list", n.op)
	return false
}

// value is the CEL value of n as jsonlogic computes it.
func (t *translator) value(n *node) cexpr {
	b := t.b
	switch n.kind {
	case nodeLiteral, nodeObject:
		return t.literal(n.v)
	case nodeList:
		els := make([]cexpr, len(n.elems))
		for i, el := range n.elems {
			els[i] = t.value(el)
		}
		return b.list(els)
	}
	a := n.elems
	switch n.op {
	case "if", "?:":
		if !t.needArray(n) {
			return b.lit(nil)
		}
		return t.ifValue(a)
	case "==", "!=", "===", "!==", "<", "<=", ">", ">=", "in", "!", "!!":
		return t.condition(n)
	case "and", "or":
		if !t.needArray(n) {
			return b.lit(nil)
		}
		if len(a) == 0 {
			return b.lit(nil)
		}
		return t.andOrValue(n.op, a)
	case "var":
		return t.variable(n)
	case "cat":
		switch {
		case n.array:
			els := make([]cexpr, len(a))
			for i, el := range a {
				els[i] = t.value(el)
			}
			return b.call("flagd.cat", celString, b.list(els))
		case n.operand.kind == nodeOp:
			return b.call("flagd.cat", celString, t.value(n.operand))
		case n.operand.kind == nodeLiteral && n.operand.v.typ == typeString:
			return t.literal(n.operand.v)
		}
		return t.refuse(n.operand.path, "cat of %s fails in flagd (PARSE_ERROR)", n.operand.v.typeName())
	case "starts_with", "ends_with":
		fn := map[string]string{"starts_with": "flagd.startsWith", "ends_with": "flagd.endsWith"}[n.op]
		return t.operatorCall(n, fn, 2)
	case "sem_ver":
		return t.operatorCall(n, "flagd.semver", 3)
	case "fractional":
		t.usesFrac = true
		fn := "flagd.fractional"
		if t.v1 {
			fn = "flagd.fractionalV1"
		}
		switch {
		case n.array:
			els := make([]cexpr, len(a))
			for i, el := range a {
				els[i] = t.value(el)
			}
			return b.call(fn, celDyn, t.context(), t.flagKey(), b.list(els))
		case n.operand.kind == nodeOp:
			return b.call(fn, celDyn, t.context(), t.flagKey(), t.value(n.operand))
		}
		return b.lit(nil)
	}
	return b.lit(nil)
}

// operatorCall is one of flagd's operators, which take the evaluated
// operand as their argument list and answer null for another number of
// arguments.
func (t *translator) operatorCall(n *node, fn string, arity int) cexpr {
	b := t.b
	switch {
	case n.array && len(n.elems) == arity:
		args := make([]cexpr, arity)
		for i, el := range n.elems {
			args[i] = t.value(el)
		}
		return b.call(fn, celDyn, args...)
	case n.array:
		els := make([]cexpr, len(n.elems))
		for i, el := range n.elems {
			els[i] = t.value(el)
		}
		return b.call(fn, celDyn, b.list(els))
	case n.operand.kind == nodeOp:
		return b.call(fn, celDyn, t.value(n.operand))
	}
	return b.lit(nil)
}

// ifValue is an if's value: the branch of the first truthy condition, the
// else branch, or null. jsonlogic evaluates an object a branch yields once
// more (flagd.clause).
func (t *translator) ifValue(a []*node) cexpr {
	return t.ifOf(a, t.b.lit(nil), t.branchValue)
}

// ifOf is an if of conditions and branches a, each branch translated by
// branch, none if no condition holds and there is no else.
func (t *translator) ifOf(a []*node, none cexpr, branch func(*node) cexpr) cexpr {
	switch len(a) {
	case 0:
		return none
	case 1:
		return branch(a[0])
	}
	rest := none
	if len(a) > 2 {
		rest = t.ifOf(a[2:], none, branch)
	}
	return t.b.cond(t.condition(a[0]), branch(a[1]), rest)
}

func (t *translator) branchValue(n *node) cexpr {
	v := t.value(n)
	if n.mayYieldObject() {
		return t.b.call("flagd.clause", celDyn, v)
	}
	return v
}

// andOrValue: and yields its first falsy operand, or yes its last; or its
// first truthy one. An operand tested and yielded appears twice.
func (t *translator) andOrValue(op string, a []*node) cexpr {
	first := t.value(a[0])
	if len(a) == 1 {
		return first
	}
	rest := t.andOrValue(op, a[1:])
	test := t.b.call("flagd.truthy", celBool, first)
	if op == "and" {
		return t.b.cond(test, rest, first)
	}
	return t.b.cond(test, first, rest)
}

// condition is n's truthiness as jsonlogic's if, and, or and ! test it.
func (t *translator) condition(n *node) cexpr {
	b := t.b
	switch n.kind {
	case nodeLiteral, nodeObject:
		return b.lit(truthy(n.v))
	case nodeList:
		if len(n.elems) > 0 && !n.mayFail() {
			return b.lit(true)
		}
		if len(n.elems) == 0 {
			return b.lit(false)
		}
		return b.call("flagd.truthy", celBool, t.value(n))
	}
	a := n.elems
	pair := func(fn string, neg bool, arity int, nonArray bool) cexpr {
		if !n.array {
			if nonArray && n.operand.kind != nodeOp {
				// jsonlogic's === of no argument list is false.
				return b.lit(neg)
			}
			t.needArray(n)
			return b.lit(false)
		}
		if len(a) < 2 {
			t.unused(n, 0)
			return b.lit(neg)
		}
		t.unused(n, arity)
		c := b.call(fn, celBool, t.value(a[0]), t.value(a[1]))
		if neg {
			return b.not(c)
		}
		return c
	}
	switch n.op {
	case "==":
		return pair("flagd.equals", false, 2, false)
	case "!=":
		return pair("flagd.equals", true, 2, false)
	case "===":
		return pair("flagd.strictEquals", false, 2, true)
	case "!==":
		return pair("flagd.strictEquals", true, 2, true)
	case "<", "<=", ">", ">=":
		if !t.needArray(n) {
			return b.lit(false)
		}
		if len(a) < 2 {
			t.unused(n, 0)
			return b.lit(false)
		}
		fn := "flagd.less"
		if strings.HasSuffix(n.op, "=") {
			fn = "flagd.lessOrEquals"
		}
		// a > b is b < a; the three-argument forms are between tests.
		x, y := t.value(a[0]), t.value(a[1])
		if len(a) == 3 {
			z := t.value(a[2])
			if n.op[0] == '<' {
				return b.and(b.call(fn, celBool, x, y), b.call(fn, celBool, y, z))
			}
			return b.and(b.call(fn, celBool, z, y), b.call(fn, celBool, y, x))
		}
		t.unused(n, 2)
		if n.op[0] == '<' {
			return b.call(fn, celBool, x, y)
		}
		return b.call(fn, celBool, y, x)
	case "in":
		if !t.needArray(n) {
			return b.lit(false)
		}
		if len(a) == 0 {
			t.refuse(childPath(n.path, n.op), "in without arguments fails in flagd (PARSE_ERROR) wherever it is reached")
			return b.lit(false)
		}
		t.unused(n, 2)
		container := b.lit(nil)
		if len(a) > 1 {
			container = t.value(a[1])
		}
		return b.call("flagd.isIn", celBool, t.value(a[0]), container)
	case "!", "!!":
		var truth cexpr
		switch {
		case n.array && len(a) > 0:
			t.unused(n, 1)
			truth = t.condition(a[0])
		case n.array:
			truth = b.lit(false) // ! of an empty array: [] is false
		case n.operand.kind == nodeOp:
			// An operation's value that is a non-empty list is the argument
			// list: its first element is tested.
			notv := b.call("flagd.not", celBool, t.value(n.operand))
			if n.op == "!" {
				return notv
			}
			return b.not(notv)
		default:
			truth = t.condition(n.operand)
		}
		if n.op == "!" {
			return b.not(truth)
		}
		return truth
	case "and", "or":
		if !t.needArray(n) {
			return b.lit(false)
		}
		if len(a) == 0 {
			return b.lit(false)
		}
		return t.andOrCondition(n.op, a)
	case "if", "?:":
		if !t.needArray(n) {
			return b.lit(false)
		}
		return t.ifCondition(a)
	}
	return b.call("flagd.truthy", celBool, t.value(n))
}

func (t *translator) andOrCondition(op string, a []*node) cexpr {
	first := t.condition(a[0])
	if len(a) == 1 {
		return first
	}
	rest := t.andOrCondition(op, a[1:])
	if op == "and" {
		return t.b.cond(first, rest, t.b.lit(false))
	}
	return t.b.cond(first, t.b.lit(true), rest)
}

func (t *translator) ifCondition(a []*node) cexpr {
	return t.ifOf(a, t.b.lit(false), t.branchCondition)
}

func (t *translator) branchCondition(n *node) cexpr {
	if n.mayYieldObject() {
		return t.b.call("flagd.truthy", celBool, t.branchValue(n))
	}
	return t.condition(n)
}

// variable is var: a dotted path into the context, with a default.
// $flagd.flagKey and $flagd.timestamp are the flag's key and the evaluation
// time in Unix seconds, which flagd adds to the context.
func (t *translator) variable(n *node) cexpr {
	b := t.b
	var (
		pathNode *node
		def      *cexpr
	)
	switch {
	case n.array && len(n.elems) == 0:
		return t.refuse(childPath(n.path, "var"), "var of an empty array is the whole context, which has no CEL translation")
	case n.array:
		pathNode = n.elems[0]
		if len(n.elems) == 2 {
			d := t.value(n.elems[1])
			def = &d
		} else {
			t.unused(n, 1)
		}
		if _, ok := pathNode.literalString(); !ok {
			return t.refuse(pathNode.path, "the path of var must be a literal string: flagd fails on another (PARSE_ERROR) or reads the path from the context")
		}
	default:
		pathNode = n.operand
	}
	var path string
	switch {
	case pathNode.kind == nodeLiteral && pathNode.v.typ == typeNull:
		return b.lit(nil)
	case pathNode.kind == nodeLiteral && pathNode.v.typ == typeString:
		path = pathNode.v.s
	case pathNode.kind == nodeLiteral && pathNode.v.typ == typeNumber:
		path = strconv.FormatFloat(pathNode.v.n, 'f', -1, 64)
	default:
		return t.refuse(pathNode.path, "the path of var must be a literal string: flagd fails on another (PARSE_ERROR) or reads the path from the context")
	}
	var parts []string
	for part := range strings.SplitSeq(path, ".") {
		if part != "" {
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return t.refuse(pathNode.path, "var %q is the whole context, which has no CEL translation", path)
	}
	root := t.context()
	if parts[0] == "$flagd" {
		// flagd replaces any $flagd of the context with its own.
		props := b.mapOf([]string{"flagKey", "timestamp"}, []cexpr{t.flagKey(), t.timestamp()})
		switch {
		case len(parts) == 1:
			return props
		case len(parts) == 2 && parts[1] == "flagKey":
			return t.flagKey()
		case len(parts) == 2 && parts[1] == "timestamp":
			return t.timestamp()
		}
		root, parts = props, parts[1:]
	}
	args := []cexpr{root, b.lit(strings.Join(parts, "."))}
	if def != nil {
		args = append(args, *def)
	}
	return b.call("flagd.var", celDyn, args...)
}

func (t *translator) timestamp() cexpr {
	return t.b.call("int", celInt, t.b.ident("now", celDyn))
}

// truthy is JsonLogic's truthiness of a literal.
func truthy(v *value) bool {
	switch v.typ {
	case typeBool:
		return v.b
	case typeNumber:
		return v.n != 0
	case typeString:
		return v.s != ""
	case typeArray:
		return len(v.arr) > 0
	case typeObject:
		return len(v.obj) > 0
	}
	return false
}
