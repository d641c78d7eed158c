package flagd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/common"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// ExportOptions tunes an export.
type ExportOptions struct {
	// Fractional is the bucketing of the flagd the document is for; empty
	// means FractionalV2. A rollout of the other bucketing is refused.
	Fractional Fractional
}

// Export writes flags, and the Segments they name, as one flagd document
// (indented JSON), for flags whose rules flagd can express; the rest are
// problems with their field paths. A flag imported from flagd and not
// changed since is written as it was imported (its annotations say how);
// any other flag's rules are translated back: its CEL must be the
// flagd-compatible functions the import writes, which have exact JsonLogic
// equivalents.
func Export(flags []v1beta1.Flag, segments []v1beta1.Segment, opts ExportOptions) ([]byte, error) {
	if opts.Fractional == "" {
		opts.Fractional = FractionalV2
	}
	ex := &exporter{opts: opts, segments: map[string]*v1beta1.Segment{}, evaluators: map[string]string{}}
	for i := range segments {
		ex.segments[segments[i].Name] = &segments[i]
	}
	ordered := slices.Clone(flags)
	slices.SortFunc(ordered, func(a, b v1beta1.Flag) int { return strings.Compare(a.Name, b.Name) })
	out := &value{typ: typeObject}
	out.obj = append(out.obj, member{key: "$schema", val: &value{typ: typeString, s: "https://flagd.dev/schema/v0/flags.json"}})
	flagsObj := &value{typ: typeObject}
	for i := range ordered {
		if v := ex.flag(&ordered[i]); v != nil {
			flagsObj.obj = append(flagsObj.obj, member{key: ordered[i].Name, val: v})
		}
	}
	out.obj = append(out.obj, member{key: "flags", val: flagsObj})
	if len(ex.evaluators) > 0 {
		evs := &value{typ: typeObject}
		names := make([]string, 0, len(ex.evaluators))
		for n := range ex.evaluators {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			v, _ := decodeJSON([]byte(ex.evaluators[n]), nil)
			evs.obj = append(evs.obj, member{key: n, val: v})
		}
		out.obj = append(out.obj, member{key: "$evaluators", val: evs})
	}
	if len(ex.errs) > 0 {
		return nil, ex.errs
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(out.marshal()), "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

type exporter struct {
	opts       ExportOptions
	segments   map[string]*v1beta1.Segment
	evaluators map[string]string
	errs       Problems
}

func (ex *exporter) problem(f *v1beta1.Flag, path *field.Path, format string, args ...any) {
	ex.errs = append(ex.errs, Problem{Source: "Flag " + f.Name, Path: path.String(), Detail: fmt.Sprintf(format, args...)})
}

func (ex *exporter) flag(f *v1beta1.Flag) *value {
	before := len(ex.errs)
	spec := field.NewPath("spec")
	out := &value{typ: typeObject}
	state := "ENABLED"
	def := string(f.Spec.DefaultVariant)
	if f.Spec.State == v1beta1.FlagStateDisabled {
		state = "DISABLED"
		if def != "" {
			ex.problem(f, spec.Child("defaultVariant"), "flagd answers a DISABLED flag with the caller's default, Flagpole with %q: clear spec.defaultVariant (an import keeps flagd's in annotation %s) to export it", def, AnnotationDefaultVariant)
		}
		def = f.Annotations[AnnotationDefaultVariant]
	}
	out.obj = append(out.obj, member{key: "state", val: &value{typ: typeString, s: state}})
	variants := &value{typ: typeObject}
	for i, v := range f.Spec.Variants {
		val, err := decodeJSON(v.Value.Raw, nil)
		if err != nil {
			ex.problem(f, spec.Child("variants").Index(i).Child("value"), "%v", err)
			continue
		}
		variants.obj = append(variants.obj, member{key: string(v.Name), val: val})
	}
	out.obj = append(out.obj, member{key: "variants", val: variants})
	if def != "" {
		out.obj = append(out.obj, member{key: "defaultVariant", val: &value{typ: typeString, s: def}})
	}
	if targeting := ex.targeting(f); targeting != nil {
		out.obj = append(out.obj, member{key: "targeting", val: targeting})
	}
	if md := f.Annotations[AnnotationMetadata]; md != "" {
		v, err := decodeJSON([]byte(md), nil)
		if err != nil || v.typ != typeObject {
			ex.problem(f, field.NewPath("metadata", "annotations").Key(AnnotationMetadata), "not a JSON object: %v", err)
		} else {
			out.obj = append(out.obj, member{key: "metadata", val: v})
		}
	}
	if len(ex.errs) > before {
		return nil
	}
	return out
}

// targeting is the flag's targeting: as imported when the flag is
// unchanged since, else translated back from its rules.
func (ex *exporter) targeting(f *v1beta1.Flag) *value {
	if len(f.Spec.Rules) == 0 {
		return nil
	}
	if t, evs, ok := ex.asImported(f); ok {
		if evs != nil {
			for _, m := range evs.obj {
				ex.addEvaluator(f, m.key, m.val.marshal())
			}
		}
		return t
	}
	return ex.fromRules(f)
}

func (ex *exporter) addEvaluator(f *v1beta1.Flag, name, body string) {
	if prev, seen := ex.evaluators[name]; seen && prev != body {
		ex.problem(f, field.NewPath("metadata", "annotations").Key(AnnotationEvaluators), "evaluator %q differs from the one of another flag of the same name", name)
		return
	}
	ex.evaluators[name] = body
}

// asImported is the targeting an import recorded, if importing it again
// gives exactly the flag's rules and Segments.
func (ex *exporter) asImported(f *v1beta1.Flag) (*value, *value, bool) {
	raw, ok := f.Annotations[AnnotationTargeting]
	if !ok {
		return nil, nil, false
	}
	t, err := decodeJSON([]byte(raw), nil)
	if err != nil {
		return nil, nil, false
	}
	var evs *value
	if e := f.Annotations[AnnotationEvaluators]; e != "" {
		if evs, err = decodeJSON([]byte(e), nil); err != nil || evs.typ != typeObject {
			return nil, nil, false
		}
	}
	// Import it again: one flag, its variants and the recorded targeting.
	flag := &value{typ: typeObject, obj: []member{
		{key: "state", val: &value{typ: typeString, s: "ENABLED"}},
		{key: "variants", val: &value{typ: typeObject}},
		{key: "targeting", val: t},
	}}
	for _, v := range f.Spec.Variants {
		val, err := decodeJSON(v.Value.Raw, nil)
		if err != nil {
			return nil, nil, false
		}
		flag.obj[1].val.obj = append(flag.obj[1].val.obj, member{key: string(v.Name), val: val})
	}
	doc := &value{typ: typeObject, obj: []member{{key: "flags", val: &value{typ: typeObject, obj: []member{{key: f.Name, val: flag}}}}}}
	if evs != nil {
		doc.obj = append(doc.obj, member{key: "$evaluators", val: evs})
	}
	frac := Fractional(f.Annotations[AnnotationFractional])
	if frac == "" {
		frac = FractionalV2
	}
	if frac != ex.opts.Fractional && usesRollouts(f) {
		return nil, nil, false
	}
	res, err := Import([]Source{{Name: f.Name, Data: []byte(doc.marshal())}}, Options{Namespace: f.Namespace, Fractional: frac})
	if err != nil || len(res.Flags) != 1 || !apiequality.Semantic.DeepEqual(res.Flags[0].Spec.Rules, f.Spec.Rules) {
		return nil, nil, false
	}
	for _, s := range res.Segments {
		given, ok := ex.segments[s.Name]
		if !ok || !apiequality.Semantic.DeepEqual(given.Spec.When, s.Spec.When) || len(given.Spec.Include)+len(given.Spec.Exclude) > 0 {
			return nil, nil, false
		}
	}
	return t, evs, true
}

func usesRollouts(f *v1beta1.Flag) bool {
	return slices.ContainsFunc(f.Spec.Rules, func(r v1beta1.Rule) bool { return r.Rollout != nil })
}

// fromRules translates rules back: an if whose conditions are the rules'
// segments and whens, in order, and whose branches are their variants and
// rollouts. First match wins in both. Rules that serve whatever variant a
// value names (the import's flagd.variant(E, names) == "v", one per
// variant) become that value as the last branch, which they must be:
// flagd ends at that value even when it names no variant.
func (ex *exporter) fromRules(f *v1beta1.Flag) *value {
	var chain []*value
	rules := field.NewPath("spec", "rules")
	for i := 0; i < len(f.Spec.Rules); i++ {
		r := f.Spec.Rules[i]
		path := rules.Index(i)
		rv := &reverser{ex: ex, f: f, path: path.Child("when")}
		var conds []*value
		for j, s := range r.Segments {
			if c := ex.segmentCondition(f, s, path.Child("segments").Index(j)); c != nil {
				conds = append(conds, c)
			}
		}
		var e celast.Expr
		if r.When != "" {
			if e = rv.parse(r.When); e == nil {
				return nil
			}
		}
		var outcome *value
		if prefix, val, ok := variantGuard(e); ok && r.Rollout == nil {
			n := ex.variantGroup(f, i, prefix, val)
			if n == 0 {
				ex.problem(f, path, "serves the variant a value names, but not for every variant the value can name")
				return nil
			}
			if i+n != len(f.Spec.Rules) && !val.isLiteral {
				ex.problem(f, path, "rules that serve the variant a value names must be the last: flagd stops at that value, even where it names no variant")
				return nil
			}
			if prefix != nil {
				conds = append(conds, rv.cond(prefix))
			}
			chain = append(chain, and(conds), rv.value(val.expr))
			if rv.failed {
				return nil
			}
			i += n - 1
			if !val.isLiteral {
				return ifChain(chain)
			}
			continue
		}
		if r.Rollout != nil {
			var guard string
			e, guard = cutGuard(e)
			outcome = ex.rollout(f, r, path, guard, i == len(f.Spec.Rules)-1)
		} else {
			outcome = &value{typ: typeString, s: string(r.Variant)}
		}
		if e != nil {
			conds = append(conds, rv.cond(e))
		}
		if outcome == nil || rv.failed {
			continue
		}
		if len(conds) == 0 {
			// Matches everything: the rules after it are never reached.
			chain = append(chain, outcome)
			break
		}
		chain = append(chain, and(conds), outcome)
	}
	return ifChain(chain)
}

func and(conds []*value) *value {
	switch len(conds) {
	case 0:
		return &value{typ: typeBool, b: true}
	case 1:
		return conds[0]
	}
	return op("and", &value{typ: typeArray, arr: conds})
}

func ifChain(chain []*value) *value {
	if len(chain) == 1 {
		return chain[0]
	}
	return op("if", &value{typ: typeArray, arr: chain})
}

func op(name string, operand *value) *value {
	return &value{typ: typeObject, obj: []member{{key: name, val: operand}}}
}

// guardedValue is the value E of a when that ends in flagd.variant(E, …).
type guardedValue struct {
	expr      celast.Expr
	isLiteral bool
	// notNull: the guard is `!= null`, which serves no variant (E names none).
	notNull bool
	variant string
}

// variantGuard splits a when that ends in flagd.variant(E, names) == "v"
// (or != null) into the conditions before it and E.
func variantGuard(e celast.Expr) (celast.Expr, guardedValue, bool) {
	if e == nil || e.Kind() != celast.CallKind {
		return nil, guardedValue{}, false
	}
	fn, args := callName(e)
	switch fn {
	case operators.Conditional:
		if !isBoolLiteral(args[2], false) {
			return nil, guardedValue{}, false
		}
		inner, v, ok := variantGuard(args[1])
		if !ok {
			return nil, guardedValue{}, false
		}
		if inner == nil {
			return args[0], v, true
		}
		return celast.NewExprFactory().NewCall(0, operators.Conditional, args[0], inner, args[2]), v, true
	case operators.Equals, operators.NotEquals:
		l := args[0]
		if l.Kind() != celast.CallKind {
			return nil, guardedValue{}, false
		}
		lfn, largs := callName(l)
		if lfn != "flagd.variant" || len(largs) != 2 {
			return nil, guardedValue{}, false
		}
		x := stripDyn(largs[0])
		v := guardedValue{expr: x, isLiteral: x.Kind() == celast.LiteralKind || x.Kind() == celast.ListKind || x.Kind() == celast.MapKind}
		if fn == operators.NotEquals {
			if args[1].Kind() != celast.LiteralKind || args[1].AsLiteral().Type() != types.NullType {
				return nil, guardedValue{}, false
			}
			v.notNull = true
			return nil, v, true
		}
		if args[1].Kind() != celast.LiteralKind || args[1].AsLiteral().Type() != types.StringType {
			return nil, guardedValue{}, false
		}
		v.variant = string(args[1].AsLiteral().(types.String))
		return nil, v, true
	}
	return nil, guardedValue{}, false
}

// variantGroup is the number of rules from i on that test the same value
// after the same conditions, each serving the variant it tests; 0 unless
// they cover every variant the value can name.
func (ex *exporter) variantGroup(f *v1beta1.Flag, i int, prefix celast.Expr, val guardedValue) int {
	key := func(p celast.Expr, v guardedValue) string {
		s := unparse(v.expr)
		if p != nil {
			s = unparse(p) + "\x00" + s
		}
		return s
	}
	want := key(prefix, val)
	if val.notNull {
		return 1
	}
	covered := map[string]bool{}
	n := 0
	for _, r := range f.Spec.Rules[i:] {
		if r.Rollout != nil || r.When == "" || !slices.Equal(r.Segments, f.Spec.Rules[i].Segments) {
			break
		}
		e, iss := parser.Parse(common.NewTextSource(r.When))
		if iss != nil && len(iss.GetErrors()) > 0 {
			break
		}
		p, v, ok := variantGuard(e.Expr())
		if !ok || v.notNull || key(p, v) != want || v.variant != string(r.Variant) {
			break
		}
		covered[v.variant] = true
		n++
	}
	for _, vr := range f.Spec.Variants {
		name := string(vr.Name)
		if !covered[name] && !(isBoolCEL(val.expr) && name != "true" && name != "false") {
			return 0
		}
	}
	return n
}

// isBoolCEL: the expression's value is a boolean.
func isBoolCEL(e celast.Expr) bool {
	if e.Kind() == celast.LiteralKind {
		return e.AsLiteral().Type() == types.BoolType
	}
	if e.Kind() != celast.CallKind {
		return false
	}
	fn, _ := callName(e)
	switch fn {
	case "flagd.truthy", "flagd.not", "flagd.equals", "flagd.strictEquals", "flagd.less", "flagd.lessOrEquals", "flagd.isIn",
		operators.LogicalNot, operators.LogicalAnd, operators.LogicalOr:
		return true
	}
	return false
}

func isBoolLiteral(e celast.Expr, b bool) bool {
	return e.Kind() == celast.LiteralKind && e.AsLiteral().Equal(types.Bool(b)) == types.True
}

// rollout is a rollout rule's fractional; guard is the condition the
// import puts innermost in its when (cutGuard). A rollout bucketing by a
// value of the context may find no key, where flagd's fractional is null
// and ends the targeting: it is exact only as the last rule.
func (ex *exporter) rollout(f *v1beta1.Flag, r v1beta1.Rule, path *field.Path, guard string, last bool) *value {
	ro := r.Rollout
	want := v1beta1.RolloutBucketingFlagdV2
	if ex.opts.Fractional == FractionalV1 {
		want = v1beta1.RolloutBucketingFlagdV1
	}
	got := ro.Bucketing
	if got == "" {
		got = v1beta1.RolloutBucketingFlagdV2
	}
	if got != want {
		ex.problem(f, path.Child("rollout", "bucketing"), "is %s, but the document is for a flagd with fractional-%s bucketing", got, ex.opts.Fractional)
		return nil
	}
	args := &value{typ: typeArray, arr: []*value{}}
	rv := &reverser{ex: ex, f: f, path: path.Child("rollout", "bucketBy")}
	switch {
	case ro.BucketBy == "" && guard == guardTargetingKey:
	case ex.opts.Fractional == FractionalV1 && ro.BucketBy == "flagKey + targetingKey" && guard == guardTargetingKeyV1:
	case guard != "" && guard == ro.BucketBy+" != null":
		if !last {
			ex.problem(f, path.Child("rollout", "bucketBy"), "a rollout bucketing by a value of the context must be the last rule: where the value is missing flagd ends the targeting, Flagpole tries the next rule")
			return nil
		}
		e := rv.parse(ro.BucketBy)
		if e == nil {
			return nil
		}
		if fn, a := callName(e); e.Kind() != celast.CallKind || (fn != "flagd.bucketKey" && fn != "flagd.bucketKeyV1") || len(a) != 3 {
			ex.problem(f, path.Child("rollout", "bucketBy"), "has no flagd form")
			return nil
		} else {
			args.arr = append(args.arr, rv.value(a[2]))
		}
	case ro.BucketBy == "" || guard != "":
		ex.problem(f, path.Child("when"), "a rollout without a targeting key answers TARGETING_KEY_MISSING in Flagpole and the default in flagd: begin its when with targetingKey != \"\"")
		return nil
	default:
		e := rv.parse(ro.BucketBy)
		if e == nil {
			return nil
		}
		isString := e.Kind() == celast.LiteralKind
		if e.Kind() == celast.CallKind {
			fn, _ := callName(e)
			isString = fn == "flagd.cat"
		}
		if !isString {
			ex.problem(f, path.Child("rollout", "bucketBy"), "flagd's fractional buckets by a string, or by flagKey + targetingKey: a bucketBy that may be no string has no flagd form")
			return nil
		}
		args.arr = append(args.arr, rv.value(e))
		if rv.failed {
			return nil
		}
	}
	for _, d := range ro.Distribution {
		args.arr = append(args.arr, &value{typ: typeArray, arr: []*value{
			{typ: typeString, s: string(d.Variant)}, {typ: typeNumber, n: float64(d.Weight)}}})
	}
	return op("fractional", args)
}

// The targeting-key guards the import puts in a rollout's when.
const (
	guardTargetingKey   = `targetingKey != ""`
	guardTargetingKeyV1 = `"targetingKey" in context`
)

// cutGuard takes the innermost targeting-key guard out of a when: G, or
// c ? (… G …) : false, or c ? false : (… G …).
func cutGuard(e celast.Expr) (celast.Expr, string) {
	if e == nil {
		return nil, ""
	}
	if g := unparse(e); g == guardTargetingKey || g == guardTargetingKeyV1 || isBucketKeyGuard(e) {
		return nil, g
	}
	if e.Kind() != celast.CallKind || e.AsCall().FunctionName() != operators.Conditional {
		return e, ""
	}
	a := e.AsCall().Args()
	fac := celast.NewExprFactory()
	switch {
	case isBoolLiteral(a[2], false):
		inner, g := cutGuard(a[1])
		if g == "" {
			return e, ""
		}
		if inner == nil {
			return a[0], g
		}
		return fac.NewCall(0, operators.Conditional, a[0], inner, a[2]), g
	case isBoolLiteral(a[1], false):
		inner, g := cutGuard(a[2])
		if g == "" {
			return e, ""
		}
		if inner == nil {
			return fac.NewCall(0, operators.LogicalNot, a[0]), g
		}
		return fac.NewCall(0, operators.Conditional, a[0], a[1], inner), g
	}
	return e, ""
}

// isBucketKeyGuard: flagd.bucketKey(context, flagKey, E) != null.
func isBucketKeyGuard(e celast.Expr) bool {
	if e.Kind() != celast.CallKind {
		return false
	}
	fn, args := callName(e)
	if fn != operators.NotEquals || len(args) != 2 || args[0].Kind() != celast.CallKind || args[1].Kind() != celast.LiteralKind ||
		args[1].AsLiteral().Type() != types.NullType {
		return false
	}
	inner, _ := callName(args[0])
	return inner == "flagd.bucketKey" || inner == "flagd.bucketKeyV1"
}

// segmentCondition is a Segment's membership as a JsonLogic condition.
func (ex *exporter) segmentCondition(f *v1beta1.Flag, name string, path *field.Path) *value {
	s, ok := ex.segments[name]
	if !ok {
		ex.problem(f, path, "Segment %q is not among the Segments exported", name)
		return nil
	}
	rv := &reverser{ex: ex, f: f, path: path}
	var when *value
	if s.Spec.When != "" {
		e := rv.parse(s.Spec.When)
		if e == nil {
			return nil
		}
		when = rv.cond(e)
		if rv.failed {
			return nil
		}
		if ev := s.Annotations[AnnotationEvaluator]; ev != "" && len(s.Spec.Include)+len(s.Spec.Exclude) == 0 {
			ex.addEvaluator(f, ev, when.marshal())
			return op("$ref", &value{typ: typeString, s: ev})
		}
	} else {
		when = &value{typ: typeBool}
	}
	if len(s.Spec.Include)+len(s.Spec.Exclude) == 0 {
		return when
	}
	tk := op("var", &value{typ: typeString, s: "targetingKey"})
	keys := func(ks []string) *value {
		l := &value{typ: typeArray}
		for _, k := range ks {
			l.arr = append(l.arr, &value{typ: typeString, s: k})
		}
		return l
	}
	// Include wins, then exclude, then when (the engine's order).
	return op("if", &value{typ: typeArray, arr: []*value{
		op("in", &value{typ: typeArray, arr: []*value{tk, keys(s.Spec.Include)}}), {typ: typeBool, b: true},
		op("in", &value{typ: typeArray, arr: []*value{tk, keys(s.Spec.Exclude)}}), {typ: typeBool, b: false},
		when,
	}})
}

// reverser translates the CEL of the import's grammar back to JsonLogic.
type reverser struct {
	ex     *exporter
	f      *v1beta1.Flag
	path   *field.Path
	failed bool
}

func (rv *reverser) fail(format string, args ...any) *value {
	if !rv.failed {
		rv.ex.problem(rv.f, rv.path, format, args...)
	}
	rv.failed = true
	return &value{typ: typeNull}
}

func (rv *reverser) parse(expr string) celast.Expr {
	a, iss := parser.Parse(common.NewTextSource(expr))
	if iss != nil && len(iss.GetErrors()) > 0 {
		rv.fail("does not parse: %s", iss.ToDisplayString())
		return nil
	}
	return a.Expr()
}

// cond is a JsonLogic condition as truthy as the CEL boolean e.
func (rv *reverser) cond(e celast.Expr) *value {
	if e.Kind() == celast.CallKind {
		fn, args := callName(e)
		switch fn {
		case operators.Conditional:
			return op("if", &value{typ: typeArray, arr: []*value{rv.cond(args[0]), rv.cond(args[1]), rv.cond(args[2])}})
		case operators.LogicalNot:
			return op("!", &value{typ: typeArray, arr: []*value{rv.cond(args[0])}})
		case operators.LogicalAnd:
			return op("and", &value{typ: typeArray, arr: []*value{rv.cond(args[0]), rv.cond(args[1])}})
		case "flagd.truthy":
			return rv.value(args[0])
		case operators.NotEquals:
			if isIdent(args[0], "targetingKey") && isStringLiteral(args[1], "") {
				return op("!!", &value{typ: typeArray, arr: []*value{op("var", &value{typ: typeString, s: "targetingKey"})}})
			}
		case operators.In:
			if isStringLiteral(args[0], "targetingKey") && isIdent(args[1], "context") {
				return op("!==", &value{typ: typeArray, arr: []*value{op("var", &value{typ: typeString, s: "targetingKey"}), {typ: typeNull}}})
			}
		}
	}
	return rv.value(e)
}

var binaryOps = map[string]string{
	"flagd.equals": "==", "flagd.strictEquals": "===", "flagd.less": "<", "flagd.lessOrEquals": "<=", "flagd.isIn": "in",
}

// value is JsonLogic evaluating to the CEL value e.
func (rv *reverser) value(e celast.Expr) *value {
	switch e.Kind() {
	case celast.LiteralKind:
		switch l := e.AsLiteral().(type) {
		case types.Null:
			return &value{typ: typeNull}
		case types.Bool:
			return &value{typ: typeBool, b: bool(l)}
		case types.Double:
			return &value{typ: typeNumber, n: float64(l)}
		case types.Int:
			return &value{typ: typeNumber, n: float64(l)}
		case types.String:
			return &value{typ: typeString, s: string(l)}
		}
	case celast.ListKind:
		out := &value{typ: typeArray, arr: []*value{}}
		for _, el := range e.AsList().Elements() {
			out.arr = append(out.arr, rv.value(el))
		}
		return out
	case celast.MapKind:
		if v, ok := rv.flagdProperties(e); ok {
			return v
		}
		out := &value{typ: typeObject, obj: []member{}}
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			k := me.Key()
			if k.Kind() != celast.LiteralKind || k.AsLiteral().Type() != types.StringType {
				return rv.fail("a map with a key that is no string literal has no JsonLogic form")
			}
			out.obj = append(out.obj, member{key: string(k.AsLiteral().(types.String)), val: rv.literalOnly(me.Value())})
		}
		if len(out.obj) == 1 {
			return rv.fail("JsonLogic reads an object with one key as an operation")
		}
		return out
	case celast.IdentKind:
		if e.AsIdent() == "flagKey" {
			return op("var", &value{typ: typeString, s: "$flagd.flagKey"})
		}
	case celast.CallKind:
		return rv.call(e)
	}
	return rv.fail("%s has no JsonLogic equivalent", unparse(e))
}

// literalOnly is a JsonLogic object's member, which jsonlogic never
// evaluates: it must be a literal.
func (rv *reverser) literalOnly(e celast.Expr) *value {
	if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == "dyn" {
		return rv.literalOnly(e.AsCall().Args()[0])
	}
	switch e.Kind() {
	case celast.LiteralKind, celast.ListKind, celast.MapKind:
		v := rv.value(e)
		if e.Kind() == celast.ListKind {
			for _, el := range e.AsList().Elements() {
				rv.literalOnly(el)
			}
		}
		return v
	}
	return rv.fail("an object's member %s is evaluated in CEL and not in JsonLogic", unparse(e))
}

// flagdProperties recognizes {"flagKey": flagKey, "timestamp": int(now)}.
func (rv *reverser) flagdProperties(e celast.Expr) (*value, bool) {
	entries := e.AsMap().Entries()
	if len(entries) != 2 {
		return nil, false
	}
	k0, k1 := entries[0].AsMapEntry(), entries[1].AsMapEntry()
	if isStringLiteral(k0.Key(), "flagKey") && isIdent(stripDyn(k0.Value()), "flagKey") &&
		isStringLiteral(k1.Key(), "timestamp") && isTimestamp(stripDyn(k1.Value())) {
		return op("var", &value{typ: typeString, s: "$flagd"}), true
	}
	return nil, false
}

func (rv *reverser) call(e celast.Expr) *value {
	fn, args := callName(e)
	list := func(xs []celast.Expr) *value {
		out := &value{typ: typeArray, arr: []*value{}}
		for _, x := range xs {
			out.arr = append(out.arr, rv.value(x))
		}
		return out
	}
	if jl, ok := binaryOps[fn]; ok && len(args) == 2 {
		return op(jl, list(args))
	}
	switch fn {
	case "dyn", "flagd.clause":
		return rv.value(args[0])
	case "int":
		if isTimestamp(e) {
			return op("var", &value{typ: typeString, s: "$flagd.timestamp"})
		}
	case operators.LogicalNot:
		if len(args) == 1 && args[0].Kind() == celast.CallKind {
			inner, innerArgs := callName(args[0])
			if inner == "flagd.equals" {
				return op("!=", list(innerArgs))
			}
			if inner == "flagd.strictEquals" {
				return op("!==", list(innerArgs))
			}
		}
		return op("!", &value{typ: typeArray, arr: []*value{rv.cond(args[0])}})
	case operators.Conditional:
		return op("if", &value{typ: typeArray, arr: []*value{rv.cond(args[0]), rv.value(args[1]), rv.value(args[2])}})
	case operators.LogicalAnd:
		return op("!!", &value{typ: typeArray, arr: []*value{op("and", &value{typ: typeArray, arr: []*value{rv.cond(args[0]), rv.cond(args[1])}})}})
	case "flagd.truthy":
		return op("!!", &value{typ: typeArray, arr: []*value{rv.value(args[0])}})
	case "flagd.not":
		return op("!", rv.value(args[0]))
	case "flagd.var":
		root := args[0]
		var prefix string
		switch {
		case isIdent(root, "context"):
		case root.Kind() == celast.MapKind:
			if _, ok := rv.flagdProperties(root); !ok {
				return rv.fail("flagd.var of a map other than $flagd's has no JsonLogic form")
			}
			prefix = "$flagd."
		default:
			return rv.fail("flagd.var of %s has no JsonLogic form", unparse(root))
		}
		if args[1].Kind() != celast.LiteralKind || args[1].AsLiteral().Type() != types.StringType {
			return rv.fail("flagd.var needs a literal path")
		}
		path := &value{typ: typeString, s: prefix + string(args[1].AsLiteral().(types.String))}
		if len(args) == 3 {
			return op("var", &value{typ: typeArray, arr: []*value{path, rv.value(args[2])}})
		}
		return op("var", path)
	case "flagd.cat":
		if args[0].Kind() == celast.ListKind {
			return op("cat", list(args[0].AsList().Elements()))
		}
		return op("cat", rv.value(args[0]))
	case "flagd.startsWith", "flagd.endsWith", "flagd.semver":
		name := map[string]string{"flagd.startsWith": "starts_with", "flagd.endsWith": "ends_with", "flagd.semver": "sem_ver"}[fn]
		if len(args) == 1 && args[0].Kind() == celast.ListKind {
			return op(name, list(args[0].AsList().Elements()))
		}
		if len(args) == 1 {
			return op(name, rv.value(args[0]))
		}
		return op(name, list(args))
	case "flagd.fractional", "flagd.fractionalV1":
		if (fn == "flagd.fractionalV1") != (rv.ex.opts.Fractional == FractionalV1) {
			return rv.fail("%s is not the bucketing of a flagd with fractional-%s", fn, rv.ex.opts.Fractional)
		}
		if len(args) == 3 && isIdent(args[0], "context") && isIdent(args[1], "flagKey") {
			if args[2].Kind() == celast.ListKind {
				return op("fractional", list(args[2].AsList().Elements()))
			}
			return op("fractional", rv.value(args[2]))
		}
	}
	return rv.fail("%s has no JsonLogic equivalent", unparse(e))
}

// callName is a call's function and arguments; the parser, which knows no
// functions, reads flagd.equals(a, b) as a call of equals on flagd.
func callName(e celast.Expr) (string, []celast.Expr) {
	c := e.AsCall()
	if c.IsMemberFunction() && isIdent(c.Target(), "flagd") {
		return "flagd." + c.FunctionName(), c.Args()
	}
	return c.FunctionName(), c.Args()
}

func stripDyn(e celast.Expr) celast.Expr {
	if e.Kind() == celast.CallKind && e.AsCall().FunctionName() == "dyn" && len(e.AsCall().Args()) == 1 {
		return e.AsCall().Args()[0]
	}
	return e
}

func isIdent(e celast.Expr, name string) bool {
	return e.Kind() == celast.IdentKind && e.AsIdent() == name
}

func isStringLiteral(e celast.Expr, s string) bool {
	return e.Kind() == celast.LiteralKind && e.AsLiteral().Equal(types.String(s)) == types.True
}

func isTimestamp(e celast.Expr) bool {
	return e.Kind() == celast.CallKind && e.AsCall().FunctionName() == "int" && len(e.AsCall().Args()) == 1 && isIdent(e.AsCall().Args()[0], "now")
}

func unparse(e celast.Expr) string {
	s, err := parser.Unparse(e, celast.NewSourceInfo(nil))
	if err != nil {
		return "an expression"
	}
	return s
}
