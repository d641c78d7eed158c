package evaluation

import (
	"math"

	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// What the flagd functions cost, in the style of cost.go: reading charges
// traversalByteCost per byte of the strings a function reads, building
// buildByteCost per byte it builds. The write-time estimate bounds each
// argument by what it can hold: a literal its own size, anything read from
// the context (flagd.var, context.x) the context's cap, a number printed
// maxFormattedScalar bytes; an argument it cannot bound makes the estimate
// unbounded, and the expression is rejected. The runtime trackers charge
// the same for the actual values.

// maxVariantNameBytes bounds a variant name flagd.variant returns.
const maxVariantNameBytes = 63

// jsonEscapeFactor bounds how much larger than a value its JSON text is
// (a control character becomes \u0000).
const jsonEscapeFactor = 6

func flagdCostEstimators() []checker.CostOption {
	est := func(id string, fn func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate) checker.CostOption {
		return checker.OverloadCostEstimate(id, func(ce checker.CostEstimator, _ *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
			e, ok := ce.(*costEstimator)
			if !ok {
				return nil
			}
			return fn(e, args)
		})
	}
	fixed := func(cost uint64, result uint64) func(*costEstimator, []checker.AstNode) *checker.CallEstimate {
		return func(*costEstimator, []checker.AstNode) *checker.CallEstimate {
			return callEstimate(cost, result)
		}
	}
	reads := func(base uint64, result uint64) func(*costEstimator, []checker.AstNode) *checker.CallEstimate {
		return func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
			var n uint64
			for _, a := range args {
				n = satAdd(n, e.flagdBytes(a.Expr()))
			}
			return callEstimate(satAdd(base, costOf(n, traversalByteCost)), result)
		}
	}
	var opts []checker.CostOption
	for _, id := range []string{flagdTruthy, flagdNot} {
		opts = append(opts, est(id, fixed(1, 1)))
	}
	opts = append(opts, est(flagdClause, func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
		return callEstimate(1, e.flagdBytes(args[0].Expr()))
	}))
	for _, id := range []string{flagdEquals, flagdStrictEquals, flagdLess, flagdLessOrEquals, flagdIn,
		flagdStartsWith, flagdStartsWithArgs, flagdEndsWith, flagdEndsWithArgs} {
		opts = append(opts, est(id, reads(1, 1)))
	}
	for _, id := range []string{flagdSemver, flagdSemverArgs} {
		opts = append(opts, est(id, reads(semverBaseCost, 1)))
	}
	for _, id := range []string{flagdVar, flagdVarDefault} {
		opts = append(opts, est(id, func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
			return callEstimate(satAdd(1, costOf(e.flagdBytes(args[1].Expr()), traversalByteCost)), MaxContextBytes)
		}))
	}
	opts = append(opts, est(flagdCat, func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
		n := e.flagdBytes(args[0].Expr())
		return callEstimate(satAdd(1, costOf(n, traversalByteCost+buildByteCost)), n)
	}))
	for _, id := range []string{flagdFractional, flagdFractionalV1} {
		opts = append(opts, est(id, func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
			return callEstimate(satAdd(fractionalBaseCost, costOf(e.flagdBytes(args[2].Expr()), traversalByteCost)), MaxContextBytes)
		}))
	}
	for _, id := range []string{flagdBucketKey, flagdBucketKeyV1} {
		opts = append(opts, est(id, func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
			n := satAdd(e.flagdBytes(args[2].Expr()), uint64(maxFlagKeyLength+flagpole.MaxTargetingKeyLength))
			return callEstimate(satAdd(1, costOf(n, traversalByteCost+buildByteCost)), n)
		}))
	}
	opts = append(opts, est(flagdVariant, func(e *costEstimator, args []checker.AstNode) *checker.CallEstimate {
		n := satMul(e.flagdBytes(args[0].Expr()), jsonEscapeFactor)
		return callEstimate(satAdd(satAdd(1, costOf(n, traversalByteCost+buildByteCost)), e.flagdBytes(args[1].Expr())), maxVariantNameBytes)
	}))
	return opts
}

const (
	// semverBaseCost covers parsing two versions beyond reading them.
	semverBaseCost = 10
	// fractionalBaseCost covers hashing and walking the entries.
	fractionalBaseCost = 5
)

func callEstimate(cost, resultSize uint64) *checker.CallEstimate {
	return &checker.CallEstimate{
		CostEstimate: checker.FixedCostEstimate(cost),
		ResultSize:   &checker.SizeEstimate{Min: 0, Max: resultSize},
	}
}

// flagdBytes bounds the bytes of e's value printed as a string: a literal
// its length, a list or map literal its elements, a value from the context
// the context's cap (a number: maxFormattedScalar), a concatenation its
// parts. Anything else is unbounded.
func (e *costEstimator) flagdBytes(x celast.Expr) uint64 {
	switch x.Kind() {
	case celast.LiteralKind:
		return e.formattedSize(x)
	case celast.ListKind:
		var n uint64
		for _, el := range x.AsList().Elements() {
			n = satAdd(n, satAdd(e.flagdBytes(el), 1))
		}
		return n
	case celast.MapKind:
		var n uint64
		for _, en := range x.AsMap().Entries() {
			me := en.AsMapEntry()
			n = satAdd(n, satAdd(e.flagdBytes(me.Key()), e.flagdBytes(me.Value())))
		}
		return n
	case celast.IdentKind, celast.SelectKind:
		return e.formattedVariableSize(x)
	case celast.CallKind:
		call := x.AsCall()
		switch call.FunctionName() {
		case "dyn", "flagd.clause":
			if len(call.Args()) == 1 {
				return e.flagdBytes(call.Args()[0])
			}
		case "_?_:_":
			return max(e.flagdBytes(call.Args()[1]), e.flagdBytes(call.Args()[2]))
		case "flagd.cat":
			if len(call.Args()) == 1 && call.Args()[0].Kind() == celast.ListKind {
				return e.flagdBytes(call.Args()[0])
			}
			// A list read from the context, its numbers printed in full.
			return MaxContextBytes * maxFormattedContextFactor
		case "flagd.var", "flagd.fractional", "flagd.fractionalV1":
			return MaxContextBytes
		case "flagd.bucketKey", "flagd.bucketKeyV1":
			return satAdd(e.flagdBytes(call.Args()[2]), uint64(maxFlagKeyLength+flagpole.MaxTargetingKeyLength))
		case "flagd.variant":
			return maxVariantNameBytes
		case "flagd.truthy", "flagd.not", "flagd.equals", "flagd.strictEquals", "flagd.less", "flagd.lessOrEquals",
			"flagd.isIn", "flagd.startsWith", "flagd.endsWith", "flagd.semver", "int", "!_", "_==_", "_!=_", "_&&_", "_||_":
			return maxFormattedScalar
		case "_+_":
			// flagKey + targetingKey, the bucketing key fractional hashes.
			if len(call.Args()) == 2 {
				return satAdd(e.flagdBytes(call.Args()[0]), e.flagdBytes(call.Args()[1]))
			}
		}
	}
	return math.MaxUint64
}

func flagdCostTrackers() []interpreter.CostTrackerOption {
	track := func(id string, fn func(args []ref.Val, result ref.Val) uint64) interpreter.CostTrackerOption {
		return interpreter.OverloadCostTracker(id, func(args []ref.Val, result ref.Val) *uint64 {
			c := fn(args, result)
			return &c
		})
	}
	one := func([]ref.Val, ref.Val) uint64 { return 1 }
	reads := func(base uint64) func([]ref.Val, ref.Val) uint64 {
		return func(args []ref.Val, _ ref.Val) uint64 {
			var n uint64
			for _, a := range args {
				n = satAdd(n, stringBytes(a))
			}
			return satAdd(base, costOf(n, traversalByteCost))
		}
	}
	var opts []interpreter.CostTrackerOption
	for _, id := range []string{flagdTruthy, flagdNot, flagdClause} {
		opts = append(opts, track(id, one))
	}
	for _, id := range []string{flagdEquals, flagdStrictEquals, flagdLess, flagdLessOrEquals, flagdIn,
		flagdStartsWith, flagdStartsWithArgs, flagdEndsWith, flagdEndsWithArgs, flagdVar, flagdVarDefault} {
		opts = append(opts, track(id, reads(1)))
	}
	for _, id := range []string{flagdSemver, flagdSemverArgs} {
		opts = append(opts, track(id, reads(semverBaseCost)))
	}
	for _, id := range []string{flagdFractional, flagdFractionalV1} {
		opts = append(opts, track(id, func(args []ref.Val, _ ref.Val) uint64 {
			return satAdd(fractionalBaseCost, costOf(stringBytes(args[2]), traversalByteCost))
		}))
	}
	built := func(args []ref.Val, result ref.Val) uint64 {
		return satAdd(1, costOf(stringBytes(result), traversalByteCost+buildByteCost))
	}
	for _, id := range []string{flagdCat, flagdBucketKey, flagdBucketKeyV1} {
		opts = append(opts, track(id, built))
	}
	opts = append(opts, track(flagdVariant, func(args []ref.Val, _ ref.Val) uint64 {
		return satAdd(1, costOf(stringBytes(args[0]), traversalByteCost+buildByteCost))
	}))
	return opts
}

// stringBytes is what a function reads of v: a string's bytes, and those
// of the strings in a list or map, plus one per element.
func stringBytes(v ref.Val) uint64 {
	switch kindOf(v) {
	case kindString:
		return uint64(len(v.(types.String)))
	case kindList:
		var n uint64
		for _, el := range listOf(v) {
			n = satAdd(n, satAdd(stringBytes(el), 1))
		}
		return n
	case kindMap:
		var n uint64
		it := v.(traits.Mapper).Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			n = satAdd(n, satAdd(stringBytes(k), satAdd(stringBytes(v.(traits.Mapper).Get(k)), 1)))
		}
		return n
	}
	return 1
}
