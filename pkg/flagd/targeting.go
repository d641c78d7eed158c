package flagd

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// How a targeting rule becomes rules.
//
// flagd evaluates the targeting to one value and reads it as a variant
// name: null is the default variant, a name of the flag's variants that
// variant, anything else an error. The targeting's `if`s form a tree whose
// leaves are the values it can end in. Each leaf becomes rules, in the
// order flagd reaches the leaves; a rule's `when` retraces the path to its
// leaf as nested conditionals (never &&, which CEL evaluates in either
// order), so the conditions are evaluated in flagd's order and an error
// surfaces in the rule flagd would have failed in. Paths are disjoint, so
// the first rule that matches is the leaf flagd ends in:
//
//   - a literal variant name: one rule serving it;
//   - null: no rule — no rule matches and the default applies, as in flagd;
//   - a fractional with literal variants and weights: one rule with a
//     rollout (flagd-compatible buckets);
//   - any other value: one rule per variant it can name,
//     flagd.variant(value, variants) == "name", which fails as flagd does
//     when the value names no variant.

// step is one decision on the way to a leaf: condition c was (not) truthy.
type step struct {
	c    cexpr
	want bool
	n    *node
}

// ruleBuilder collects one flag's rules.
type ruleBuilder struct {
	*translator
	imp      *importer
	def      *flagDef
	names    []string
	isName   map[string]bool
	rules    []v1beta1.Rule
	origins  []*field.Path // the JSON path each rule comes from
	used     map[string]bool
	prefix   string // the targeting's path, stripped from rule names
	segments []string
}

var ruleNameRegexp = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$`)

// maxRuleNameLength is the API's limit on rule (and variant) names.
const maxRuleNameLength = 63

// walk adds the rules of the leaves under n, reached by path. branch: n is
// an if's branch, whose object value jsonlogic evaluates again.
func (r *ruleBuilder) walk(n *node, path []step, branch bool) {
	if n.kind == nodeOp && (n.op == "if" || n.op == "?:") {
		if !r.needArray(n) {
			return
		}
		a := n.elems
		p := path
		for i := 0; i+1 < len(a); i += 2 {
			c := r.condition(a[i])
			if v, ok := boolLiteral(c); ok {
				if v {
					// The branches after it are never reached.
					r.walk(a[i+1], p, true)
					return
				}
				continue
			}
			r.walk(a[i+1], append(append([]step{}, p...), step{c, true, a[i]}), true)
			p = append(append([]step{}, p...), step{c, false, a[i]})
		}
		if len(a)%2 == 1 {
			r.walk(a[len(a)-1], p, true)
		} else {
			r.nullLeaf(p, n)
		}
		return
	}
	if n.kind == nodeOp && n.op == "fractional" && n.array && r.rollout(n, path) {
		return
	}
	if n.isLiteral() {
		r.staticLeaf(n, path)
		return
	}
	r.dynamicLeaf(n, path, branch)
}

// variantName is how flagd reads a result as a variant name: its JSON text
// (Go's encoding/json) without double quotes; ok is false for null.
func variantName(v any) (string, bool) {
	if v == nil {
		return "", false
	}
	text, err := json.Marshal(v)
	if err != nil {
		return "", false
	}
	return strings.ReplaceAll(string(text), `"`, ""), true
}

func (r *ruleBuilder) namesList() cexpr {
	els := make([]cexpr, len(r.names))
	for i, n := range r.names {
		els[i] = r.b.lit(n)
	}
	return r.b.list(els)
}

func (r *ruleBuilder) staticLeaf(n *node, path []step) {
	name, ok := variantName(n.v.native())
	switch {
	case !ok:
		r.nullLeaf(path, n)
	case r.isName[name]:
		r.add(path, r.b.lit(true), n, "", v1beta1.Rule{Variant: v1beta1.VariantName(name)})
	default:
		// Always an error where reached, as in flagd.
		guard := r.b.call("_!=_", celBool, r.b.call("flagd.variant", celDyn, r.literal(n.v), r.namesList()), r.b.lit(nil))
		r.add(path, guard, n, "not-a-variant", v1beta1.Rule{Variant: v1beta1.VariantName(r.names[0])})
	}
}

func (r *ruleBuilder) dynamicLeaf(n *node, path []step, branch bool) {
	e := r.value(n)
	if branch {
		e = r.branchValue(n)
	}
	result := r.b.call("flagd.variant", celDyn, e, r.namesList())
	var possible []string
	for _, name := range r.names {
		if e.t == celBool && name != "true" && name != "false" {
			continue
		}
		possible = append(possible, name)
	}
	if len(possible) == 0 {
		r.add(path, r.b.call("_!=_", celBool, result, r.b.lit(nil)), n, "not-a-variant", v1beta1.Rule{Variant: v1beta1.VariantName(r.names[0])})
		return
	}
	for _, name := range possible {
		r.add(path, r.b.eq(result, r.b.lit(name)), n, name, v1beta1.Rule{Variant: v1beta1.VariantName(name)})
	}
}

// nullLeaf: no rule, unless a condition on the way can fail; then a rule
// that never matches still evaluates them, so that the error surfaces.
func (r *ruleBuilder) nullLeaf(path []step, n *node) {
	for _, s := range path {
		if s.n.mayFail() {
			r.add(path, r.b.lit(false), n, "null", v1beta1.Rule{Variant: v1beta1.VariantName(r.names[0])})
			return
		}
	}
}

// rollout turns a fractional whose variants and weights are literals into
// a rollout rule. false: the leaf needs the general translation.
func (r *ruleBuilder) rollout(n *node, path []step) bool {
	r.usesFrac = true
	a := n.elems
	if len(a) < 1 || (r.v1 && len(a) < 2) {
		r.nullLeaf(path, n)
		return true
	}
	b := r.b
	ro := &v1beta1.Rollout{Bucketing: v1beta1.RolloutBucketingFlagdV2}
	if r.v1 {
		ro.Bucketing = v1beta1.RolloutBucketingFlagdV1
	}
	guard := b.lit(true)
	byTargetingKey := func() {
		if r.v1 {
			// v1 buckets any string targeting key, the empty one too.
			guard = b.call("@in", celBool, b.lit("targetingKey"), r.context())
			key := b.call("_+_", celString, r.flagKey(), b.ident("targetingKey", celString))
			ro.BucketBy = mustPrint(b, key)
		} else {
			// v2 needs a non-empty one, which the rollout's default key uses.
			guard = b.call("_!=_", celBool, b.ident("targetingKey", celString), b.lit(""))
		}
	}
	entries := a[1:]
	first := a[0]
	switch {
	case first.kind == nodeLiteral && first.v.typ == typeString:
		ro.BucketBy = mustPrint(b, b.lit(first.v.s))
	case first.kind == nodeLiteral && first.v.typ == typeNull:
		byTargetingKey()
	case first.kind == nodeList:
		entries = a
		byTargetingKey()
	case first.kind == nodeOp:
		e := r.value(first)
		if e.t == celString {
			ro.BucketBy = mustPrint(b, e)
			break
		}
		fn := "flagd.bucketKey"
		if r.v1 {
			fn = "flagd.bucketKeyV1"
		}
		key := b.call(fn, celDyn, r.context(), r.flagKey(), e)
		guard = b.call("_!=_", celBool, key, b.lit(nil))
		ro.BucketBy = mustPrint(b, key)
	default:
		// A number, boolean or object: flagd reads it as an entry, which is
		// not a list, and answers null.
		r.nullLeaf(path, n)
		return true
	}
	seen := map[string]bool{}
	var total int64
	for _, e := range entries {
		if e.kind != nodeList {
			if e.kind == nodeOp {
				return false
			}
			r.nullLeaf(path, n)
			return true
		}
		if len(e.elems) == 0 {
			r.nullLeaf(path, n)
			return true
		}
		name, w, ok, always := r.entry(e)
		if always {
			r.nullLeaf(path, n)
			return true
		}
		if !ok || seen[name] || !r.isName[name] {
			return false
		}
		seen[name] = true
		total += w
		ro.Distribution = append(ro.Distribution, v1beta1.WeightedVariant{Variant: v1beta1.VariantName(name), Weight: int32(min(w, math.MaxInt32))})
	}
	switch {
	case !r.v1 && (total == 0 || total > math.MaxInt32):
		// flagd answers null.
		r.nullLeaf(path, n)
		return true
	case total == 0 || total > math.MaxInt32 || len(ro.Distribution) > maxDistribution:
		return false
	}
	r.add(path, guard, n, "", v1beta1.Rule{Rollout: ro})
	return true
}

// maxDistribution is the API's limit on a rollout's variants.
const maxDistribution = 100

// entry reads a literal [variant, weight]: ok false when it needs the
// general translation, always when flagd answers null for every context.
func (r *ruleBuilder) entry(e *node) (name string, weight int64, ok, always bool) {
	el := e.elems
	for _, extra := range el[min(2, len(el)):] {
		if extra.mayFail() {
			r.refuse(extra.path, "flagd evaluates this element of a fractional entry and ignores it, and it can fail: remove it")
		}
	}
	v := el[0]
	switch {
	case v.kind == nodeOp:
		return "", 0, false, false
	case v.kind != nodeLiteral:
		return "", 0, false, true
	case r.v1 && v.v.typ != typeString:
		return "", 0, false, true
	case v.v.typ == typeNull:
		return "", 0, false, false
	}
	name, _ = variantName(v.v.native())
	weight = 1
	if len(el) < 2 {
		return name, weight, true, false
	}
	w := el[1]
	switch {
	case w.kind == nodeOp:
		return "", 0, false, false
	case r.v1:
		// v1 reads a number, truncated; anything else counts 1.
		if w.kind == nodeLiteral && w.v.typ == typeNumber {
			weight = int64Trunc(w.v.n)
			if weight < 0 {
				return "", 0, false, false
			}
		}
		return name, weight, true, false
	case w.kind == nodeLiteral && w.v.typ == typeNull:
		return name, 1, true, false
	case w.kind == nodeLiteral && w.v.typ == typeNumber:
		if !isIntegral(w.v.n) || w.v.n > math.MaxInt32 {
			return "", 0, false, true
		}
		return name, max(int64(w.v.n), 0), true, false
	}
	return "", 0, false, true
}

// int64Trunc is Go's int64(f) on amd64.
func int64Trunc(f float64) int64 {
	if math.IsNaN(f) || f >= math.MaxInt64 || f < math.MinInt64 {
		return math.MinInt64
	}
	return int64(f)
}

func mustPrint(b *celBuilder, x cexpr) string {
	s, err := b.print(x)
	if err != nil {
		panic(fmt.Sprintf("unparsing a built CEL expression: %v", err))
	}
	return s
}

// add appends a rule for the leaf n reached by path: its when retraces the
// path and then tests guard.
func (r *ruleBuilder) add(path []step, guard cexpr, n *node, suffix string, rule v1beta1.Rule) {
	b := r.b
	var segs []string
	if !r.anyFails(path, n) {
		kept := path[:0:0]
		for _, s := range path {
			if s.want {
				if seg := r.imp.segmentFor(r, s); seg != "" {
					segs = append(segs, seg)
					continue
				}
			}
			kept = append(kept, s)
		}
		path = kept
	}
	when := guard
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].want {
			when = b.cond(path[i].c, when, b.lit(false))
		} else {
			when = b.cond(path[i].c, b.lit(false), when)
		}
	}
	if v, ok := boolLiteral(when); !ok || !v {
		rule.When = mustPrint(b, when)
	}
	rule.Segments = segs
	rule.Name = r.ruleName(n.at, suffix)
	r.rules = append(r.rules, rule)
	r.origins = append(r.origins, n.at)
	r.segments = append(r.segments, segs...)
}

// anyFails: a condition on the path or the leaf itself can fail, so
// moving a condition into a Segment (evaluated first) could change which
// error flagd would report.
func (r *ruleBuilder) anyFails(path []step, n *node) bool {
	if n.mayFail() {
		return true
	}
	for _, s := range path {
		if s.n.mayFail() {
			return true
		}
	}
	return false
}

// ruleName derives a rule's name from where its leaf is in the targeting
// (if.1, if.2.if.1, fractional, targeting for the whole), plus suffix; a
// name the API would refuse, or one taken, is rule-N.
func (r *ruleBuilder) ruleName(at *field.Path, suffix string) string {
	s := strings.TrimPrefix(at.String(), r.prefix)
	s = strings.NewReplacer("[", ".", "]", "", "?:", "if").Replace(s)
	s = strings.Trim(s, ".")
	if s == "" {
		s = "targeting"
	}
	if suffix != "" {
		s += "-" + suffix
	}
	if len(s) > maxRuleNameLength || !ruleNameRegexp.MatchString(s) || r.used[s] {
		s = fmt.Sprintf("rule-%d", len(r.rules)+1)
		for r.used[s] {
			s += "x"
		}
	}
	r.used[s] = true
	return s
}
