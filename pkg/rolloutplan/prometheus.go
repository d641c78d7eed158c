package rolloutplan

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// GuardReader reads a guard's query: one number, or why there is none.
type GuardReader interface {
	Read(ctx context.Context, query string) (float64, error)
}

// NoPrometheus is the reader of a server started without
// --rollout-prometheus-url: every guard is unavailable, and its plan
// pauses.
var NoPrometheus GuardReader = noPrometheus{}

type noPrometheus struct{}

func (noPrometheus) Read(context.Context, string) (float64, error) {
	return 0, errors.New("the server has no --rollout-prometheus-url")
}

// Prometheus reads guards with Prometheus's HTTP API (an instant query).
type Prometheus struct {
	api     promv1.API
	timeout time.Duration
}

// NewPrometheus reads from the Prometheus at address with client (nil:
// http.DefaultTransport's), each query bounded by timeout.
func NewPrometheus(address string, client *http.Client, timeout time.Duration) (*Prometheus, error) {
	cfg := promapi.Config{Address: address}
	if client != nil {
		cfg.Client = client
	}
	c, err := promapi.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Prometheus{api: promv1.NewAPI(c), timeout: timeout}, nil
}

// Read runs query now. Its answer must be one number: a scalar, or a
// vector of exactly one sample; anything else (no sample, several, NaN) is
// an error, so a guard whose series vanished pauses its plan rather than
// pass.
func (p *Prometheus) Read(ctx context.Context, query string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, _, err := p.api.Query(ctx, query, time.Now())
	if err != nil {
		return 0, fmt.Errorf("prometheus: %w", err)
	}
	var f float64
	switch v := v.(type) {
	case *model.Scalar:
		f = float64(v.Value)
	case model.Vector:
		if len(v) != 1 {
			return 0, fmt.Errorf("prometheus: the query answered %d samples, not one", len(v))
		}
		f = float64(v[0].Value)
	default:
		return 0, fmt.Errorf("prometheus: the query answered a %s, not a scalar or a vector of one sample", v.Type())
	}
	if math.IsNaN(f) {
		return 0, errors.New("prometheus: the query answered NaN")
	}
	return f, nil
}

// ReadGuard reads step's guard with r: nothing without a guard, tripped
// when the value crosses a bound, unavailable when there is no value.
func ReadGuard(ctx context.Context, r GuardReader, step *v1beta1.RolloutStep) Guard {
	g := step.Guard
	if g == nil {
		return Guard{}
	}
	v, err := r.Read(ctx, g.Query)
	if err != nil {
		return Guard{Unavailable: true, Message: fmt.Sprintf("guard %q: %v", g.Query, err)}
	}
	if g.AbortAbove != nil && v > g.AbortAbove.AsApproximateFloat64() {
		return Guard{Tripped: true, Message: fmt.Sprintf("guard %q read %g, above %s", g.Query, v, g.AbortAbove.String())}
	}
	if g.AbortBelow != nil && v < g.AbortBelow.AsApproximateFloat64() {
		return Guard{Tripped: true, Message: fmt.Sprintf("guard %q read %g, below %s", g.Query, v, g.AbortBelow.String())}
	}
	return Guard{}
}
