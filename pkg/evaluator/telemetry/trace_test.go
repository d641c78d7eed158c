package telemetry

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// A traced request's span gets one feature_flag.evaluation event per
// evaluation, with the conventions' attributes and no targeting key; an
// untraced one gets nothing.
func TestTraceEvents(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	ctx, span := provider.Tracer("test").Start(context.Background(), "request")
	o := TraceEvents()
	o.Evaluated(ctx, flag("shop", "new-checkout", 4), *answer("on", "SPLIT"), time.Time{}, 0, nil)
	o.Evaluated(ctx, flag("shop", "new-checkout", 4), v1beta1.FlagEvaluation{Reason: "ERROR", ErrorCode: "GENERAL", ErrorMessage: "no such key"}, time.Time{}, 0, nil)
	o.NotFound(ctx, "shop", "missing")
	o.Evaluated(context.Background(), flag("shop", "untraced", 1), *answer("on", "STATIC"), time.Time{}, 0, nil)
	span.End()

	spans := recorder.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	events := spans[0].Events()
	if len(events) != 3 {
		t.Fatalf("%d events: %+v", len(events), events)
	}
	attrs := func(i int) map[attribute.Key]string {
		out := map[attribute.Key]string{}
		for _, kv := range events[i].Attributes {
			out[kv.Key] = kv.Value.Emit()
		}
		return out
	}
	first := attrs(0)
	for k, want := range map[attribute.Key]string{
		AttrKey: "new-checkout", AttrSetID: "shop", AttrVersion: "4", AttrVariant: "on", AttrReason: "split", AttrProviderName: "flagpole",
	} {
		if first[k] != want || events[0].Name != EvaluationEvent {
			t.Errorf("%s: %q, want %q (event %q)", k, first[k], want, events[0].Name)
		}
	}
	if _, ok := first["feature_flag.context.id"]; ok {
		t.Error("the event carries the targeting key")
	}
	if second := attrs(1); second[AttrErrorType] != "general" || second[AttrReason] != "error" || second[AttrErrorMessage] != "no such key" {
		t.Errorf("error event: %v", second)
	}
	if third := attrs(2); third[AttrErrorType] != "flag_not_found" || third[AttrKey] != "missing" {
		t.Errorf("not found event: %v", third)
	}
}
