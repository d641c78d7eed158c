package usage

import (
	"context"
	"time"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
)

// Observer counts, with c, every evaluation an evaluator makes, and forgets
// deleted flags.
func (c *Counter) Observer() evaluator.Observer { return observer{c} }

type observer struct{ c *Counter }

func (o observer) Evaluated(_ context.Context, f *v1beta1.Flag, res v1beta1.FlagEvaluation, at time.Time, _ time.Duration, _ evaluator.FlagExister) {
	o.c.Evaluated(f, &res, at)
}

// IgnoresDuration: counting needs no duration (evaluator.Untimed).
func (observer) IgnoresDuration() {}

// NotFound counts nothing: there is no flag to count for.
func (observer) NotFound(context.Context, string, string) {}

func (o observer) Deleted(f *v1beta1.Flag) { o.c.Forget(f.UID) }
