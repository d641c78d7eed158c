// Package flagevents records Events about flags (events.k8s.io/v1) with
// client-go's events broadcaster (k8s.io/client-go/tools/events): events
// that differ only in their note are one series (the first created, the
// count patched, then refreshed every 30 minutes), and a token bucket in
// front of the broadcaster drops what comes faster than it allows, so that a
// burst (a rule failing under load, a flapping kill switch) cannot flood
// kube-apiserver's etcd. In delegated mode events go to kube-apiserver
// under the server's own identity (its ServiceAccount); in standalone mode
// there is no kube-apiserver to hold them, and they go to the log only.
package flagevents

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// ReportingController names Flagpole in every event it records.
const ReportingController = "flagpole.dev/flagpole-apiserver"

// Event reasons, one per fact a flag's owner wants in kubectl describe.
const (
	ReasonFlagDisabled          = "FlagDisabled"
	ReasonFlagEnabled           = "FlagEnabled"
	ReasonDefaultVariantChanged = "DefaultVariantChanged"
	ReasonRolloutChanged        = "RolloutChanged"
	ReasonOverrideCreated       = "OverrideCreated"
	ReasonOverrideExpired       = "OverrideExpired"
	ReasonOverrideDeleted       = "OverrideDeleted"
	ReasonStale                 = "Stale"
	ReasonNoLongerStale         = "NoLongerStale"
	ReasonRuleError             = "RuleError"
)

// Actions of the events: what happened to the flag.
const (
	ActionUpdate   = "Update"
	ActionOverride = "Override"
	ActionCheck    = "Check"
	ActionEvaluate = "Evaluate"
	// ActionRollout: a rollout plan moved (Reason Rollout<transition>,
	// pkg/rolloutplan's reasons).
	ActionRollout = "Rollout"
)

// Rate of the token bucket in front of the broadcaster: a sustained 5
// events a second per replica, bursts of 50.
const (
	eventsPerSecond = 5
	eventBurst      = 50
)

var (
	droppedEvents = metrics.NewCounter(&metrics.CounterOpts{
		Name:           "flagpole_events_dropped_total",
		Help:           "Events about flags not recorded because they came faster than the recorder's rate limit.",
		StabilityLevel: metrics.ALPHA,
	})
	registerMetrics sync.Once
)

// Recorder records events about flags.
type Recorder = events.EventRecorder

// Events owns the broadcaster and the rate-limited recorder on it.
type Events struct {
	broadcaster events.EventBroadcaster
	kube        kubernetes.Interface
	recorder    Recorder
}

// New returns the events of a server whose objects scheme knows. With kube
// nil (standalone) they are only logged.
func New(kube kubernetes.Interface, scheme *runtime.Scheme) *Events {
	registerMetrics.Do(func() { legacyregistry.MustRegister(droppedEvents) })
	var sink events.EventSink
	if kube != nil {
		sink = &events.EventSinkImpl{Interface: kube.EventsV1()}
	}
	b := events.NewBroadcaster(sink)
	return &Events{
		broadcaster: b,
		kube:        kube,
		recorder: limited{
			next:    b.NewRecorder(scheme, ReportingController),
			limiter: flowcontrol.NewTokenBucketRateLimiter(eventsPerSecond, eventBurst),
		},
	}
}

// Recorder is the rate-limited recorder.
func (e *Events) Recorder() Recorder { return e.recorder }

// Start sends events to kube-apiserver (delegated mode) and to the log
// until ctx is done.
func (e *Events) Start(ctx context.Context) error {
	e.broadcaster.StartStructuredLogging(0)
	if e.kube != nil {
		if err := e.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
			return err
		}
	}
	go func() {
		<-ctx.Done()
		e.broadcaster.Shutdown()
	}()
	return nil
}

// limited drops events beyond its token bucket.
type limited struct {
	next    Recorder
	limiter flowcontrol.RateLimiter
}

func (l limited) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...interface{}) {
	if !l.limiter.TryAccept() {
		droppedEvents.Inc()
		klog.V(4).InfoS("Event dropped by the rate limit", "reason", reason)
		return
	}
	l.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
}
