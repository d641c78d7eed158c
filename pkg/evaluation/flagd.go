package evaluation

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/twmb/murmur3"
	"golang.org/x/mod/semver"
)

// flagd-compatible CEL functions.
//
// flagd evaluates targeting rules with JsonLogic (github.com/diegoholiveira/
// jsonlogic v3.9.1, the version flagd core v0.17.0 pins) and four operators
// of its own (fractional, sem_ver, starts_with, ends_with). Its values are
// JSON values, compared loosely: "1" == 1, [] is false, a missing attribute is
// null. CEL's built-ins compare strictly and fail on a missing key, so a
// translation of JsonLogic into plain CEL would answer some contexts
// differently. These functions are JsonLogic's and flagd's semantics, step
// for step, over CEL values (a context number, int or double, is the float64
// flagd sees); pkg/flagd translates targeting rules into calls of them.
// docs/evaluation.md describes each function with its edge cases.
//
// A few inputs make flagd's evaluation panic (an `in` of a number in a
// string, `cat` of a boolean); flagd answers them with PARSE_ERROR. The
// functions return an error wrapping errFlagdParse there, which the engine
// reports as PARSE_ERROR too (runtimeErrorCode).

// errFlagdParse marks an input on which flagd's targeting evaluation fails,
// which flagd answers with PARSE_ERROR.
var errFlagdParse = errors.New("flagd cannot evaluate this targeting rule")

// runtimeErrorCode is the OpenFeature error code of an expression's runtime
// error: PARSE_ERROR where flagd answers one, GENERAL otherwise.
func runtimeErrorCode(err error) string {
	if errors.Is(err, errFlagdParse) {
		return ErrorParse
	}
	return ErrorGeneral
}

func flagdParseError(format string, args ...any) ref.Val {
	return types.WrapErr(fmt.Errorf("%w: %s", errFlagdParse, fmt.Sprintf(format, args...)))
}

// Overload IDs, which the cost estimator and tracker key on.
const (
	flagdTruthy          = "flagd_truthy"
	flagdNot             = "flagd_not"
	flagdEquals          = "flagd_equals"
	flagdStrictEquals    = "flagd_strict_equals"
	flagdLess            = "flagd_less"
	flagdLessOrEquals    = "flagd_less_or_equals"
	flagdIn              = "flagd_is_in"
	flagdVar             = "flagd_var"
	flagdVarDefault      = "flagd_var_default"
	flagdCat             = "flagd_cat"
	flagdStartsWith      = "flagd_starts_with"
	flagdStartsWithArgs  = "flagd_starts_with_args"
	flagdEndsWith        = "flagd_ends_with"
	flagdEndsWithArgs    = "flagd_ends_with_args"
	flagdSemver          = "flagd_semver"
	flagdSemverArgs      = "flagd_semver_args"
	flagdFractional      = "flagd_fractional"
	flagdFractionalV1    = "flagd_fractional_v1"
	flagdBucketKey       = "flagd_bucket_key"
	flagdBucketKeyV1     = "flagd_bucket_key_v1"
	flagdVariant         = "flagd_variant"
	flagdClause          = "flagd_clause"
	flagdFunctionsPrefix = "flagd."
)

var contextType = cel.MapType(cel.StringType, cel.DynType)

// flagdFunctions declares the functions in the engine's environment.
func flagdFunctions() []cel.EnvOption {
	dyn := cel.DynType
	unary := func(name, id string, result *cel.Type, fn func(ref.Val) ref.Val) cel.EnvOption {
		return cel.Function(name, cel.Overload(id, []*cel.Type{dyn}, result, cel.UnaryBinding(fn)))
	}
	binary := func(id string, result *cel.Type, fn func(a, b ref.Val) ref.Val) cel.FunctionOpt {
		return cel.Overload(id, []*cel.Type{dyn, dyn}, result, cel.BinaryBinding(fn))
	}
	boolOf := func(fn func(a, b ref.Val) bool) func(a, b ref.Val) ref.Val {
		return func(a, b ref.Val) ref.Val { return types.Bool(fn(a, b)) }
	}
	return []cel.EnvOption{
		unary("flagd.truthy", flagdTruthy, cel.BoolType, func(v ref.Val) ref.Val { return types.Bool(isTrue(v)) }),
		unary("flagd.not", flagdNot, cel.BoolType, flagdNegate),
		unary("flagd.clause", flagdClause, dyn, flagdClauseValue),
		cel.Function("flagd.equals", binary(flagdEquals, cel.BoolType, boolOf(looseEquals))),
		cel.Function("flagd.strictEquals", binary(flagdStrictEquals, cel.BoolType, boolOf(strictEquals))),
		cel.Function("flagd.less", binary(flagdLess, cel.BoolType, boolOf(less))),
		cel.Function("flagd.lessOrEquals", binary(flagdLessOrEquals, cel.BoolType, boolOf(func(a, b ref.Val) bool {
			return less(a, b) || looseEquals(a, b)
		}))),
		cel.Function("flagd.isIn", binary(flagdIn, cel.BoolType, flagdInValue)),
		cel.Function("flagd.var",
			cel.Overload(flagdVar, []*cel.Type{dyn, cel.StringType}, dyn, cel.BinaryBinding(func(root, path ref.Val) ref.Val {
				return varLookup(root, string(path.(types.String)), types.NullValue)
			})),
			cel.Overload(flagdVarDefault, []*cel.Type{dyn, cel.StringType, dyn}, dyn, cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				return varLookup(args[0], string(args[1].(types.String)), args[2])
			}))),
		unary("flagd.cat", flagdCat, cel.StringType, concat),
		cel.Function("flagd.startsWith",
			binary(flagdStartsWith, dyn, func(a, b ref.Val) ref.Val { return stringAffix(a, b, strings.HasPrefix) }),
			cel.Overload(flagdStartsWithArgs, []*cel.Type{dyn}, dyn, cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withArgs(v, 2, func(a []ref.Val) ref.Val { return stringAffix(a[0], a[1], strings.HasPrefix) })
			}))),
		cel.Function("flagd.endsWith",
			binary(flagdEndsWith, dyn, func(a, b ref.Val) ref.Val { return stringAffix(a, b, strings.HasSuffix) }),
			cel.Overload(flagdEndsWithArgs, []*cel.Type{dyn}, dyn, cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withArgs(v, 2, func(a []ref.Val) ref.Val { return stringAffix(a[0], a[1], strings.HasSuffix) })
			}))),
		cel.Function("flagd.semver",
			cel.Overload(flagdSemver, []*cel.Type{dyn, dyn, dyn}, dyn, cel.FunctionBinding(func(a ...ref.Val) ref.Val {
				return semverCompare(a[0], a[1], a[2])
			})),
			cel.Overload(flagdSemverArgs, []*cel.Type{dyn}, dyn, cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withArgs(v, 3, func(a []ref.Val) ref.Val { return semverCompare(a[0], a[1], a[2]) })
			}))),
		cel.Function("flagd.fractional", cel.Overload(flagdFractional, []*cel.Type{contextType, cel.StringType, dyn}, dyn,
			cel.FunctionBinding(func(a ...ref.Val) ref.Val { return fractionalV2(a[0], string(a[1].(types.String)), a[2]) }))),
		cel.Function("flagd.fractionalV1", cel.Overload(flagdFractionalV1, []*cel.Type{contextType, cel.StringType, dyn}, dyn,
			cel.FunctionBinding(func(a ...ref.Val) ref.Val { return fractionalV1(a[0], string(a[1].(types.String)), a[2]) }))),
		cel.Function("flagd.bucketKey", cel.Overload(flagdBucketKey, []*cel.Type{contextType, cel.StringType, dyn}, dyn,
			cel.FunctionBinding(func(a ...ref.Val) ref.Val { return bucketKey(a[0], string(a[1].(types.String)), a[2], false) }))),
		cel.Function("flagd.bucketKeyV1", cel.Overload(flagdBucketKeyV1, []*cel.Type{contextType, cel.StringType, dyn}, dyn,
			cel.FunctionBinding(func(a ...ref.Val) ref.Val { return bucketKey(a[0], string(a[1].(types.String)), a[2], true) }))),
		cel.Function("flagd.variant", cel.Overload(flagdVariant, []*cel.Type{dyn, cel.ListType(cel.StringType)}, dyn,
			cel.BinaryBinding(variantOf))),
	}
}

// valueKind is what a CEL value is as the JSON value flagd sees.
type valueKind int

const (
	kindOther valueKind = iota
	kindNull
	kindBool
	kindNumber
	kindString
	kindList
	kindMap
)

func kindOf(v ref.Val) valueKind {
	switch v.(type) {
	case types.Null:
		return kindNull
	case types.Bool:
		return kindBool
	case types.Int, types.Uint, types.Double:
		return kindNumber
	case types.String:
		return kindString
	}
	switch v.(type) {
	case traits.Mapper:
		return kindMap
	case traits.Lister:
		return kindList
	}
	return kindOther
}

// number is a number's value as flagd's float64.
func number(v ref.Val) float64 {
	switch n := v.(type) {
	case types.Int:
		return float64(n)
	case types.Uint:
		return float64(n)
	case types.Double:
		return float64(n)
	}
	return math.NaN()
}

func listOf(v ref.Val) []ref.Val {
	l := v.(traits.Lister)
	n := int(l.Size().(types.Int))
	out := make([]ref.Val, n)
	for i := range n {
		out[i] = l.Get(types.Int(i))
	}
	return out
}

func sizeOf(v ref.Val) int {
	return int(v.(traits.Sizer).Size().(types.Int))
}

// isTrue is JsonLogic's truthiness: false, 0, "", [], {} and null are false.
func isTrue(v ref.Val) bool {
	switch kindOf(v) {
	case kindBool:
		return bool(v.(types.Bool))
	case kindNumber:
		return number(v) != 0
	case kindString:
		return len(v.(types.String)) > 0
	case kindList, kindMap:
		return sizeOf(v) > 0
	}
	return false
}

// flagdNegate is JsonLogic's `!` of an evaluated operand: a non-empty list
// is the operator's argument list, and its first element is negated.
func flagdNegate(v ref.Val) ref.Val {
	if kindOf(v) == kindList && sizeOf(v) > 0 {
		return types.Bool(!isTrue(v.(traits.Lister).Get(types.Int(0))))
	}
	return types.Bool(!isTrue(v))
}

// jsToNumber is JavaScript's Number() as jsonlogic implements it: null 0,
// booleans 0 and 1, a blank string 0, a string Go's ParseFloat reads (an
// out-of-range one ±Inf), anything else NaN.
func jsToNumber(v ref.Val) float64 {
	switch kindOf(v) {
	case kindNull:
		return 0
	case kindNumber:
		return number(v)
	case kindBool:
		if v.(types.Bool) {
			return 1
		}
		return 0
	case kindString:
		s := string(v.(types.String))
		if strings.TrimSpace(s) == "" {
			return 0
		}
		n, err := strconv.ParseFloat(s, 64)
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return n
		}
	}
	return math.NaN()
}

// looseEquals is JsonLogic's `==`: null equals only null, two strings
// compare as strings, anything else as numbers.
func looseEquals(a, b ref.Val) bool {
	ka, kb := kindOf(a), kindOf(b)
	if ka == kindNull || kb == kindNull {
		return ka == kb
	}
	if ka == kindString && kb == kindString {
		return a.(types.String) == b.(types.String)
	}
	return jsToNumber(a) == jsToNumber(b)
}

// strictEquals is JsonLogic's `===`: values of the same JSON kind that are
// loosely equal (so two lists or two objects are never equal).
func strictEquals(a, b ref.Val) bool {
	ka, kb := kindOf(a), kindOf(b)
	if ka == kindNull || kb == kindNull {
		return ka == kb
	}
	return ka == kb && looseEquals(a, b)
}

// less is JsonLogic's `<`: two strings compare by bytes, anything else as
// numbers (NaN compares false).
func less(a, b ref.Val) bool {
	if kindOf(a) == kindString && kindOf(b) == kindString {
		return a.(types.String) < b.(types.String)
	}
	return jsToNumber(b) > jsToNumber(a)
}

// typingToNumber is jsonlogic's internal number conversion (used by `in`
// and by list indexes): a string is ParseFloat's value (0 when it is not a
// number), a number itself; anything else makes jsonlogic panic.
func typingToNumber(v ref.Val) (float64, bool) {
	switch kindOf(v) {
	case kindString:
		n, _ := strconv.ParseFloat(string(v.(types.String)), 64)
		return n, true
	case kindNumber:
		return number(v), true
	}
	return 0, false
}

// flagdInValue is JsonLogic's `in` of evaluated arguments a and b: a
// substring of a string, or an element of a list, where a list element that
// is itself a list [lo, hi] is a numeric range.
func flagdInValue(a, b ref.Val) ref.Val {
	switch kindOf(b) {
	case kindString:
		if kindOf(a) != kindString {
			return flagdParseError("in: %s is not a string, so it cannot be a substring", kindName(a))
		}
		return types.Bool(strings.Contains(string(b.(types.String)), string(a.(types.String))))
	case kindList:
	default:
		return types.False
	}
	for _, el := range listOf(b) {
		if kindOf(el) == kindList {
			r := listOf(el)
			if len(r) < 2 {
				return flagdParseError("in: a range needs two bounds, not %d", len(r))
			}
			v, ok1 := typingToNumber(a)
			lo, ok2 := typingToNumber(r[0])
			if !ok1 || !ok2 {
				return flagdParseError("in: a range compares numbers or strings")
			}
			if !(v >= lo) {
				continue
			}
			hi, ok := typingToNumber(r[1])
			if !ok {
				return flagdParseError("in: a range compares numbers or strings")
			}
			if hi >= v {
				return types.True
			}
			continue
		}
		if kindOf(a) == kindNumber {
			n, ok := typingToNumber(el)
			if !ok {
				return flagdParseError("in: %s cannot be compared with the number %v", kindName(el), number(a))
			}
			if n == number(a) {
				return types.True
			}
			continue
		}
		switch ka, ke := kindOf(a), kindOf(el); {
		case ka == kindMap && ke == kindMap:
			// Go's == on two maps in interfaces panics in flagd.
			return flagdParseError("in: objects cannot be compared")
		case ka != ke || ka == kindList || ka == kindMap:
		case ka == kindNull:
			return types.True
		case a.Equal(el) == types.True:
			return types.True
		}
	}
	return types.False
}

func kindName(v ref.Val) string {
	switch kindOf(v) {
	case kindNull:
		return "null"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindString:
		return "a string"
	case kindList:
		return "a list"
	case kindMap:
		return "an object"
	}
	return string(v.Type().(ref.Type).TypeName())
}

// varLookup is JsonLogic's `var` of a dotted path in root: the path's
// non-empty parts, each a key of an object or an index of a list (a part
// that is not a number indexes 0, as in jsonlogic); a missing or null value
// anywhere is def.
func varLookup(root ref.Val, path string, def ref.Val) ref.Val {
	v := root
	for part := range strings.SplitSeq(path, ".") {
		if part == "" {
			continue
		}
		switch kindOf(v) {
		case kindMap:
			found, ok := v.(traits.Mapper).Find(types.String(part))
			if !ok {
				return def
			}
			v = found
		case kindList:
			f, _ := strconv.ParseFloat(part, 64)
			// Go converts NaN, ±Inf and numbers beyond int64 to the
			// most negative int on amd64: out of range.
			if math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
				return def
			}
			pos := int64(f)
			if pos < 0 || pos >= int64(sizeOf(v)) {
				return def
			}
			v = v.(traits.Lister).Get(types.Int(pos))
		default:
			return def
		}
		if kindOf(v) == kindNull {
			return def
		}
	}
	return v
}

// toJSString is jsonlogic's string conversion for `cat`: null is "", a
// number Go's shortest decimal form without an exponent.
func toJSString(v ref.Val) (string, bool) {
	switch kindOf(v) {
	case kindString:
		return string(v.(types.String)), true
	case kindNull:
		return "", true
	case kindNumber:
		return strconv.FormatFloat(number(v), 'f', -1, 64), true
	}
	return "", false
}

// concat is JsonLogic's `cat` of its evaluated argument: a string is
// itself; the strings of a list's elements are joined and, for two or more,
// trimmed of surrounding white space.
func concat(v ref.Val) ref.Val {
	switch kindOf(v) {
	case kindString:
		return v
	case kindList:
	default:
		return flagdParseError("cat: %s is not a list of strings", kindName(v))
	}
	els := listOf(v)
	var b strings.Builder
	for _, el := range els {
		s, ok := toJSString(el)
		if !ok {
			return flagdParseError("cat: %s cannot be concatenated", kindName(el))
		}
		b.WriteString(s)
	}
	if len(els) < 2 {
		return types.String(b.String())
	}
	return types.String(strings.TrimSpace(b.String()))
}

// withArgs calls fn with the elements of v when v is a list of n: a flagd
// operator given another number of arguments answers null.
func withArgs(v ref.Val, n int, fn func([]ref.Val) ref.Val) ref.Val {
	if kindOf(v) != kindList || sizeOf(v) != n {
		return types.NullValue
	}
	return fn(listOf(v))
}

// stringAffix is flagd's starts_with and ends_with: two strings, else null.
func stringAffix(a, b ref.Val, fn func(s, affix string) bool) ref.Val {
	if kindOf(a) != kindString || kindOf(b) != kindString {
		return types.NullValue
	}
	return types.Bool(fn(string(a.(types.String)), string(b.(types.String))))
}

// semverVersion is flagd's reading of a sem_ver operand: a string as it
// is, anything else as Go's %v prints its JSON value; one leading "V"
// becomes "v", a missing "v" is added, and golang.org/x/mod/semver must
// accept the result (so "1" and "1.2" are 1.0.0 and 1.2.0).
func semverVersion(v ref.Val) (string, bool) {
	var s string
	switch kindOf(v) {
	case kindString:
		s = string(v.(types.String))
	case kindNumber:
		s = fmt.Sprintf("%v", number(v))
	case kindBool:
		s = fmt.Sprintf("%v", bool(v.(types.Bool)))
	default:
		// "<nil>", "[…]" and "map[…]" are no versions.
		return "", false
	}
	if !strings.HasPrefix(s, "v") {
		s = "v" + strings.TrimPrefix(s, "V")
	}
	return s, semver.IsValid(s)
}

// semverCompare is flagd's sem_ver: a version, an operator and a version;
// null when either is no version or the operator is unknown.
func semverCompare(a, op, b ref.Val) ref.Val {
	va, ok := semverVersion(a)
	if !ok {
		return types.NullValue
	}
	o, ok := op.(types.String)
	if !ok {
		return types.NullValue
	}
	vb, ok := semverVersion(b)
	if !ok {
		return types.NullValue
	}
	c := semver.Compare(va, vb)
	switch o {
	case "=":
		return types.Bool(c == 0)
	case "!=":
		return types.Bool(c != 0)
	case "<":
		return types.Bool(c < 0)
	case "<=":
		return types.Bool(c <= 0)
	case ">":
		return types.Bool(c > 0)
	case ">=":
		return types.Bool(c >= 0)
	case "^":
		return types.Bool(semver.Compare(semver.Major(va), semver.Major(vb)) == 0)
	case "~":
		return types.Bool(semver.Compare(semver.MajorMinor(va), semver.MajorMinor(vb)) == 0)
	}
	return types.NullValue
}

// contextTargetingKey is the context's targetingKey as flagd reads it.
func contextTargetingKey(context ref.Val) (ref.Val, bool) {
	m, ok := context.(traits.Mapper)
	if !ok {
		return types.NullValue, false
	}
	return m.Find(types.String("targetingKey"))
}

// bucketKey is the string flagd's fractional hashes for a first argument
// first: itself when it is a string; for null, flagKey + the context's
// targetingKey; otherwise none (null). fractional-v2 requires a non-empty
// string targeting key, v1 any string. A list as first argument is one flagd
// reads as a distribution entry, which a rollout cannot express: an error.
func bucketKey(context ref.Val, flagKey string, first ref.Val, v1 bool) ref.Val {
	switch kindOf(first) {
	case kindString:
		return first
	case kindNull:
	case kindList:
		return types.NewErr("fractional: the bucketing value is a list, which flagd reads as a distribution entry")
	default:
		return types.NullValue
	}
	tk, ok := contextTargetingKey(context)
	s, isString := tk.(types.String)
	if !ok || !isString || (!v1 && s == "") {
		return types.NullValue
	}
	return types.String(flagKey) + s
}

// fractionalV2 is flagd's fractional operator since flagd core v0.16 of its
// evaluated argument list: an optional bucketing value, then entries
// [value, weight] (weight 1 when omitted or null, integral, negative ones
// count as 0, all at most 2³¹−1 together); the value of the entry the hash
// falls into, or null where flagd answers null.
func fractionalV2(context ref.Val, flagKey string, args ref.Val) ref.Val {
	vals, ok := fractionalArgs(args, 1)
	if !ok {
		return types.NullValue
	}
	var key ref.Val
	entries := vals
	switch kindOf(vals[0]) {
	case kindString, kindNull:
		key, entries = bucketKey(context, flagKey, vals[0], false), vals[1:]
	case kindList:
		// The first argument is an entry; bucket by the targeting key.
		key = bucketKey(context, flagKey, types.NullValue, false)
	default:
		// flagd reads it as an entry, which is not a list: null.
		return types.NullValue
	}
	if kindOf(key) != kindString {
		return types.NullValue
	}
	values := make([]ref.Val, len(entries))
	weights := make([]int64, len(entries))
	var total int64
	for i, e := range entries {
		if kindOf(e) != kindList || sizeOf(e) == 0 {
			return types.NullValue
		}
		parts := listOf(e)
		switch kindOf(parts[0]) {
		case kindString, kindBool, kindNumber, kindNull:
			values[i] = parts[0]
		default:
			return types.NullValue
		}
		w := int64(1)
		if len(parts) >= 2 {
			switch kindOf(parts[1]) {
			case kindNumber:
				f := number(parts[1])
				w = int64Amd64(f)
				if float64(w) != f || w > math.MaxInt32 {
					return types.NullValue
				}
			case kindNull:
			default:
				return types.NullValue
			}
		}
		weights[i] = max(w, 0)
		total += weights[i]
	}
	if total > math.MaxInt32 || total == 0 {
		return types.NullValue
	}
	bucket := (uint64(murmur3.StringSum32(string(key.(types.String)))) * uint64(total)) >> 32
	var upper uint64
	for i, w := range weights {
		upper += uint64(w)
		if bucket < upper {
			return values[i]
		}
	}
	return types.NullValue
}

// fractionalArgs is fractional's argument list, if it is a list of at
// least least elements (flagd answers null otherwise).
func fractionalArgs(args ref.Val, least int) ([]ref.Val, bool) {
	if kindOf(args) != kindList {
		return nil, false
	}
	vals := listOf(args)
	return vals, len(vals) >= least
}

// int64Amd64 converts f as Go does on amd64: NaN, ±Inf and values beyond
// int64 become its most negative value.
func int64Amd64(f float64) int64 {
	if math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
		return math.MinInt64
	}
	return int64(f)
}

// fractionalV1 is flagd's fractional operator before 2026 (flagd core up to
// v0.13): at least two arguments, an optional bucketing value, entries whose
// value is a string and whose weight, when a number, is truncated to an
// integer (any other weight counts 1); the variant the v1 bucketing picks,
// "" where it picks none, or null where flagd answers null.
func fractionalV1(context ref.Val, flagKey string, args ref.Val) ref.Val {
	vals, ok := fractionalArgs(args, 2)
	if !ok {
		return types.NullValue
	}
	entries := vals
	switch kindOf(vals[0]) {
	case kindString, kindNull:
		entries = vals[1:]
	}
	first := vals[0]
	if kindOf(first) != kindString {
		first = types.NullValue
	}
	key := bucketKey(context, flagKey, first, true)
	if kindOf(key) != kindString {
		return types.NullValue
	}
	names := make([]string, len(entries))
	weights := make([]int, len(entries))
	for i, e := range entries {
		if kindOf(e) != kindList || sizeOf(e) == 0 {
			return types.NullValue
		}
		parts := listOf(e)
		name, ok := parts[0].(types.String)
		if !ok {
			return types.NullValue
		}
		names[i] = string(name)
		weights[i] = 1
		if len(parts) >= 2 && kindOf(parts[1]) == kindNumber {
			weights[i] = int(int64Amd64(number(parts[1])))
		}
	}
	if i := flagdV1Bucket(string(key.(types.String)), weights); i >= 0 {
		return types.String(names[i])
	}
	return types.String("")
}

// flagdV1Bucket is fractional-v1's arithmetic: the index of the entry the
// key's hash falls into, or -1 for none. BucketFlagdV1 and fractionalV1
// share it.
func flagdV1Bucket(key string, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	if total == 0 {
		return -1
	}
	hash := int32(murmur3.StringSum32(key))
	bucket := math.Abs(float64(hash)) / math.MaxInt32 * 100
	rangeEnd := float64(0)
	for i, w := range weights {
		rangeEnd += 100 * float64(w) / float64(total)
		if bucket < rangeEnd {
			return i
		}
	}
	return -1
}

// variantOf is how flagd reads a targeting result as a variant name: null
// is none (the default variant); anything else is its JSON text (Go's
// encoding/json, HTML-escaped) with every double quote removed, which must
// be one of names, or the evaluation is an error (GENERAL).
func variantOf(v, names ref.Val) ref.Val {
	if kindOf(v) == kindNull {
		return types.NullValue
	}
	native, err := jsonNative(v)
	if err != nil {
		return types.WrapErr(err)
	}
	text, err := json.Marshal(native)
	if err != nil {
		return types.WrapErr(err)
	}
	name := strings.ReplaceAll(string(text), `"`, "")
	for _, n := range listOf(names) {
		if string(n.(types.String)) == name {
			return types.String(name)
		}
	}
	var all []string
	for _, n := range listOf(names) {
		all = append(all, string(n.(types.String)))
	}
	return types.NewErr("targeting returned %s, which is not one of the flag's variants (%s)", text, strings.Join(all, ", "))
}

// jsonNative is v as the Go value flagd holds: numbers float64.
func jsonNative(v ref.Val) (any, error) {
	switch kindOf(v) {
	case kindNull:
		return nil, nil
	case kindBool:
		return bool(v.(types.Bool)), nil
	case kindNumber:
		return number(v), nil
	case kindString:
		return string(v.(types.String)), nil
	case kindList:
		els := listOf(v)
		out := make([]any, len(els))
		for i, e := range els {
			n, err := jsonNative(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case kindMap:
		out := map[string]any{}
		it := v.(traits.Mapper).Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("an object key is %s, not a string", kindName(k))
			}
			n, err := jsonNative(v.(traits.Mapper).Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = n
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is no JSON value", kindName(v))
}

// flagdClauseValue is the value of an `if` branch as jsonlogic returns it:
// jsonlogic evaluates an object with one key that a branch yields once more,
// as a rule; an object read from the context in that place is an error here
// (flagd would run it as JsonLogic, or fail on an unknown operator).
func flagdClauseValue(v ref.Val) ref.Val {
	if kindOf(v) == kindMap && sizeOf(v) == 1 {
		return flagdParseError("an if branch yields an object with one key, which flagd evaluates as a JsonLogic rule")
	}
	return v
}
