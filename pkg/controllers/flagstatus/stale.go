package flagstatus

import (
	"fmt"
	"slices"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

// Reasons of the Stale condition. True: the flag is due for clean-up, for
// the first that applies of Expired, Unused, SingleVariant and
// LifetimeExceeded. False: NotExpired or NoExpiry, as before usage was
// counted, so that neither an upgrade nor a flag's first evaluation
// rewrites its status; what usage says is in status.usage.
const (
	ReasonExpired          = "Expired"
	ReasonUnused           = "Unused"
	ReasonSingleVariant    = "SingleVariant"
	ReasonLifetimeExceeded = "LifetimeExceeded"
	ReasonNotExpired       = "NotExpired"
	ReasonNoExpiry         = "NoExpiry"
)

// Default stale periods: those LaunchDarkly's flag statuses use (a flag is
// "inactive" when not evaluated for seven days, "launched" when it served
// one variation to everyone for seven days with no change).
const (
	DefaultUnusedPeriod        = 7 * 24 * time.Hour
	DefaultSingleVariantPeriod = 7 * 24 * time.Hour
)

// DefaultLifetimes are the expected lifetimes of the lifecycle kinds, as
// Unleash's flag types have them: release and experiment 40 days,
// operational 7 days, kill switches and permissions permanent (0).
var DefaultLifetimes = map[flagpole.FlagLifecycleKind]time.Duration{
	flagpole.FlagLifecycleRelease:     40 * 24 * time.Hour,
	flagpole.FlagLifecycleExperiment:  40 * 24 * time.Hour,
	flagpole.FlagLifecycleOperational: 7 * 24 * time.Hour,
	flagpole.FlagLifecycleKillSwitch:  0,
	flagpole.FlagLifecyclePermission:  0,
}

// Policy decides when a flag is stale.
type Policy struct {
	// UnusedPeriod: a flag not evaluated for this long is stale. 0: never.
	UnusedPeriod time.Duration
	// SingleVariantPeriod: an enabled flag of a temporary kind (or of none)
	// that served one variant to every evaluation for this long, with no
	// change of its spec meanwhile, is stale: fully rolled out. 0: never.
	SingleVariantPeriod time.Duration
	// Lifetimes by lifecycle kind; 0 (or a kind not listed) is permanent.
	Lifetimes map[flagpole.FlagLifecycleKind]time.Duration
}

// DefaultPolicy is the policy with the default periods and lifetimes.
func DefaultPolicy() Policy {
	return Policy{UnusedPeriod: DefaultUnusedPeriod, SingleVariantPeriod: DefaultSingleVariantPeriod, Lifetimes: DefaultLifetimes}
}

// Usage is what the staleness of a flag is decided from: its merged usage
// record (nil: never evaluated) and since when evaluations are counted
// (zero: not counted, and usage decides nothing).
type Usage struct {
	Record        *usage.FlagRecord
	CountingSince time.Time
}

// UsageSource gives a flag's Usage (usage.View through UsageFrom).
type UsageSource func(f *v1beta1.Flag) Usage

// UsageFrom reads usage from a view.
func UsageFrom(v *usage.View) UsageSource {
	return func(f *v1beta1.Flag) Usage {
		return Usage{Record: v.Times(f.UID), CountingSince: v.CountingSince()}
	}
}

// NoUsage is the source when nothing is counted: staleness follows only
// expiry and lifetime.
func NoUsage(*v1beta1.Flag) Usage { return Usage{} }

func ago(d time.Duration) string { return duration.HumanDuration(d) }

func at(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// stale computes the Stale condition. Its message holds only what stays the
// same while its status and reason do (times it began, periods), so that a
// flag's status is written when the condition changes, not at every
// recheck.
func (p Policy) stale(f *v1beta1.Flag, u Usage, now time.Time) metav1.Condition {
	c := metav1.Condition{Type: flagpole.FlagConditionStale, Status: metav1.ConditionTrue, ObservedGeneration: f.Generation}
	created := f.CreationTimestamp.Time
	kind := flagpole.FlagLifecycleKind("")
	if f.Spec.Lifecycle != nil {
		kind = flagpole.FlagLifecycleKind(f.Spec.Lifecycle.Kind)
	}
	lifetime := p.Lifetimes[kind]
	counted := !u.CountingSince.IsZero()

	// Expired: the owner said so.
	if f.Spec.ExpiresAt != nil && !now.Before(f.Spec.ExpiresAt.Time) {
		c.Reason, c.Message = ReasonExpired, "past spec.expiresAt "+at(f.Spec.ExpiresAt.Time)+": remove the flag from code and delete it"
		return c
	}

	var last, first time.Time
	if u.Record != nil && u.Record.Last != 0 {
		last, first = time.Unix(u.Record.Last, 0), time.Unix(u.Record.First, 0)
	}
	// Unused: no application asks for it any more.
	if counted && p.UnusedPeriod > 0 {
		switch since := latest(created, u.CountingSince); {
		case last.IsZero() && now.Sub(since) >= p.UnusedPeriod:
			c.Reason = ReasonUnused
			c.Message = fmt.Sprintf("never evaluated since %s (--stale-unused-period %s): no application asks for it; delete it", at(since), ago(p.UnusedPeriod))
			return c
		case !last.IsZero() && now.Sub(last) >= p.UnusedPeriod:
			c.Reason = ReasonUnused
			c.Message = fmt.Sprintf("not evaluated since %s (--stale-unused-period %s): no application asks for it any more; delete it", at(last), ago(p.UnusedPeriod))
			return c
		}
	}

	// SingleVariant: every evaluation got the same answer for the whole
	// period, and nobody changed the flag meanwhile: the rollout is done.
	if temporary := kind == "" || lifetime > 0; counted && temporary && p.SingleVariantPeriod > 0 {
		if v, ok := p.singleVariant(f, u.Record, first, now); ok {
			c.Reason = ReasonSingleVariant
			if v == "" {
				c.Message = fmt.Sprintf("every evaluation for %s got no variant (the code default): the flag decides nothing; remove it from code and delete it", ago(p.SingleVariantPeriod))
			} else {
				c.Message = fmt.Sprintf("every evaluation for %s got variant %q (--stale-single-variant-period): the rollout is complete; keep that code path, remove the flag from code and delete it", ago(p.SingleVariantPeriod), v)
			}
			return c
		}
	}

	// LifetimeExceeded: older than its kind is expected to live.
	if lifetime > 0 && now.Sub(created) >= lifetime {
		c.Reason = ReasonLifetimeExceeded
		c.Message = fmt.Sprintf("a %s flag created %s: past its kind's expected lifetime of %s (--lifecycle-lifetimes); remove it, or set spec.lifecycle.kind to a permanent kind", kind, at(created), ago(lifetime))
		return c
	}

	c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonNoExpiry, "the flag has no spec.expiresAt"
	if f.Spec.ExpiresAt != nil {
		c.Reason, c.Message = ReasonNotExpired, "expires at "+at(f.Spec.ExpiresAt.Time)
	}
	switch {
	case lifetime > 0:
		c.Message += fmt.Sprintf("; a %s flag, expected to live %s (until %s)", kind, ago(lifetime), at(created.Add(lifetime)))
	case kind != "":
		c.Message += fmt.Sprintf("; a %s flag: permanent", kind)
	}
	return c
}

// singleVariant reports the one variant ("" for none) every evaluation of
// the last period got, when the flag was evaluated throughout it, is
// enabled, and its spec did not change in it.
func (p Policy) singleVariant(f *v1beta1.Flag, r *usage.FlagRecord, first, now time.Time) (string, bool) {
	if r == nil || first.IsZero() || f.Spec.State == v1beta1.FlagStateDisabled {
		return "", false
	}
	from := now.Add(-p.SingleVariantPeriod)
	changed := f.CreationTimestamp.Time
	if f.Status.LastChange != nil {
		changed = f.Status.LastChange.Time.Time
	}
	if first.After(from) || changed.After(from) {
		return "", false
	}
	var served []string
	for name, t := range r.Served {
		if !time.Unix(t, 0).Before(from) {
			served = append(served, name)
		}
	}
	if len(served) != 1 {
		return "", false
	}
	sort.Strings(served)
	if served[0] != "" && !slices.ContainsFunc(f.Spec.Variants, func(v v1beta1.Variant) bool { return string(v.Name) == served[0] }) {
		return "", false
	}
	return served[0], true
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
