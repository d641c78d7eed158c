// Package evaluation is Flagpole's flag engine: it compiles a Flag, the
// Segments it names and its live FlagOverrides, and evaluates an OpenFeature
// context into a result. It imports the API types and nothing of the server,
// so a client can embed it and get the server's answers.
package evaluation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/common/types"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// OpenFeature resolution reasons (defined beside the API types, which
// count them in usage).
const (
	ReasonStatic         = flagpole.ReasonStatic
	ReasonTargetingMatch = flagpole.ReasonTargetingMatch
	ReasonSplit          = flagpole.ReasonSplit
	ReasonDefault        = flagpole.ReasonDefault
	ReasonDisabled       = flagpole.ReasonDisabled
	ReasonError          = flagpole.ReasonError
)

// OpenFeature error codes.
const (
	ErrorFlagNotFound        = "FLAG_NOT_FOUND"
	ErrorTypeMismatch        = "TYPE_MISMATCH"
	ErrorParse               = "PARSE_ERROR"
	ErrorTargetingKeyMissing = "TARGETING_KEY_MISSING"
	ErrorInvalidContext      = "INVALID_CONTEXT"
	ErrorGeneral             = "GENERAL"
)

// SegmentLookup finds a Segment by name in the flag's namespace; nil when
// there is none (yet).
type SegmentLookup func(name string) *v1beta1.Segment

// Compiled is a flag compiled together with the Segments it names.
type Compiled struct {
	key            string
	flagType       v1beta1.FlagType
	disabled       bool
	variants       map[string]*v1beta1.JSON
	defaultVariant string
	rules          []rule

	// What it was compiled from, to tell when it is stale.
	generation int64
	segments   map[string]segmentKey
	// plans are the weights in effect of the rules with a plan, from the
	// flag's status: a plan's step changes no generation.
	plans []planWeight
}

type planWeight struct {
	rule   string
	weight int32
}

type segmentKey struct {
	uid        string
	generation int64
}

type rule struct {
	name     string
	segments []*segment // nil entry: the segment does not exist, the rule cannot match
	// segmentNames are the names of segments, for explanations.
	segmentNames []string
	when         *Program
	whenErr      error
	variant      string
	rollout      *rollout
}

type rollout struct {
	bucketBy    *Program
	bucketByErr error
	dist        []v1beta1.WeightedVariant
	bucketing   v1beta1.RolloutBucketing
	plan        *planSplit
}

type segment struct {
	include, exclude sets.Set[string]
	when             *Program
	whenErr          error
}

// CompileFlag compiles flag and the Segments its rules name. Expressions are
// compiled as stored expressions: they were checked strictly when written.
// A compile error is kept and reported (PARSE_ERROR) by the evaluations that
// reach it, so one broken rule does not hide the rules before it.
func CompileFlag(flag *v1beta1.Flag, segments SegmentLookup) *Compiled {
	c := &Compiled{
		key:            flag.Name,
		flagType:       flag.Spec.Type,
		disabled:       flag.Spec.State == v1beta1.FlagStateDisabled,
		variants:       make(map[string]*v1beta1.JSON, len(flag.Spec.Variants)),
		defaultVariant: string(flag.Spec.DefaultVariant),
		generation:     flag.Generation,
		segments:       map[string]segmentKey{},
	}
	for i := range flag.Spec.Variants {
		v := &flag.Spec.Variants[i]
		c.variants[string(v.Name)] = &v.Value
	}
	compiledSegments := map[string]*segment{}
	for _, r := range flag.Spec.Rules {
		cr := rule{name: r.Name, variant: string(r.Variant), segmentNames: r.Segments}
		for _, name := range r.Segments {
			seg, seen := compiledSegments[name]
			if !seen {
				if s := segments(name); s != nil {
					seg = compileSegment(s)
					c.segments[name] = segmentKey{string(s.UID), s.Generation}
				} else {
					c.segments[name] = segmentKey{}
				}
				compiledSegments[name] = seg
			}
			cr.segments = append(cr.segments, seg)
		}
		if r.When != "" {
			cr.when, cr.whenErr = CompileExpression(r.When, Predicate, true)
		}
		if r.Rollout != nil {
			ro := &rollout{dist: r.Rollout.Distribution, bucketing: r.Rollout.Bucketing}
			if r.Rollout.Plan != nil {
				w := PlanWeight(flag, r.Name)
				c.plans = append(c.plans, planWeight{rule: r.Name, weight: w})
				ro.plan = newPlanSplit(r.Rollout.Plan, r.Rollout.Distribution, w)
			}
			if r.Rollout.BucketBy != "" {
				ro.bucketBy, ro.bucketByErr = CompileExpression(r.Rollout.BucketBy, BucketKey, true)
			}
			cr.rollout = ro
		}
		c.rules = append(c.rules, cr)
	}
	return c
}

func compileSegment(s *v1beta1.Segment) *segment {
	seg := &segment{include: sets.New(s.Spec.Include...), exclude: sets.New(s.Spec.Exclude...)}
	if s.Spec.When != "" {
		seg.when, seg.whenErr = CompileExpression(s.Spec.When, Predicate, true)
	}
	return seg
}

// upToDate reports whether c still describes flag and the segments it names.
func (c *Compiled) upToDate(flag *v1beta1.Flag, segments SegmentLookup) bool {
	if c.generation != flag.Generation {
		return false
	}
	for _, p := range c.plans {
		if PlanWeight(flag, p.rule) != p.weight {
			return false
		}
	}
	for name, key := range c.segments {
		s := segments(name)
		if s == nil {
			if key != (segmentKey{}) {
				return false
			}
			continue
		}
		if key != (segmentKey{string(s.UID), s.Generation}) {
			return false
		}
	}
	return true
}

// Request is one evaluation.
type Request struct {
	Context *Context
	// ExpectedType, when set, must equal the flag's type.
	ExpectedType v1beta1.FlagType
	// Now is the evaluation time: overrides past it are ignored, and CEL sees
	// it as `now`. Zero means the current time.
	Now time.Time
	// Budget is the CEL cost the request may still spend, shared by every
	// flag one request evaluates (see Budget). Nil gives this evaluation a
	// budget of its own.
	Budget *Budget
	// Explain asks for the result's Explanation. Without it the engine
	// records nothing: the verdicts it takes anyway are dropped.
	Explain bool
}

// Evaluate resolves flag for req. revision is the flag object the answer is
// traced to (metadata.resourceVersion and generation); overrides may include
// expired ones and ones for other flags, which are ignored. ctx is the
// caller's request: once it is done, CEL stops (within a loop, or before the
// next expression) and the answer is ERROR/GENERAL.
func (c *Compiled) Evaluate(ctx context.Context, revision *v1beta1.Flag, overrides []*v1beta1.FlagOverride, req Request) v1beta1.FlagEvaluation {
	res := v1beta1.FlagEvaluation{
		Key:      c.key,
		Metadata: v1beta1.EvaluationMetadata{ResourceVersion: revision.ResourceVersion, Generation: revision.Generation},
	}
	if req.ExpectedType != "" && req.ExpectedType != c.flagType {
		res = fail(res, ErrorTypeMismatch, fmt.Sprintf("flag %q is of type %s, not %s", c.key, c.flagType, req.ExpectedType))
		explain(&res, req.Explain, v1beta1.DecisionTypeMismatch, nil)
		return res
	}
	if c.disabled {
		// The kill switch serves the flag's default, if it has one.
		res.Reason = ReasonDisabled
		c.serve(&res, c.defaultVariant)
		explain(&res, req.Explain, v1beta1.DecisionDisabled, nil)
		return res
	}
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	ec := req.Context
	if ec == nil {
		ec = &Context{Attributes: map[string]any{}}
	}
	if o := liveOverride(c.key, overrides, ec, req.Now); o != nil {
		res.Reason = ReasonTargetingMatch
		res.Metadata.Override = o.Name
		c.serve(&res, string(o.Spec.Variant))
		explain(&res, req.Explain, v1beta1.DecisionOverride, nil)
		return res
	}

	if len(c.rules) == 0 {
		c.fallThrough(&res)
		explain(&res, req.Explain, v1beta1.DecisionDefault, nil)
		return res
	}
	attrs := ec.attributes()
	sc := &evalScope{
		ctx:    ctx,
		budget: req.Budget,
		eval:   ec,
		act: activation{
			context:      types.DefaultTypeAdapter.NativeToValue(attrs),
			attrs:        attrs,
			targetingKey: ec.TargetingKey,
			flagKey:      c.key,
			now:          types.Timestamp{Time: req.Now},
		},
	}
	if sc.budget == nil {
		sc.ownBudget = fullBudget()
		sc.budget = &sc.ownBudget
	}
	// tried holds the verdicts for an explanation; it stays nil otherwise.
	var tried []v1beta1.RuleExplanation
	for i := range c.rules {
		r := &c.rules[i]
		v := r.matches(sc)
		if req.Explain {
			tried = append(tried, v.explain(r))
		}
		if v.outcome == outcomeError {
			res.Metadata.Rule = r.name
			res = fail(res, v.code, v.err.Error())
			explain(&res, req.Explain, v1beta1.DecisionRule, tried)
			return res
		}
		if v.outcome != outcomeMatched {
			continue
		}
		res.Metadata.Rule = r.name
		if r.rollout == nil {
			res.Reason = ReasonTargetingMatch
			c.serve(&res, r.variant)
			explain(&res, req.Explain, v1beta1.DecisionRule, tried)
			return res
		}
		variant, code, err := r.rollout.pick(sc)
		if err != nil {
			res = fail(res, code, err.Error())
			if req.Explain {
				tried[len(tried)-1] = v1beta1.RuleExplanation{Name: r.name, Outcome: v1beta1.RuleOutcomeError, Message: err.Error()}
				explain(&res, true, v1beta1.DecisionRule, tried)
			}
			return res
		}
		res.Reason = ReasonSplit
		c.serve(&res, variant)
		explain(&res, req.Explain, v1beta1.DecisionRule, tried)
		return res
	}

	c.fallThrough(&res)
	explain(&res, req.Explain, v1beta1.DecisionDefault, tried)
	return res
}

// explain adds the explanation to res when the request asked for one (on).
func explain(res *v1beta1.FlagEvaluation, on bool, d v1beta1.Decision, rules []v1beta1.RuleExplanation) {
	if on {
		res.Explanation = &v1beta1.Explanation{Decision: d, Rules: rules}
	}
}

// fallThrough answers when no override or rule decided.
func (c *Compiled) fallThrough(res *v1beta1.FlagEvaluation) {
	res.Reason = ReasonDefault
	if len(c.rules) == 0 && c.defaultVariant != "" {
		res.Reason = ReasonStatic
	}
	c.serve(res, c.defaultVariant)
}

// serve fills in variant and value; an empty variant leaves both unset, so
// the caller's code default applies.
func (c *Compiled) serve(res *v1beta1.FlagEvaluation, variant string) {
	if variant == "" {
		return
	}
	res.Variant = variant
	res.Value = c.variants[variant]
}

func fail(res v1beta1.FlagEvaluation, code, msg string) v1beta1.FlagEvaluation {
	res.Reason, res.ErrorCode, res.ErrorMessage = ReasonError, code, msg
	res.Value, res.Variant = nil, ""
	return res
}

// evalScope is what the expressions of one evaluation share.
type evalScope struct {
	ctx       context.Context
	budget    *Budget
	ownBudget Budget // when the request brings none
	eval      *Context
	act       activation
}

// site names where an expression sits, in the errors it gives.
type site struct {
	kind string // "rule", "segment", "bucketBy"
	rule string // the rule's name, for kind "rule"
}

func (s site) String() string {
	if s.kind == "rule" {
		return fmt.Sprintf("rule %q", s.rule)
	}
	return s.kind
}

// run evaluates an expression (compiled as p, or failed to compile with
// compileErr) for the scope. absent is true when it read a key the context
// lacks, which its caller decides the meaning of (err then says which key);
// a compile error is the answer with PARSE_ERROR, any other runtime error
// with GENERAL.
func (sc *evalScope) run(p *Program, compileErr error, at site) (v any, absent bool, code string, err error) {
	if compileErr != nil {
		return nil, false, ErrorParse, fmt.Errorf("%s: %v", at, compileErr)
	}
	v, err = p.eval(sc.ctx, &sc.act, sc.budget)
	switch {
	case errors.Is(err, errAbsentKey):
		return nil, true, "", err
	case err != nil:
		return nil, false, runtimeErrorCode(err), fmt.Errorf("%s: %v", at, err)
	}
	return v, false, "", nil
}

// outcome is what trying a rule, or one of its segments, came to: the
// engine's own small form of v1beta1.RuleOutcome, which only an
// explanation spells out.
type outcome uint8

const (
	outcomeMatched outcome = iota
	outcomeFalse
	outcomeMissingAttribute
	outcomeExcluded
	outcomeSegmentNotFound
	outcomeError
)

var ruleOutcomes = [...]v1beta1.RuleOutcome{
	outcomeMatched:          v1beta1.RuleOutcomeMatched,
	outcomeFalse:            v1beta1.RuleOutcomeFalse,
	outcomeMissingAttribute: v1beta1.RuleOutcomeMissingAttribute,
	outcomeExcluded:         v1beta1.RuleOutcomeExcluded,
	outcomeSegmentNotFound:  v1beta1.RuleOutcomeSegmentNotFound,
	outcomeError:            v1beta1.RuleOutcomeError,
}

// verdict is what trying a rule came to: an outcome; the index of the
// segment it is about in the rule's segments, or -1 for the rule's own
// when; for an Error the code and error that are the answer (for a
// MissingAttribute or a segment that includes nobody, err says more).
type verdict struct {
	outcome outcome
	segment int
	code    string
	err     error
}

var matched = verdict{outcome: outcomeMatched, segment: -1}

// explain turns the verdict into the rule's line of an explanation.
func (v verdict) explain(r *rule) v1beta1.RuleExplanation {
	e := v1beta1.RuleExplanation{Name: r.name, Outcome: ruleOutcomes[v.outcome]}
	if v.segment >= 0 {
		e.Segment = r.segmentNames[v.segment]
	}
	switch v.outcome {
	case outcomeFalse:
		e.Message = "when is false"
		if v.segment >= 0 {
			e.Message = "the segment's when is false"
		}
	case outcomeExcluded:
		e.Message = "the segment excludes the targeting key"
	case outcomeSegmentNotFound:
		e.Message = "no such segment: a rule naming a segment that does not exist matches no one"
	}
	if v.err != nil {
		e.Message = v.err.Error()
	}
	if v.outcome == outcomeMissingAttribute {
		if _, key, ok := strings.Cut(e.Message, absentKeyPrefix); ok {
			e.Message = fmt.Sprintf("the context has no %q, which when reads", key)
			if v.segment >= 0 {
				e.Message = fmt.Sprintf("the context has no %q, which the segment's when reads", key)
			}
		}
	}
	return e
}

// predicate runs a `when` (a rule's or a segment's). One that reads a key
// the context lacks does not match, as an attribute missing from the
// context does not match in flagd, LaunchDarkly, Unleash or Flipt; any
// other runtime error is the answer.
func (sc *evalScope) predicate(p *Program, compileErr error, at site) verdict {
	v, absent, code, err := sc.run(p, compileErr, at)
	switch {
	case absent:
		return verdict{outcome: outcomeMissingAttribute, segment: -1, err: err}
	case err != nil:
		return verdict{outcome: outcomeError, segment: -1, code: code, err: err}
	case !v.(bool):
		return verdict{outcome: outcomeFalse, segment: -1}
	}
	return matched
}

// matches says whether the rule applies to the context: every segment it
// names contains the context, and its `when`, if any, holds.
func (r *rule) matches(sc *evalScope) verdict {
	for i, s := range r.segments {
		if s == nil {
			// A segment that does not exist (yet) matches no one.
			return verdict{outcome: outcomeSegmentNotFound, segment: i}
		}
		if v := s.contains(sc); v.outcome != outcomeMatched {
			v.segment = i
			return v
		}
	}
	if r.when == nil && r.whenErr == nil {
		return matched
	}
	return sc.predicate(r.when, r.whenErr, site{kind: "rule", rule: r.name})
}

func (s *segment) contains(sc *evalScope) verdict {
	if sc.eval.HasTargetingKey {
		if s.include.Has(sc.eval.TargetingKey) {
			return matched
		}
		if s.exclude.Has(sc.eval.TargetingKey) {
			return verdict{outcome: outcomeExcluded}
		}
	}
	if s.when == nil && s.whenErr == nil {
		return verdict{outcome: outcomeFalse, err: errNotIncluded}
	}
	return sc.predicate(s.when, s.whenErr, site{kind: "segment"})
}

// errNotIncluded explains a segment without a when that does not list the
// targeting key.
var errNotIncluded = errors.New("the segment has no when and does not include the targeting key")

// pick buckets the context. A bucketBy that reads a key the context lacks
// falls back to flagKey + targetingKey, as flagd's fractional operator does
// when its bucketing value is missing, so the user still lands where flagd
// puts them.
func (ro *rollout) pick(sc *evalScope) (string, string, error) {
	if ro.bucketBy != nil || ro.bucketByErr != nil {
		v, absent, code, err := sc.run(ro.bucketBy, ro.bucketByErr, site{kind: "bucketBy"})
		switch {
		case absent && !sc.eval.HasTargetingKey:
			return "", ErrorTargetingKeyMissing, fmt.Errorf("bucketBy reads a key the context lacks, and there is no targetingKey to bucket by instead")
		case absent:
			// Bucket by the targeting key, below.
		case err != nil:
			return "", code, err
		default:
			return ro.variant(v.(string))
		}
	} else if !sc.eval.HasTargetingKey {
		return "", ErrorTargetingKeyMissing, fmt.Errorf("a percentage rollout needs a targetingKey in the context (or a bucketBy expression)")
	}
	return ro.variant(sc.act.flagKey + sc.eval.TargetingKey)
}

func (ro *rollout) variant(key string) (string, string, error) {
	if ro.bucketing == v1beta1.RolloutBucketingFlagdV1 {
		i := BucketFlagdV1(key, ro.dist)
		if i < 0 {
			return "", ErrorGeneral, fmt.Errorf("the key falls past the last bucket of flagd's fractional-v1 bucketing (where flagd answered its empty variant)")
		}
		return ro.plan.pick(key, string(ro.dist[i].Variant)), "", nil
	}
	i := Bucket(key, ro.dist)
	if i < 0 {
		return "", ErrorGeneral, fmt.Errorf("rollout weights add up to zero")
	}
	return ro.plan.pick(key, string(ro.dist[i].Variant)), "", nil
}

// liveOverride picks the override that decides, if any: unexpired, for this
// flag, targeting this key before applying to everyone, newest first.
func liveOverride(flagKey string, overrides []*v1beta1.FlagOverride, ctx *Context, now time.Time) *v1beta1.FlagOverride {
	var candidates []*v1beta1.FlagOverride
	for _, o := range overrides {
		if o.Spec.Flag != flagKey || o.DeletionTimestamp != nil {
			continue
		}
		if o.Status.ExpiresAt == nil || !now.Before(o.Status.ExpiresAt.Time) {
			continue
		}
		if len(o.Spec.TargetingKeys) > 0 && !(ctx.HasTargetingKey && slices.Contains(o.Spec.TargetingKeys, ctx.TargetingKey)) {
			continue
		}
		candidates = append(candidates, o)
	}
	if len(candidates) == 0 {
		return nil
	}
	sort.SliceStable(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if (len(a.Spec.TargetingKeys) > 0) != (len(b.Spec.TargetingKeys) > 0) {
			return len(a.Spec.TargetingKeys) > 0
		}
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return b.CreationTimestamp.Before(&a.CreationTimestamp)
		}
		return a.Name < b.Name
	})
	return candidates[0]
}

// NotFound is the result for a key with no flag.
func NotFound(key string) v1beta1.FlagEvaluation {
	return fail(v1beta1.FlagEvaluation{Key: key}, ErrorFlagNotFound, fmt.Sprintf("flag %q not found", key))
}

// InvalidContext is the result for a context ParseContext rejected.
func InvalidContext(key string, err error) v1beta1.FlagEvaluation {
	return fail(v1beta1.FlagEvaluation{Key: key}, ErrorInvalidContext, err.Error())
}

// Problems lists what keeps the compiled flag from being fully usable: the
// Segments its rules name that do not exist, and expressions (its own or its
// segments') that do not compile. The flag status controller reports them in
// the Ready condition.
func (c *Compiled) Problems() (missingSegments, expressionErrors []string) {
	for name, key := range c.segments {
		if key == (segmentKey{}) {
			missingSegments = append(missingSegments, name)
		}
	}
	sort.Strings(missingSegments)
	reported := map[*segment]bool{}
	for _, r := range c.rules {
		if r.whenErr != nil {
			expressionErrors = append(expressionErrors, fmt.Sprintf("rule %q when: %v", r.name, r.whenErr))
		}
		if r.rollout != nil && r.rollout.bucketByErr != nil {
			expressionErrors = append(expressionErrors, fmt.Sprintf("rule %q bucketBy: %v", r.name, r.rollout.bucketByErr))
		}
		for _, s := range r.segments {
			if s != nil && s.whenErr != nil && !reported[s] {
				reported[s] = true
				expressionErrors = append(expressionErrors, fmt.Sprintf("a segment of rule %q: %v", r.name, s.whenErr))
			}
		}
	}
	return missingSegments, expressionErrors
}
