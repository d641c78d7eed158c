// Package telemetry reports the server's flag evaluations to operators, as
// evaluator.Observers, with the OpenTelemetry semantic conventions for
// feature flags: counters on /metrics (metrics.go, the names of
// OpenFeature's OpenTelemetry metrics hook, attributes as Prometheus labels)
// and a feature_flag.evaluation event on the request's span when tracing is
// on (trace.go). Neither carries a targeting key or anything of the
// context, and the flags that get series of their own are capped.
package telemetry

import (
	"strings"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// The OpenTelemetry attribute names (semantic conventions for feature
// flags). As Prometheus labels their dots are underscores, as the
// OpenTelemetry Prometheus exporter writes them.
const (
	AttrKey           = "feature_flag.key"
	AttrVariant       = "feature_flag.result.variant"
	AttrReason        = "feature_flag.result.reason"
	AttrErrorType     = "error.type"
	AttrErrorMessage  = "error.message"
	AttrProviderName  = "feature_flag.provider.name"
	AttrSetID         = "feature_flag.set.id"
	AttrVersion       = "feature_flag.version"
	EvaluationEvent   = "feature_flag.evaluation"
	ProviderName      = "flagpole"
	otherLabel        = "_other"
	unknownReason     = "unknown"
	generalErrorLower = "general"
)

func label(attr string) string { return strings.ReplaceAll(attr, ".", "_") }

// The conventions' values are lower case: OpenFeature's reasons and error
// codes, lowered once here rather than on every evaluation.
var (
	lowerReasons = lowered(flagpole.Reasons...)
	lowerErrors  = lowered(evaluation.ErrorFlagNotFound, evaluation.ErrorTypeMismatch, evaluation.ErrorParse,
		evaluation.ErrorTargetingKeyMissing, evaluation.ErrorInvalidContext, evaluation.ErrorGeneral)
)

func lowered(values ...string) map[string]string {
	m := make(map[string]string, len(values))
	for _, v := range values {
		m[v] = strings.ToLower(v)
	}
	return m
}

// Reason is the convention's value of an OpenFeature reason.
func Reason(r string) string {
	if l, ok := lowerReasons[r]; ok {
		return l
	}
	return unknownReason
}

// ErrorType is the convention's error.type of an OpenFeature error code.
func ErrorType(code string) string {
	if l, ok := lowerErrors[code]; ok {
		return l
	}
	return generalErrorLower
}
