package flagevents

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	listers "github.com/flagpole-dev/flagpole/pkg/generated/listers/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

// ReportRuleErrors records, every interval until ctx is done, one RuleError
// event for each flag whose rules failed at run time since the last time,
// with how often and the last error: a rule failing on every one of a
// million evaluations is one event an interval, not a million. Each replica
// reports its own evaluations.
func ReportRuleErrors(ctx context.Context, interval time.Duration, counter *usage.Counter, flags listers.FlagLister, r Recorder) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			counter.RuleErrors(func(namespace, name string, uid types.UID, n uint64, last usage.RuleError) {
				f, err := flags.Flags(namespace).Get(name)
				if err != nil || f.UID != uid {
					return
				}
				r.Eventf(f, nil, corev1.EventTypeWarning, ReasonRuleError, ActionEvaluate,
					"rule %q failed at run time in %d evaluation(s) in the last %s; the last error: %s", last.Rule, n, interval, last.Message)
			})
		}
	}
}
