package openfeature

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/validation"
	"github.com/flagpole-dev/flagpole/pkg/usage"
)

const (
	// DefaultUsageReportInterval is how often the provider reports what it
	// evaluated (WithUsageReportInterval).
	DefaultUsageReportInterval = 30 * time.Second
	// DefaultMaxUnsentUsage is how long counts the server did not take are
	// kept for the next report (WithMaxUnsentUsage); older ones are dropped,
	// so that a provider cut off from Flagpole holds no more than that.
	DefaultMaxUnsentUsage = 10 * time.Minute
	// finalReportTimeout bounds the report Shutdown sends.
	finalReportTimeout = 5 * time.Second
)

// WithUsageReportInterval sets how often the provider reports its counts
// to the server; 0 turns reporting off.
func WithUsageReportInterval(d time.Duration) Option {
	return func(p *Provider) { p.reportInterval = d }
}

// WithMaxUnsentUsage sets how long counts the server could not take are
// kept: past it they are dropped. The counts themselves take a bounded
// amount of memory (one entry per flag, whatever the traffic).
func WithMaxUnsentUsage(d time.Duration) Option {
	return func(p *Provider) { p.maxUnsent = d }
}

// reporter sends the counter's counts as UsageReports.
type reporter struct {
	p *Provider
	// unsentSince is when the oldest counts not taken by the server were
	// counted; zero when there are none.
	unsentSince time.Time
}

func (r *reporter) run() {
	t := time.NewTicker(r.p.reportInterval)
	defer t.Stop()
	for {
		select {
		case <-r.p.stop:
			ctx, cancel := context.WithTimeout(context.Background(), finalReportTimeout)
			r.report(ctx)
			cancel()
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), r.p.reportInterval)
			r.report(ctx)
			cancel()
		}
	}
}

// report sends what was counted since the last report the server took. The
// counter keeps counts until they are committed: a report that fails for a
// reason that may pass (Flagpole unreachable, 5xx, 429) leaves them for the
// next, until they are older than maxUnsent; one the server refused is
// dropped.
func (r *reporter) report(ctx context.Context) {
	now := r.p.clock.Now()
	rec := r.p.counter.Flush("provider", r.exists)
	reports := r.reports(rec)
	if len(reports) == 0 {
		r.drop()
		return
	}
	if r.unsentSince.IsZero() {
		r.unsentSince = now
	}
	for _, report := range reports {
		_, err := r.p.client.FlagpoleV1beta1().UsageReports(r.p.namespace).Create(ctx, report, metav1.CreateOptions{})
		if err == nil {
			continue
		}
		if retryable(err) && now.Sub(r.unsentSince) < r.p.maxUnsent {
			klog.V(2).InfoS("Reporting flag usage failed; the counts are kept for the next report", "namespace", r.p.namespace, "err", err)
			return
		}
		klog.V(2).InfoS("Flag usage dropped: the server refused the report, or it could not be sent for too long", "namespace", r.p.namespace, "err", err)
		break
	}
	r.drop()
}

// drop forgets the counts flushed so far: sent, refused or too old.
func (r *reporter) drop() {
	r.p.counter.Sent()
	r.unsentSince = time.Time{}
}

func retryable(err error) bool {
	var netErr net.Error
	switch {
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return true
	case apierrors.IsTooManyRequests(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err):
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= 500
	}
	return true
}

// exists keeps the counts of flags the provider still has.
func (r *reporter) exists(namespace, name string, uid types.UID) bool {
	f, err := r.p.source.Flags().Flags(namespace).Get(name)
	return err == nil && f.UID == uid
}

// reports turns a record's counts into reports of at most the server's
// number of flags, counting only variants the flag still has (a variant
// renamed since is counted as none served) and each count up to the
// server's limit.
func (r *reporter) reports(rec *usage.Record) []*v1beta1.UsageReport {
	var flags []v1beta1.FlagUsageReport
	for _, fr := range rec.Flags {
		f, err := r.p.source.Flags().Flags(fr.Namespace).Get(fr.Name)
		if err != nil || f.UID != fr.UID {
			continue
		}
		total := fr.Total()
		entry := v1beta1.FlagUsageReport{Name: fr.Name, UID: fr.UID}
		for i, reason := range flagpole.Reasons {
			if total.Reasons[i] > 0 {
				entry.Reasons = append(entry.Reasons, v1beta1.ReasonCount{Reason: reason, Count: capped(total.Reasons[i])})
			}
		}
		if len(entry.Reasons) == 0 {
			continue
		}
		var evaluations, served int64
		for _, rc := range entry.Reasons {
			evaluations += rc.Count
		}
		for _, vn := range total.Variants {
			if vn.Name == "" || !slices.ContainsFunc(f.Spec.Variants, func(v v1beta1.Variant) bool { return string(v.Name) == vn.Name }) {
				continue
			}
			c := min(capped(vn.N), evaluations-served)
			if c > 0 {
				entry.Variants = append(entry.Variants, v1beta1.VariantCount{Name: vn.Name, Count: c})
				served += c
			}
		}
		slices.SortFunc(entry.Variants, func(a, b v1beta1.VariantCount) int { return strings.Compare(a.Name, b.Name) })
		flags = append(flags, entry)
	}
	var out []*v1beta1.UsageReport
	for len(flags) > 0 {
		n := min(len(flags), validation.MaxUsageReportFlags)
		out = append(out, &v1beta1.UsageReport{Spec: v1beta1.UsageReportSpec{Flags: flags[:n]}})
		flags = flags[n:]
	}
	return out
}

func capped(n uint64) int64 {
	if n > validation.MaxReportedCount {
		klog.V(2).InfoS("A usage count is over what one report may carry; the excess is dropped", "count", n, "limit", validation.MaxReportedCount)
		return validation.MaxReportedCount
	}
	return int64(n)
}
