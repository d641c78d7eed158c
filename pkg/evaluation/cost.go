package evaluation

import (
	"math"
	"net/url"
	"strings"

	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
	"k8s.io/apiserver/pkg/cel/library"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// What an expression may cost, and how its cost is counted.
//
// CEL's cost counts operations; Kubernetes' estimator charges most calls by
// the size of their input. That leaves what a call builds uncounted: charged
// by its input, `size(context.s.replace("a", context.s))` estimates at 3,283
// and builds a 268 MB string; `"%s".format([list])` prints a list holding one
// context string 16,000 times; `split("")` and `findAll(".")` make a list
// element per byte; `[context.xs, ...].flatten()` copies every member.
//
// Flagpole adds one rule, both when an expression is written (the estimate)
// and when it runs (the actual cost): a call that builds a string, a list or
// a map is charged one unit per 4 bytes it builds — 0.25 per byte of string,
// 4 per list element (a 16-byte slot), 6 per integer lists.range boxes —
// on top of CEL's and Kubernetes' charges for reading its input. Calls whose
// result CEL cannot size (format with an unbounded argument, a format string
// the context chooses, lists.range of a context value) estimate as unbounded
// and are rejected. So the write-time estimate rejects expressions that could
// build more than the cost limit allows, and the cost limit bounds what one
// evaluation builds to about 4 MB.
//
// A few calls also do more work than their input's size says: indexOf and
// lastIndexOf search naively (string × substring, as CEL estimates
// `contains`), charAt converts the whole string to runes. They are charged
// for it.

const (
	// traversalByteCost is what CEL charges per byte read.
	traversalByteCost = common.StringTraversalCostFactor
	// buildByteCost is charged per byte of string (or bytes) a call builds.
	buildByteCost = 0.25
	// buildElementCost is charged per element of a list a call builds, and
	// per byte of a URL query getQuery parses into a map of lists.
	buildElementCost = 4.0
	// rangeElementCost is charged per element of lists.range(n): a list slot
	// and a boxed integer.
	rangeElementCost = 6.0
	// maxFormattedContextFactor bounds how much larger than its JSON a
	// context value gets when string.format prints it: a list of doubles
	// `[1e300,...]` prints each 6-byte element as 316 characters (~53×).
	maxFormattedContextFactor = 64
	// maxFormattedScalar bounds a formatted number, boolean, null, timestamp
	// or duration without a precision: a double printed with %s is at most
	// 309 digits plus ".000000".
	maxFormattedScalar = 400
)

// stringBuilders build a string (or bytes) of their result's size.
var stringBuilders = map[string]bool{
	"_+_": true, "string": true, "bytes": true,
	"lowerAscii": true, "upperAscii": true, "trim": true, "substring": true,
	"replace": true, "join": true, "format": true, "strings.quote": true,
	"jsonpatch.escapeKey": true,
}

// listBuilders build a list of their result's size.
var listBuilders = map[string]bool{"split": true, "findAll": true}

// costEstimator is Kubernetes' estimator told the context caps (through
// sizeEstimator), charging what calls build.
type costEstimator struct {
	library.CostEstimator
	checked *celast.AST
	// shadowed holds comprehension variable names: a root variable's name
	// reused inside a comprehension no longer names the root variable.
	shadowed map[string]bool
	// notes explain estimates that are unbounded by construction.
	notes []string
}

func newCostEstimator(checked *celast.AST) *costEstimator {
	e := &costEstimator{
		CostEstimator: library.CostEstimator{SizeEstimator: sizeEstimator{}},
		checked:       checked,
		shadowed:      map[string]bool{},
	}
	for _, c := range celast.MatchDescendants(celast.NavigateAST(checked), celast.KindMatcher(celast.ComprehensionKind)) {
		comp := c.AsComprehension()
		e.shadowed[comp.IterVar()] = true
		e.shadowed[comp.IterVar2()] = true
		e.shadowed[comp.AccuVar()] = true
	}
	return e
}

// EstimateCallCost implements checker.CostEstimator. Calls of the lists
// extension are estimated by listCostEstimators instead.
func (e *costEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	est := e.readEstimate(function, overloadID, target, args)
	if est == nil || est.ResultSize == nil {
		return est
	}
	switch {
	case stringBuilders[function]:
		est.CostEstimate = est.CostEstimate.Add(est.ResultSize.MultiplyByCostFactor(buildByteCost))
	case listBuilders[function]:
		est.CostEstimate = est.CostEstimate.Add(est.ResultSize.MultiplyByCostFactor(buildElementCost))
	}
	return est
}

// readEstimate is a call's cost without what it builds, and its result size.
// nil leaves the call to CEL's own estimate: calls that build nothing large.
func (e *costEstimator) readEstimate(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	switch {
	case overloadID == overloads.AddString || overloadID == overloads.AddBytes:
		// CEL's own estimate, which Flagpole cannot extend: it is internal.
		if len(args) != 2 {
			return nil
		}
		size := e.size(args[0]).Add(e.size(args[1]))
		return &checker.CallEstimate{CostEstimate: size.MultiplyByCostFactor(traversalByteCost), ResultSize: &size}
	case overloadID == overloads.StringToBytes && len(args) == 1:
		sz := e.size(args[0])
		return &checker.CallEstimate{CostEstimate: sz.MultiplyByCostFactor(traversalByteCost), ResultSize: &checker.SizeEstimate{Min: sz.Min, Max: satMul(sz.Max, 4)}}
	case overloadID == overloads.BytesToString && len(args) == 1:
		sz := e.size(args[0])
		return &checker.CallEstimate{CostEstimate: sz.MultiplyByCostFactor(traversalByteCost), ResultSize: &checker.SizeEstimate{Min: sz.Min / 4, Max: sz.Max}}
	case function == "format" && target != nil && len(args) == 1:
		return e.estimateFormat(*target, args[0])
	case function == "strings.quote" && len(args) == 1:
		in := e.size(args[0])
		// Every byte may become a 4-byte escape (\x01), plus two quotes.
		out := checker.SizeEstimate{Min: in.Min + 2, Max: satAdd(satMul(in.Max, 4), 2)}
		return &checker.CallEstimate{CostEstimate: in.MultiplyByCostFactor(traversalByteCost), ResultSize: &out}
	case function == "jsonpatch.escapeKey" && len(args) == 1:
		// "~" and "/" become two characters.
		in := e.size(args[0])
		out := checker.SizeEstimate{Min: in.Min, Max: satMul(in.Max, 2)}
		return &checker.CallEstimate{CostEstimate: in.MultiplyByCostFactor(traversalByteCost), ResultSize: &out}
	case (function == "indexOf" || function == "lastIndexOf") && target != nil && len(args) >= 1 && (*target).Type().Kind() != types.ListKind:
		// On a string (or a dyn that may be one), a naive search: every
		// offset of the string against the whole substring, as CEL
		// estimates `contains`. Kubernetes charges the string alone.
		str := e.size(*target).MultiplyByCostFactor(traversalByteCost)
		sub := e.size(args[0]).MultiplyByCostFactor(traversalByteCost)
		search := str.Multiply(atLeastOne(sub))
		if k8s := e.CostEstimator.EstimateCallCost(function, overloadID, target, args); k8s != nil {
			search = search.Union(k8s.CostEstimate)
		}
		return &checker.CallEstimate{CostEstimate: search}
	case function == "charAt" && target != nil:
		// The whole string is converted to runes for one character.
		return &checker.CallEstimate{
			CostEstimate: e.size(*target).MultiplyByCostFactor(traversalByteCost).Add(checker.FixedCostEstimate(1)),
			ResultSize:   &checker.SizeEstimate{Min: 0, Max: 1},
		}
	case function == "getQuery" && target != nil:
		// The query (at most the URL) parsed into a map of lists: up to a
		// value per byte.
		return &checker.CallEstimate{CostEstimate: e.size(*target).MultiplyByCostFactor(buildElementCost).Add(checker.FixedCostEstimate(1))}
	}
	return e.CostEstimator.EstimateCallCost(function, overloadID, target, args)
}

func (e *costEstimator) size(n checker.AstNode) checker.SizeEstimate {
	if sz := n.ComputedSize(); sz != nil {
		return *sz
	}
	if sz := e.EstimateSize(n); sz != nil {
		return *sz
	}
	return checker.UnknownSizeEstimate()
}

func (e *costEstimator) note(msg string) {
	for _, n := range e.notes {
		if n == msg {
			return
		}
	}
	e.notes = append(e.notes, msg)
}

// costNotes joins the estimator's explanations for an error message.
func (e *costEstimator) costNotes() string {
	if len(e.notes) == 0 {
		return ""
	}
	return " (" + strings.Join(e.notes, "; ") + ")"
}

const formatNote = "string.format needs a literal format string, and arguments that are literals, numbers, or values read from the context"

// estimateFormat bounds `fmt.format(args)`: each clause consumes the next
// argument, so the result is the format string's own characters plus each
// argument's largest printed form. CEL leaves the result size unknown and
// charges only the format string, but an unbounded precision (`%.99999999f`)
// or a list argument holding one large string many times builds anything.
func (e *costEstimator) estimateFormat(target, args checker.AstNode) *checker.CallEstimate {
	unbounded := func() *checker.CallEstimate {
		e.note(formatNote)
		return &checker.CallEstimate{CostEstimate: checker.UnknownCostEstimate(), ResultSize: &checker.SizeEstimate{Min: 0, Max: math.MaxUint64}}
	}
	lit := target.Expr()
	if lit.Kind() != celast.LiteralKind {
		return unbounded()
	}
	format, _ := lit.AsLiteral().Value().(string)
	clauses, literalBytes, ok := parseFormatClauses(format)
	if !ok {
		return unbounded()
	}
	var elements []celast.Expr
	if a := args.Expr(); a.Kind() == celast.ListKind {
		elements = a.AsList().Elements()
	}
	out := literalBytes
	for i, c := range clauses {
		var arg uint64
		switch {
		case elements == nil:
			// A list read from the context: its elements are context values.
			arg = e.formattedVariableSize(args.Expr())
		case i < len(elements):
			arg = e.formattedSize(elements[i])
		}
		out = satAdd(out, c.bound(arg))
	}
	if out == math.MaxUint64 {
		return unbounded()
	}
	size := checker.SizeEstimate{Min: 0, Max: out}
	return &checker.CallEstimate{CostEstimate: e.size(target).MultiplyByCostFactor(traversalByteCost), ResultSize: &size}
}

// formattedSize bounds how long one argument of a format call prints.
func (e *costEstimator) formattedSize(arg celast.Expr) uint64 {
	if arg.Kind() == celast.LiteralKind {
		switch v := arg.AsLiteral().(type) {
		case types.String:
			return uint64(len(v))
		case types.Bytes:
			return uint64(len(v))
		}
		return maxFormattedScalar
	}
	if t := e.checked.GetType(arg.ID()); t != nil {
		switch t.Kind() {
		case types.IntKind, types.UintKind, types.DoubleKind, types.BoolKind, types.NullTypeKind,
			types.TimestampKind, types.DurationKind, types.TypeKind:
			return maxFormattedScalar
		}
	}
	return e.formattedVariableSize(arg)
}

// formattedVariableSize bounds the printed form of a value read from a
// variable (context.a.b, context["a"][0], targetingKey, flagKey); anything
// else is unbounded.
func (e *costEstimator) formattedVariableSize(arg celast.Expr) uint64 {
	switch root := rootVariable(arg); {
	case e.shadowed[root]:
		return math.MaxUint64
	case root == varContext:
		return MaxContextBytes * maxFormattedContextFactor
	case root == varTargetingKey:
		return flagpole.MaxTargetingKeyLength
	case root == varFlagKey:
		return uint64(maxFlagKeyLength)
	}
	return math.MaxUint64
}

// rootVariable names the identifier a chain of selections and indexes
// starts from (context for context.a["b"][0]), or "".
func rootVariable(e celast.Expr) string {
	for {
		switch e.Kind() {
		case celast.SelectKind:
			e = e.AsSelect().Operand()
			continue
		case celast.CallKind:
			if call := e.AsCall(); call.FunctionName() == "_[_]" && len(call.Args()) == 2 {
				e = call.Args()[0]
				continue
			}
		case celast.IdentKind:
			return e.AsIdent()
		}
		return ""
	}
}

// formatClause is one %-clause of a literal format string.
type formatClause struct {
	verb      byte
	precision uint64
}

// bound is the longest text the clause prints for an argument printing as at
// most arg bytes with %s.
func (c formatClause) bound(arg uint64) uint64 {
	switch c.verb {
	case 's':
		return arg
	case 'x', 'X':
		// Hex doubles a string; a number prints in at most 17 characters.
		return satAdd(satMul(arg, 2), maxFormattedScalar)
	default:
		// d, b, o, e, f: numbers (and NaN, Infinity), plus the precision.
		return satAdd(maxFormattedScalar, c.precision)
	}
}

// parseFormatClauses splits a format string as CEL's string.format does:
// "%%" is a literal percent sign, every other "%" starts a clause with an
// optional ".precision" and a verb. ok is false for a string CEL would
// refuse; the type checker has already reported it.
func parseFormatClauses(format string) (clauses []formatClause, literalBytes uint64, ok bool) {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			literalBytes++
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			literalBytes++
			i++
			continue
		}
		var c formatClause
		j := i + 1
		if j < len(format) && format[j] == '.' {
			j++
			start := j
			for j < len(format) && format[j] >= '0' && format[j] <= '9' {
				c.precision = satAdd(satMul(c.precision, 10), uint64(format[j]-'0'))
				j++
			}
			if j == start {
				return nil, 0, false
			}
		}
		if j >= len(format) {
			return nil, 0, false
		}
		c.verb = format[j]
		clauses = append(clauses, c)
		i = j
	}
	return clauses, literalBytes, true
}

// actualCostEstimator counts, at run time, what costEstimator estimates.
type actualCostEstimator struct {
	library.CostEstimator
}

// CallCost implements interpreter.ActualCostEstimator. Calls of the lists
// extension are counted by listCostTrackers instead.
func (e *actualCostEstimator) CallCost(function, overloadID string, args []ref.Val, result ref.Val) *uint64 {
	read, ok := e.readCost(function, overloadID, args, result)
	if !ok {
		return nil
	}
	cost := read // allocated only here: &read would be allocated for every call
	switch {
	case stringBuilders[function]:
		if isString(result) {
			cost = satAdd(cost, costOf(actualSize(result), buildByteCost))
		}
	case listBuilders[function]:
		cost = satAdd(cost, costOf(actualSize(result), buildElementCost))
	}
	return &cost
}

// readCost is a call's cost without what it builds; ok is false to leave
// the call to CEL's own count.
func (e *actualCostEstimator) readCost(function, overloadID string, args []ref.Val, result ref.Val) (uint64, bool) {
	switch {
	case function == "_+_" && len(args) == 2:
		// Counted here for every overload: a call on dyn values (every
		// context value) is dispatched at run time without an overload id,
		// and CEL's count, keyed by overload id, would charge 1 for
		// `context.s + context.s`.
		if isString(args[0]) && isString(args[1]) {
			return costOf(satAdd(actualSize(args[0]), actualSize(args[1])), traversalByteCost), true
		}
		return 1, true // numbers, and lists: concatenation is lazy
	case (function == "_<_" || function == "_<=_" || function == "_>_" || function == "_>=_") && len(args) == 2 && isString(args[0]) && isString(args[1]):
		return costOf(min(actualSize(args[0]), actualSize(args[1])), traversalByteCost), true
	case (function == "string" || function == "bytes") && len(args) == 1 && isString(args[0]):
		return costOf(actualSize(args[0]), traversalByteCost), true
	case (overloadID == overloads.ExtFormatString || function == "strings.quote" || function == "jsonpatch.escapeKey") && len(args) >= 1:
		return costOf(actualSize(args[0]), traversalByteCost), true
	case (function == "indexOf" || function == "lastIndexOf") && len(args) >= 2 && isString(args[0]):
		str := costOf(actualSize(args[0]), traversalByteCost)
		sub := max(costOf(actualSize(args[1]), traversalByteCost), 1)
		return satMul(str, sub), true
	case function == "charAt" && len(args) >= 1:
		return satAdd(costOf(actualSize(args[0]), traversalByteCost), 1), true
	case function == "getQuery" && len(args) == 1:
		var n uint64
		if u, ok := args[0].Value().(*url.URL); ok {
			n = uint64(len(u.RawQuery))
		}
		return satAdd(costOf(n, buildElementCost), 1), true
	}
	if c := e.CostEstimator.CallCost(function, overloadID, args, result); c != nil {
		return *c, true
	}
	return 0, false
}

func isString(v ref.Val) bool {
	switch v.(type) {
	case types.String, types.Bytes:
		return true
	}
	return false
}

// actualSize is a string's length in bytes (what is allocated, without a
// traversal), or a list's or map's number of elements.
func actualSize(v ref.Val) uint64 {
	if s, ok := v.(types.String); ok {
		return uint64(len(s))
	}
	if sz, ok := v.(traits.Sizer); ok {
		if n, ok := sz.Size().(types.Int); ok && n > 0 {
			return uint64(n)
		}
	}
	return 1
}

// The lists extension registers its own estimators and trackers, which CEL
// consults before Flagpole's; these are registered in the environment after
// the extension's, and replace them, for the calls that build lists.

func listCostEstimators() []checker.CostOption {
	return []checker.CostOption{
		checker.OverloadCostEstimate("lists_range", estimateListsRange),
		checker.OverloadCostEstimate("list_flatten", estimateListFlatten),
		checker.OverloadCostEstimate("list_flatten_int", estimateListFlatten),
		checker.OverloadCostEstimate("list_slice", estimateListCopy),
		checker.OverloadCostEstimate("list_reverse", estimateListCopy),
	}
}

func listCostTrackers() []interpreter.CostTrackerOption {
	return []interpreter.CostTrackerOption{
		interpreter.OverloadCostTracker("lists_range", trackBuiltList(rangeElementCost)),
		interpreter.OverloadCostTracker("list_flatten", trackListFlatten),
		interpreter.OverloadCostTracker("list_flatten_int", trackListFlatten),
		interpreter.OverloadCostTracker("list_slice", trackBuiltList(buildElementCost)),
		interpreter.OverloadCostTracker("list_reverse", trackBuiltList(buildElementCost)),
	}
}

const listCallCost = 1 + common.ListCreateBaseCost

func builtList(size checker.SizeEstimate, perElement float64) *checker.CallEstimate {
	return &checker.CallEstimate{
		CostEstimate: size.MultiplyByCostFactor(perElement).Add(checker.FixedCostEstimate(listCallCost)),
		ResultSize:   &size,
	}
}

func trackBuiltList(perElement float64) interpreter.FunctionTracker {
	return func(_ []ref.Val, result ref.Val) *uint64 {
		cost := satAdd(costOf(actualSize(result), perElement), listCallCost)
		return &cost
	}
}

func estimateListsRange(_ checker.CostEstimator, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	if target != nil || len(args) != 1 {
		return nil
	}
	n := literalUint(args[0].Expr(), math.MaxUint64)
	return builtList(checker.SizeEstimate{Min: n, Max: n}, rangeElementCost)
}

// estimateListCopy: slice and reverse copy at most their input.
func estimateListCopy(estimator checker.CostEstimator, target *checker.AstNode, _ []checker.AstNode) *checker.CallEstimate {
	if target == nil {
		return nil
	}
	size := checker.UnknownSizeEstimate()
	if sz := (*target).ComputedSize(); sz != nil {
		size = *sz
	} else if sz := estimator.EstimateSize(*target); sz != nil {
		size = *sz
	}
	return builtList(size, buildElementCost)
}

// estimateListFlatten: the extension sizes a flattened list as its input,
// but [context.xs, context.xs, ...].flatten() holds every element of every
// member. The result is bounded when the input is a list read from the
// context (whose elements all fit in it), or a list literal whose members
// are list literals or lists read from the context.
func estimateListFlatten(_ checker.CostEstimator, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	if target == nil || len(args) > 1 {
		return nil
	}
	depth := uint64(1)
	if len(args) == 1 {
		depth = literalUint(args[0].Expr(), math.MaxUint64)
	}
	n := flattenedSize((*target).Expr(), depth)
	return builtList(checker.SizeEstimate{Min: 0, Max: n}, buildElementCost)
}

func flattenedSize(list celast.Expr, depth uint64) uint64 {
	if rootVariable(list) == varContext {
		return MaxContextBytes
	}
	if list.Kind() != celast.ListKind {
		return math.MaxUint64
	}
	var n uint64
	for _, el := range list.AsList().Elements() {
		if depth == 0 || (el.Kind() != celast.ListKind && rootVariable(el) != varContext) {
			n = satAdd(n, 1)
			continue
		}
		n = satAdd(n, flattenedSize(el, depth-1))
	}
	return n
}

func trackListFlatten(args []ref.Val, result ref.Val) *uint64 {
	depth := uint64(1)
	if len(args) == 2 {
		if d, ok := args[1].(types.Int); ok {
			depth = uint64(max(d, 0))
		}
	}
	cost := satAdd(satMul(depth, actualSize(args[0])), satAdd(costOf(actualSize(result), buildElementCost), listCallCost))
	return &cost
}

// literalUint is e's value if it is a non-negative integer literal.
func literalUint(e celast.Expr, otherwise uint64) uint64 {
	if e.Kind() == celast.LiteralKind {
		if i, ok := e.AsLiteral().(types.Int); ok {
			return uint64(max(i, 0))
		}
	}
	return otherwise
}

func costOf(size uint64, perUnit float64) uint64 {
	c := math.Ceil(float64(size) * perUnit)
	if c >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(c)
}

func atLeastOne(c checker.CostEstimate) checker.CostEstimate {
	c.Min, c.Max = max(c.Min, 1), max(c.Max, 1)
	return c
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

func satMul(a, b uint64) uint64 {
	if b != 0 && a > math.MaxUint64/b {
		return math.MaxUint64
	}
	return a * b
}
