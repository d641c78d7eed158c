package flagd

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// A JsonLogic rule, parsed from the targeting JSON by structure. Arrays are
// evaluated element by element, as jsonlogic's parseValues does; an object
// with one key is an operation; any other object is a value, returned as it
// is, unevaluated.

type nodeKind int

const (
	nodeLiteral nodeKind = iota // null, boolean, number, string
	nodeList                    // an array, its elements evaluated
	nodeObject                  // an object of zero or several keys: a value
	nodeOp                      // {"operator": operand}
)

type node struct {
	kind nodeKind
	v    *value // the JSON it was parsed from
	// elems are a list's elements, or an operation's operand elements when
	// its operand is an array.
	elems []*node
	op    string
	// array: the operand is an array (elems); otherwise operand is it.
	array   bool
	operand *node
	// path is where the node is in its document; at is where it is in the
	// flag's targeting (for a node of an evaluator: where the $ref was).
	path, at *field.Path
	// ref names the evaluator this node was inlined from.
	ref string
}

// Operators flagd evaluates: jsonlogic's core operators and flagd's own.
var (
	supportedOps = []string{"if", "?:", "==", "!=", "===", "!==", "<", "<=", ">", ">=", "and", "or", "!", "!!",
		"in", "var", "cat", "starts_with", "ends_with", "sem_ver", "fractional"}
	// jsonlogicOps are jsonlogic v3.9.1's other operators: flagd evaluates
	// them, this import does not translate them.
	jsonlogicOps = []string{"filter", "map", "reduce", "all", "none", "some", "missing", "missing_some", "set",
		"substr", "merge", "max", "min", "+", "-", "*", "/", "%", "abs"}
)

// parseLogic parses v, reporting operators it does not translate. at is
// v's place in the targeting; within an inlined evaluator (inRef) every
// node is at the place of its $ref.
func parseLogic(p problems, v *value, at *field.Path, inRef bool) *node {
	if v.ref != "" {
		at, inRef = v.refAt, true
	}
	n := &node{v: v, path: v.path, at: at, ref: v.ref}
	childAt := func(c *value) *field.Path {
		if inRef {
			return at
		}
		return c.path
	}
	switch v.typ {
	case typeArray:
		n.kind = nodeList
		for _, el := range v.arr {
			n.elems = append(n.elems, parseLogic(p, el, childAt(el), inRef))
		}
		return n
	case typeObject:
		if len(v.obj) != 1 {
			n.kind = nodeObject
			return n
		}
	default:
		n.kind = nodeLiteral
		return n
	}
	n.kind = nodeOp
	n.op = v.obj[0].key
	operand := v.obj[0].val
	switch {
	case slices.Contains(supportedOps, n.op):
	case n.op == "$ref":
		name, _ := refName(v)
		p.add(v.path, "there is no evaluator %q in the document's $evaluators: flagd answers PARSE_ERROR wherever it reaches this", name)
	case slices.Contains(jsonlogicOps, n.op):
		p.add(childPath(v.path, n.op), "the JsonLogic operator %q is not translated to CEL (the import translates %s)", n.op, strings.Join(supportedOps, ", "))
	default:
		p.add(childPath(v.path, n.op), "flagd knows no operator %q: it answers PARSE_ERROR wherever it reaches this", n.op)
	}
	if operand.typ == typeArray {
		n.array = true
		for _, el := range operand.arr {
			n.elems = append(n.elems, parseLogic(p, el, childAt(el), inRef))
		}
	} else {
		n.operand = parseLogic(p, operand, childAt(operand), inRef)
	}
	return n
}

// args is an operation's operand elements.
func (n *node) args() []*node { return n.elems }

// literalString is the node's string when it is a literal string.
func (n *node) literalString() (string, bool) {
	if n.kind == nodeLiteral && n.v.typ == typeString {
		return n.v.s, true
	}
	return "", false
}

// isLiteral: a literal, or an array or object of literals: a value known
// when the rule is written.
func (n *node) isLiteral() bool {
	switch n.kind {
	case nodeLiteral, nodeObject:
		return true
	case nodeList:
		for _, el := range n.elems {
			if !el.isLiteral() {
				return false
			}
		}
		return true
	}
	return false
}

// mayFail reports whether evaluating n can fail for some context (flagd's
// evaluation panics: PARSE_ERROR), or answer an error here where flagd
// evaluates a context value as JsonLogic.
func (n *node) mayFail() bool {
	switch n.kind {
	case nodeLiteral, nodeObject:
		return false
	case nodeList:
		return slices.ContainsFunc(n.elems, (*node).mayFail)
	}
	if n.operand != nil && n.operand.mayFail() {
		return true
	}
	if slices.ContainsFunc(n.elems, (*node).mayFail) {
		return true
	}
	switch n.op {
	case "in":
		return !n.inIsSafe()
	case "cat":
		if !n.array {
			return true
		}
		for _, el := range n.elems {
			if el.kind == nodeLiteral && el.v.typ != typeBool {
				continue
			}
			if el.kind == nodeOp && el.op == "cat" {
				continue
			}
			return true
		}
	case "if", "?:":
		// A branch's object from the context is evaluated again by flagd.
		for i, el := range n.elems {
			if (i%2 == 1 || i == len(n.elems)-1) && el.mayYieldObject() {
				return true
			}
		}
	}
	return false
}

// inIsSafe: `in` of a literal list of strings and numbers, or of two
// literal strings, never panics in jsonlogic.
func (n *node) inIsSafe() bool {
	if !n.array || len(n.elems) < 1 {
		return false
	}
	if len(n.elems) < 2 {
		return true
	}
	a, b := n.elems[0], n.elems[1]
	if _, ok := b.literalString(); ok {
		_, isStr := a.literalString()
		return isStr
	}
	if b.kind != nodeList {
		return b.kind != nodeOp // null, boolean, number, object: false
	}
	for _, el := range b.elems {
		if el.kind != nodeLiteral || (el.v.typ != typeString && el.v.typ != typeNumber) {
			return false
		}
	}
	return true
}

// mayYieldObject: n's value can be an object read from the context.
func (n *node) mayYieldObject() bool {
	if n.kind != nodeOp {
		return false
	}
	switch n.op {
	case "var":
		return true
	case "and", "or":
		return slices.ContainsFunc(n.elems, (*node).mayYieldObject)
	}
	return false
}
