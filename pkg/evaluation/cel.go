package evaluation

import (
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
	"k8s.io/apimachinery/pkg/util/version"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	"k8s.io/apiserver/pkg/cel/library"
)

// Limits the engine and request validation share. The cost estimator is told
// them, so that expressions over `dyn` context values get a finite estimate.
const (
	// MaxContextBytes caps an evaluation context, as JSON.
	MaxContextBytes = 16 * 1024
	// MaxTargetingKeyLength caps the targeting key.
	MaxTargetingKeyLength = 256
	// maxFlagKeyLength is a DNS subdomain's maximum length.
	maxFlagKeyLength = 253
	// ExpressionCostLimit bounds an expression's estimated cost when it is
	// written and its actual cost in every evaluation (Kubernetes' per-call limit).
	ExpressionCostLimit = celconfig.PerCallLimit
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

// Program is a compiled expression.
type Program struct {
	expr string
	kind ExpressionKind
	prog cel.Program
}

var (
	envOnce sync.Once
	envSet  *environment.EnvSet
	envErr  error
)

func envs() (*environment.EnvSet, error) {
	envOnce.Do(func() {
		envSet, envErr = environment.MustBaseEnvSet(CompatibilityVersion).Extend(environment.VersionedOptions{
			IntroducedVersion: CompatibilityVersion,
			EnvOptions: []cel.EnvOption{
				cel.Variable(varContext, cel.MapType(cel.StringType, cel.DynType)),
				cel.Variable(varTargetingKey, cel.StringType),
				cel.Variable(varFlagKey, cel.StringType),
				cel.Variable(varNow, cel.TimestampType),
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
func CompileExpression(expr string, kind ExpressionKind, stored bool) (*Program, error) {
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
	if !stored {
		est, err := env.EstimateCost(ast, &library.CostEstimator{SizeEstimator: sizeEstimator{}})
		if err != nil {
			return nil, fmt.Errorf("cost estimation failed: %w", err)
		}
		if est.Max > ExpressionCostLimit {
			return nil, fmt.Errorf("estimated cost %d exceeds the limit %d: bound loops over context values, or test fewer of them", est.Max, ExpressionCostLimit)
		}
	}
	prog, err := env.Program(ast,
		cel.CostLimit(ExpressionCostLimit),
		cel.InterruptCheckFrequency(celconfig.CheckFrequency),
	)
	if err != nil {
		return nil, fmt.Errorf("program instantiation failed: %w", err)
	}
	return &Program{expr: expr, kind: kind, prog: prog}, nil
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
		return &checker.SizeEstimate{Min: 0, Max: MaxTargetingKeyLength}
	case varFlagKey:
		return &checker.SizeEstimate{Min: 0, Max: maxFlagKeyLength}
	}
	return nil
}

func (sizeEstimator) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// activation resolves the engine's variables for one evaluation.
type activation struct {
	context      any
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

// eval runs the program; errors include runtime errors and a hit cost limit.
func (p *Program) eval(a *activation) (any, error) {
	out, _, err := p.prog.Eval(a)
	if err != nil {
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
