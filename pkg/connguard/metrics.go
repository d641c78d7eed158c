package connguard

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

type guardMetrics struct {
	refusedConnections *metrics.Counter
	idleConnections    *metrics.Counter
	resetStreams       *metrics.Counter
	goAways            *metrics.Counter
	slowBodies         *metrics.Counter
}

var (
	processMetrics = &guardMetrics{
		refusedConnections: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "connections", Name: "refused_total",
			Help: "Connections refused because their client address already held --max-connections-per-client-address (answered 429, or closed as accepted past twice the limit).", StabilityLevel: metrics.ALPHA}),
		idleConnections: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "connections", Name: "first_request_timeouts_total",
			Help: "Connections closed because they started no request within the first-request timeout.", StabilityLevel: metrics.ALPHA}),
		resetStreams: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "http2", Name: "reset_streams_total",
			Help: "Requests whose client reset the stream (or went away) before they were answered.", StabilityLevel: metrics.ALPHA}),
		goAways: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "http2", Name: "reset_goaways_total",
			Help: "Connections sent GOAWAY for resetting streams faster than allowed.", StabilityLevel: metrics.ALPHA}),
		slowBodies: metrics.NewCounter(&metrics.CounterOpts{Namespace: "flagpole", Subsystem: "http", Name: "slow_request_bodies_total",
			Help: "Requests answered 408 because their body did not arrive within the body read timeout.", StabilityLevel: metrics.ALPHA}),
	}
	registerOnce sync.Once
)

// registeredMetrics returns the process's connection metrics, registered
// with /metrics on first use; every Guard of the process (tests run several
// servers) counts into them.
func registeredMetrics() *guardMetrics {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(processMetrics.refusedConnections, processMetrics.idleConnections,
			processMetrics.resetStreams, processMetrics.goAways, processMetrics.slowBodies)
	})
	return processMetrics
}
