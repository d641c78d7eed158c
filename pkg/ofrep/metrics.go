package ofrep

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// ofrepMetrics are the process's OFREP metrics; every server of the process
// (tests run several) counts into them. registerMetrics registers them with
// /metrics once.
var ofrepMetrics = struct {
	openStreams      *metrics.Gauge
	refusedStreams   *metrics.CounterVec
	events           *metrics.Counter
	coalescedChanges *metrics.Counter
	sharedBulk       *metrics.Counter
}{
	openStreams: metrics.NewGauge(&metrics.GaugeOpts{Namespace: "flagpole", Subsystem: "ofrep", Name: "event_streams",
		Help: "OFREP event streams open now.", StabilityLevel: metrics.ALPHA}),
	refusedStreams: metrics.NewCounterVec(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "ofrep", Name: "event_streams_refused_total",
		Help: "OFREP event streams answered 429, by the limit they were over (server: --max-ofrep-event-streams; user: --max-ofrep-event-streams-per-user).", StabilityLevel: metrics.ALPHA},
		[]string{"limit"}),
	events: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "ofrep", Name: "change_events_total",
		Help: "Change events started (each sent to every stream of its namespace).", StabilityLevel: metrics.ALPHA}),
	coalescedChanges: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "ofrep", Name: "coalesced_changes_total",
		Help: "Changes told together with others instead of as events of their own.", StabilityLevel: metrics.ALPHA}),
	sharedBulk: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "ofrep", Name: "shared_bulk_evaluations_total",
		Help: "Bulk evaluations answered with the result of an identical one in flight.", StabilityLevel: metrics.ALPHA}),
}

var registerOnce sync.Once

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(ofrepMetrics.openStreams, ofrepMetrics.refusedStreams, ofrepMetrics.events, ofrepMetrics.coalescedChanges, ofrepMetrics.sharedBulk)
	})
}
