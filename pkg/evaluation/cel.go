package evaluation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/version"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Limits the engine and request validation share. The cost estimator is told
// them, so that expressions over `dyn` context values get a finite estimate.
const (
	// MaxContextBytes caps an evaluation context, as JSON.
	MaxContextBytes = 16 * 1024
	// maxFlagKeyLength bounds a flag key: a flag's name, a DNS subdomain.
	maxFlagKeyLength = utilvalidation.DNS1123SubdomainMaxLength
	// ExpressionCostLimit bounds an expression's estimated cost when it is
	// written and its actual cost in every evaluation (Kubernetes' per-call limit).
	ExpressionCostLimit = celconfig.PerCallLimit
	// RequestCostBudget bounds the actual cost of all the expressions one
	// request evaluates: every rule, segment and bucketBy of one flag, and of
	// every flag of a bulk evaluation (Kubernetes' budget per admission
	// request, "roughly 1 second").
	RequestCostBudget = celconfig.RuntimeCELCostBudget
	// RequestTimeLimit bounds how long the expressions one request evaluates
	// may run, from its first loop or its first costly expressions on (see
	// Budget).
	RequestTimeLimit = time.Second
)

// CompatibilityVersion is the Kubernetes CEL compatibility version the engine
// compiles against. It is pinned, never read from the process-global
// component registry, so that a server and a client embedding the engine
// accept exactly the same expressions.
var CompatibilityVersion = version.MajorMinor(1, 37)

// CEL variables.
const (
	varContext      = "context"
	varTargetingKey = "targetingKey"
	varFlagKey      = "flagKey"
	varNow          = "now"
)

// ExpressionKind decides the type an expression must have.
type ExpressionKind int

const (
	// Predicate expressions (rule and segment `when`) are booleans.
	Predicate ExpressionKind = iota
	// BucketKey expressions (rollout `bucketBy`) are strings.
	BucketKey
)

func (k ExpressionKind) want() *cel.Type {
	if k == BucketKey {
		return cel.StringType
	}
	return cel.BoolType
}

// Program is a compiled expression: parsed, type-checked and cost-checked.
// Its evaluable form (cel.Program) is planned on first use: planning costs a
// write about as much as parsing and checking, and each planned program
// holds its own function dispatcher (some 13 KiB), which a flag nobody
// evaluates does not need.
type Program struct {
	expr string
	kind ExpressionKind
	env  *cel.Env
	ast  *cel.Ast

	planOnce sync.Once
	prog     cel.Program
	planErr  error

	// loops is true when the expression has a comprehension: only there does
	// CEL check for interruption, so only then is the request's context
	// worth handing to it.
	loops bool
	// flatCost, when not 0, is what every evaluation is charged: the
	// estimate of an expression that never costs more than cheapCost. The
	// budget then need not read the actual cost, which costs an allocation.
	flatCost uint64
	// compare, when set, answers the predicate without CEL (compare.go).
	compare *stringCompare
}

// cheapCost is the largest estimate charged as is, instead of reading the
// actual cost of each evaluation.
const cheapCost = 1000

var (
	envOnce sync.Once
	envSet  *environment.EnvSet
	envErr  error
)

func envs() (*environment.EnvSet, error) {
	envOnce.Do(func() {
		envSet, envErr = environment.MustBaseEnvSet(CompatibilityVersion).Extend(environment.VersionedOptions{
			IntroducedVersion: CompatibilityVersion,
			EnvOptions: append([]cel.EnvOption{
				cel.Variable(varContext, cel.MapType(cel.StringType, cel.DynType)),
				cel.Variable(varTargetingKey, cel.StringType),
				cel.Variable(varFlagKey, cel.StringType),
				cel.Variable(varNow, cel.TimestampType),
				cel.CostEstimatorOptions(append(listCostEstimators(), flagdCostEstimators()...)...),
			}, flagdFunctions()...),
			ProgramOptions: []cel.ProgramOption{
				cel.CostTrackerOptions(append(listCostTrackers(), flagdCostTrackers()...)...),
			},
		})
	})
	return envSet, envErr
}

// CompileExpression compiles and type-checks expr. A new or changed expression
// (stored=false) is compiled in the strict environment for new expressions
// and its estimated cost must stay within ExpressionCostLimit; an expression
// already stored is compiled leniently, so that tightening a limit never
// strands existing objects.
//
// Programs are immutable and safe for concurrent use, so compiled ones are
// kept (programs) and shared: the write that validates an expression, the
// status derived in that write, the status controller and the evaluator
// compile it once between them, and flags with the same expression share one
// program.
func CompileExpression(expr string, kind ExpressionKind, stored bool) (*Program, error) {
	if p := programs.get(expr, kind, stored); p != nil {
		return p, nil
	}
	p, err := compileExpression(expr, kind, stored)
	if err != nil {
		return nil, err
	}
	programs.add(expr, kind, stored, p)
	return p, nil
}

func compileExpression(expr string, kind ExpressionKind, stored bool) (*Program, error) {
	set, err := envs()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	envType := environment.NewExpressions
	if stored {
		envType = environment.StoredExpressions
	}
	env, err := set.Env(envType)
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	ast, issues := env.Compile(expr)
	if issues.Err() != nil {
		return nil, fmt.Errorf("compilation failed: %s", issues.Err())
	}
	if out := ast.OutputType(); !out.IsExactType(kind.want()) && !out.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("must evaluate to %s, not %s", kind.want(), out)
	}
	estimator := newCostEstimator(ast.NativeRep())
	est, estErr := env.EstimateCost(ast, estimator)
	if !stored {
		if estErr != nil {
			return nil, fmt.Errorf("cost estimation failed: %w", estErr)
		}
		if est.Max > ExpressionCostLimit {
			return nil, fmt.Errorf("estimated cost %d exceeds the limit %d: bound loops over context values, build smaller strings and lists, or test fewer values%s", est.Max, ExpressionCostLimit, estimator.costNotes())
		}
	}
	p := &Program{expr: expr, kind: kind, env: env, ast: ast,
		loops: len(celast.MatchDescendants(celast.NavigateAST(ast.NativeRep()), celast.KindMatcher(celast.ComprehensionKind))) > 0}
	if estErr == nil && !p.loops && est.Max <= cheapCost {
		p.flatCost = max(est.Max, 1)
		if kind == Predicate {
			p.compare = stringCompareOf(ast.NativeRep().Expr())
		}
	}
	return p, nil
}

// sizeEstimator gives the cost estimator the largest size anything reachable
// from each variable can have: nothing inside the context is bigger than the
// context's byte cap.
type sizeEstimator struct{}

func (sizeEstimator) EstimateSize(element checker.AstNode) *checker.SizeEstimate {
	path := element.Path()
	if len(path) == 0 {
		return nil
	}
	switch path[0] {
	case varContext:
		return &checker.SizeEstimate{Min: 0, Max: MaxContextBytes}
	case varTargetingKey:
		return &checker.SizeEstimate{Min: 0, Max: flagpole.MaxTargetingKeyLength}
	case varFlagKey:
		return &checker.SizeEstimate{Min: 0, Max: uint64(maxFlagKeyLength)}
	}
	return nil
}

// EstimateCallCost leaves calls to costEstimator.
func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// activation resolves the engine's variables for one evaluation.
type activation struct {
	context any
	// attrs are context's attributes as Go values, for the predicates
	// answered without CEL (compare.go); nil when unknown.
	attrs        map[string]any
	targetingKey string
	flagKey      string
	now          types.Timestamp
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case varContext:
		return a.context, true
	case varTargetingKey:
		return a.targetingKey, true
	case varFlagKey:
		return a.flagKey, true
	case varNow:
		return a.now, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

var _ interpreter.Activation = &activation{}

// Budget is what one request may still spend on CEL: RequestCostBudget
// units of actual cost and RequestTimeLimit of time. Every expression an
// evaluation runs is charged its actual cost (an expression estimated at no
// more than cheapCost, its estimate); once either is spent, the expressions
// that would follow answer ERROR/GENERAL instead of running, and a loop
// running when the time is up stops. A bulk evaluation shares one
// Budget among its flags. A Budget is not safe for concurrent use: one
// request evaluates its flags one after the other.
//
// Why time as well as cost: CEL's cost counts operations, but not all of
// them take the same time. Its runtime cost tracker (cel-go v0.29) keeps
// values of a comprehension's earlier iterations and searches them on every
// step, so a loop over n elements takes time proportional to n² while it is
// charged n: an `exists` over an 8,000-element context list costs 49,000 and
// takes 200 ms. The clock is read only when it matters — before a loop, and
// before any expression once clockCheckCost units were spent since the last
// reading — so cheap flags never read it.
type Budget struct {
	remaining uint64
	timeLimit time.Duration
	// deadline is set when the clock is first read.
	deadline time.Time
	// unclocked is the cost spent since the clock was last read.
	unclocked uint64
}

// clockCheckCost is how much an evaluation may spend between two readings
// of the clock: well under a millisecond of the slowest CEL work per unit.
const clockCheckCost = 10_000

// NewBudget returns a full budget for one request.
func NewBudget() *Budget {
	b := fullBudget()
	return &b
}

func fullBudget() Budget {
	return Budget{remaining: RequestCostBudget, timeLimit: RequestTimeLimit}
}

// Remaining is the cost the request may still spend.
func (b *Budget) Remaining() uint64 { return b.remaining }

var (
	// errBudgetSpent: the request has spent its RequestCostBudget.
	errBudgetSpent = fmt.Errorf("the request's CEL cost budget of %d is spent", RequestCostBudget)
	// errTimeSpent: the request's expressions have run for RequestTimeLimit.
	errTimeSpent = fmt.Errorf("the request's CEL time limit of %s is spent", RequestTimeLimit)
)

// before is called before each expression runs. It returns the deadline
// for a loop, or an error once the budget is spent.
func (b *Budget) before(loops bool) (time.Time, error) {
	if b.remaining == 0 {
		return time.Time{}, errBudgetSpent
	}
	if !loops && b.unclocked < clockCheckCost {
		return time.Time{}, nil
	}
	b.unclocked = 0
	now := time.Now()
	if b.deadline.IsZero() {
		b.deadline = now.Add(b.timeLimit)
	}
	if !now.Before(b.deadline) {
		return time.Time{}, errTimeSpent
	}
	return b.deadline, nil
}

// spend charges cost; false when it was more than remained.
func (b *Budget) spend(cost uint64) bool {
	b.unclocked = satAdd(b.unclocked, cost)
	if cost > b.remaining {
		b.remaining = 0
		return false
	}
	b.remaining -= cost
	return true
}

// errAbsentKey marks an expression that read a key its map does not have:
// `context.plan` for a context without plan.
var errAbsentKey = errors.New("absent key")

// absentKeyPrefix is how CEL reports a map lookup of a missing key, both for
// a field selection (context.plan, context.a.b, context["plan"]) and for an
// index into a map value. The error types are unexported; the test
// TestAbsentKeyDetection pins the message to the CEL version in go.mod.
const absentKeyPrefix = "no such key: "

// absentKeyError is the error of expr reading a key the context lacks;
// celMessage is CEL's ("no such key: plan").
func absentKeyError(expr, celMessage string) error {
	return fmt.Errorf("%q: %w: %s", expr, errAbsentKey, celMessage)
}

func isAbsentKey(err *types.Err) bool {
	return strings.HasPrefix(err.Error(), absentKeyPrefix)
}

// plan returns the evaluable program, planned once.
func (p *Program) plan() (cel.Program, error) {
	p.planOnce.Do(func() {
		p.prog, p.planErr = p.env.Program(p.ast,
			cel.CostLimit(ExpressionCostLimit),
			cel.CostTracking(&actualCostEstimator{}),
			cel.InterruptCheckFrequency(celconfig.CheckFrequency),
		)
		if p.planErr != nil {
			p.planErr = fmt.Errorf("program instantiation failed: %w", p.planErr)
		}
		// The checked AST is only needed to plan.
		p.ast = nil
	})
	return p.prog, p.planErr
}

// eval runs the program, charging its cost to budget. Errors include
// runtime errors, a hit cost limit, a spent budget and a done ctx (CEL stops
// looping soon after ctx is done or the budget's time is up); an error
// wrapping errAbsentKey means the expression read a key the context lacks.
func (p *Program) eval(ctx context.Context, a *activation, budget *Budget) (any, error) {
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%q: evaluation stopped: %w", p.expr, context.Cause(ctx))
	}
	deadline, spent := budget.before(p.loops)
	if spent != nil {
		return nil, fmt.Errorf("%q: %w", p.expr, spent)
	}
	if p.compare != nil && a.attrs != nil {
		if matched, ok, err := p.compare.eval(p.expr, a.attrs); ok {
			// Charged as the CEL program would be: its flat cost.
			if !budget.spend(p.flatCost) {
				return nil, fmt.Errorf("%q: %w", p.expr, errBudgetSpent)
			}
			if err != nil {
				return nil, err
			}
			return matched, nil
		}
	}
	prog, err := p.plan()
	if err != nil {
		return nil, fmt.Errorf("%q: %w", p.expr, err)
	}
	var (
		out ref.Val
		det *cel.EvalDetails
	)
	if p.loops {
		// CEL checks for interruption only inside comprehensions, and only
		// they can run long for their cost: only they get the deadline.
		loopCtx, cancel := context.WithDeadlineCause(ctx, deadline, errTimeSpent)
		out, det, err = prog.ContextEval(loopCtx, a)
		cancel()
	} else {
		out, det, err = prog.Eval(a)
	}
	cost := p.flatCost
	if cost == 0 {
		if actual := det.ActualCost(); actual != nil {
			cost = *actual
		}
	}
	if !budget.spend(cost) {
		return nil, fmt.Errorf("%q: %w", p.expr, errBudgetSpent)
	}
	if err != nil {
		var celErr *types.Err
		if errors.As(err, &celErr) && isAbsentKey(celErr) {
			return nil, absentKeyError(p.expr, err.Error())
		}
		return nil, fmt.Errorf("%q: %w", p.expr, err)
	}
	v := out.Value()
	switch p.kind {
	case BucketKey:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return nil, fmt.Errorf("%q evaluated to %T, not a string", p.expr, v)
	default:
		if b, ok := v.(bool); ok {
			return b, nil
		}
		return nil, fmt.Errorf("%q evaluated to %T, not a boolean", p.expr, v)
	}
}
