package telemetry

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
)

// TraceEvents adds a feature_flag.evaluation event to the request's span
// for every evaluation, when the request is traced (--tracing-config-file
// and a sampled span); otherwise it costs a check of the span. The event has
// the conventions' attributes, but not feature_flag.context.id: a targeting
// key is often a person's identifier, and traces leave the cluster.
func TraceEvents() evaluator.Observer { return traceEvents{} }

type traceEvents struct{}

// IgnoresDuration: the event needs no duration (evaluator.Untimed).
func (traceEvents) IgnoresDuration() {}

func (traceEvents) Evaluated(ctx context.Context, f *v1beta1.Flag, res v1beta1.FlagEvaluation, _ time.Time, _ time.Duration, _ evaluator.FlagExister) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String(AttrKey, f.Name),
		attribute.String(AttrProviderName, ProviderName),
		attribute.String(AttrSetID, f.Namespace),
		attribute.String(AttrVersion, strconv.FormatInt(f.Generation, 10)),
		attribute.String(AttrReason, Reason(res.Reason)),
	}
	if res.Variant != "" {
		attrs = append(attrs, attribute.String(AttrVariant, res.Variant))
	}
	if res.ErrorCode != "" {
		attrs = append(attrs, attribute.String(AttrErrorType, ErrorType(res.ErrorCode)), attribute.String(AttrErrorMessage, res.ErrorMessage))
	}
	span.AddEvent(EvaluationEvent, trace.WithAttributes(attrs...))
}

func (traceEvents) NotFound(ctx context.Context, namespace, key string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent(EvaluationEvent, trace.WithAttributes(
		attribute.String(AttrKey, key),
		attribute.String(AttrProviderName, ProviderName),
		attribute.String(AttrSetID, namespace),
		attribute.String(AttrReason, Reason(evaluation.ReasonError)),
		attribute.String(AttrErrorType, ErrorType(evaluation.ErrorFlagNotFound)),
	))
}

func (traceEvents) Deleted(*v1beta1.Flag) {}
