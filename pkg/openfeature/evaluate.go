package openfeature

import (
	"bytes"
	"context"
	"encoding/json"
	"math"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// Evaluate evaluates flag key for an OpenFeature flattened context, exactly
// as the server's OFREP endpoint would; found is false when the namespace
// has no such flag.
func (p *Provider) Evaluate(ctx context.Context, key string, want v1beta1.FlagType, flatCtx of.FlattenedContext) (res v1beta1.FlagEvaluation, found bool) {
	c, err := contextFrom(flatCtx)
	if err != nil {
		return evaluation.InvalidContext(key, err), true
	}
	return p.source.Evaluate(ctx, p.namespace, key, c, want)
}

// contextFrom turns the SDK's flattened context into the engine's, through
// JSON, so that an application's Go values (ints, times, structs) are seen
// exactly as an OFREP client sending the same context would send them.
func contextFrom(flatCtx of.FlattenedContext) (*evaluation.Context, error) {
	if len(flatCtx) == 0 {
		return &evaluation.Context{Attributes: map[string]any{}}, nil
	}
	raw, err := json.Marshal(flatCtx)
	if err != nil {
		return nil, err
	}
	return evaluation.ParseContext(raw)
}

func (p *Provider) resolve(ctx context.Context, key string, want v1beta1.FlagType, flatCtx of.FlattenedContext) (json.RawMessage, of.ProviderResolutionDetail) {
	res, found := p.Evaluate(ctx, key, want, flatCtx)
	detail := of.ProviderResolutionDetail{
		Reason:  of.Reason(res.Reason),
		Variant: res.Variant,
	}
	if !found {
		detail.ResolutionError = of.NewFlagNotFoundResolutionError(res.ErrorMessage)
		return nil, detail
	}
	if res.ErrorCode != "" {
		detail.ResolutionError = resolutionError(res.ErrorCode, res.ErrorMessage)
		return nil, detail
	}
	detail.FlagMetadata = of.FlagMetadata{"resourceVersion": res.Metadata.ResourceVersion, "generation": res.Metadata.Generation}
	if res.Metadata.Rule != "" {
		detail.FlagMetadata["rule"] = res.Metadata.Rule
	}
	if res.Metadata.Override != "" {
		detail.FlagMetadata["override"] = res.Metadata.Override
	}
	if res.Value == nil {
		return nil, detail
	}
	return res.Value.Raw, detail
}

func resolutionError(code, msg string) of.ResolutionError {
	switch code {
	case evaluation.ErrorFlagNotFound:
		return of.NewFlagNotFoundResolutionError(msg)
	case evaluation.ErrorTypeMismatch:
		return of.NewTypeMismatchResolutionError(msg)
	case evaluation.ErrorParse:
		return of.NewParseErrorResolutionError(msg)
	case evaluation.ErrorTargetingKeyMissing:
		return of.NewTargetingKeyMissingResolutionError(msg)
	case evaluation.ErrorInvalidContext:
		return of.NewInvalidContextResolutionError(msg)
	}
	return of.NewGeneralResolutionError(msg)
}

// decode unmarshals a served value; a value that does not fit (a Number
// flag read as an integer but holding 1.5) is a type mismatch and the
// caller's default is used.
func decode[T any](raw json.RawMessage, detail of.ProviderResolutionDetail, def T) (T, of.ProviderResolutionDetail) {
	if raw == nil || detail.ResolutionError != (of.ResolutionError{}) {
		return def, detail
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		detail.ResolutionError = of.NewTypeMismatchResolutionError(err.Error())
		detail.Reason = of.ErrorReason
		return def, detail
	}
	return v, detail
}

// BooleanEvaluation implements of.FeatureProvider.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, def bool, flatCtx of.FlattenedContext) of.BoolResolutionDetail {
	raw, d := p.resolve(ctx, flag, v1beta1.FlagTypeBoolean, flatCtx)
	v, d := decode(raw, d, def)
	return of.BoolResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// StringEvaluation implements of.FeatureProvider.
func (p *Provider) StringEvaluation(ctx context.Context, flag string, def string, flatCtx of.FlattenedContext) of.StringResolutionDetail {
	raw, d := p.resolve(ctx, flag, v1beta1.FlagTypeString, flatCtx)
	v, d := decode(raw, d, def)
	return of.StringResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// FloatEvaluation implements of.FeatureProvider: Number flags.
func (p *Provider) FloatEvaluation(ctx context.Context, flag string, def float64, flatCtx of.FlattenedContext) of.FloatResolutionDetail {
	raw, d := p.resolve(ctx, flag, v1beta1.FlagTypeNumber, flatCtx)
	v, d := decode(raw, d, def)
	return of.FloatResolutionDetail{Value: v, ProviderResolutionDetail: d}
}

// IntEvaluation implements of.FeatureProvider: Number flags whose served
// value is a whole number within int64 (1e3 is; 1.5 is a type mismatch).
func (p *Provider) IntEvaluation(ctx context.Context, flag string, def int64, flatCtx of.FlattenedContext) of.IntResolutionDetail {
	raw, d := p.resolve(ctx, flag, v1beta1.FlagTypeNumber, flatCtx)
	f, d := decode(raw, d, float64(def))
	if d.ResolutionError != (of.ResolutionError{}) || raw == nil {
		return of.IntResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		d.ResolutionError = of.NewTypeMismatchResolutionError("the value " + string(bytes.TrimSpace(raw)) + " is not a whole number")
		d.Reason = of.ErrorReason
		return of.IntResolutionDetail{Value: def, ProviderResolutionDetail: d}
	}
	return of.IntResolutionDetail{Value: int64(f), ProviderResolutionDetail: d}
}

// ObjectEvaluation implements of.FeatureProvider: the value as
// encoding/json decodes it (map[string]any or []any).
func (p *Provider) ObjectEvaluation(ctx context.Context, flag string, def any, flatCtx of.FlattenedContext) of.InterfaceResolutionDetail {
	raw, d := p.resolve(ctx, flag, v1beta1.FlagTypeObject, flatCtx)
	v, d := decode(raw, d, def)
	return of.InterfaceResolutionDetail{Value: v, ProviderResolutionDetail: d}
}
