package openfeature

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
	"github.com/flagpole-dev/flagpole/pkg/evaluator"
)

// Evaluate evaluates flag key for an OpenFeature flattened context, exactly
// as the server's OFREP endpoint would; found is false when the namespace
// has no such flag.
func (p *Provider) Evaluate(ctx context.Context, key string, want v1beta1.FlagType, flatCtx of.FlattenedContext) (res v1beta1.FlagEvaluation, found bool) {
	c, pooled, err := contextFrom(flatCtx)
	if err != nil {
		return evaluation.InvalidContext(key, err), true
	}
	if pooled {
		defer putContext(c)
	}
	return p.source.Evaluate(ctx, p.namespace, key, c, evaluator.Options{ExpectedType: want})
}

// contexts are the Contexts evaluations convert into: each keeps the
// attributes map it made, so a context with values to convert (an int, a
// nested map) costs no allocation once the pool is warm.
var contexts = sync.Pool{New: func() any { return new(evaluation.Context) }}

// putContext hands a pooled Context back once its evaluation is over,
// holding none of the application's values.
func putContext(c *evaluation.Context) {
	c.Release()
	contexts.Put(c)
}

// emptyContext is every evaluation without a context: the engine only
// reads it.
var emptyContext = &evaluation.Context{Attributes: map[string]any{}}

// contextFrom turns the SDK's flattened context into the engine's as an
// OFREP client sending the same context would have it seen: directly for
// the values JSON would carry unchanged (strings, numbers, booleans, maps
// and lists of them), through JSON for the rest (times, structs). pooled
// says c is from contexts and goes back with putContext (a release
// function instead would cost an allocation per evaluation).
func contextFrom(flatCtx of.FlattenedContext) (c *evaluation.Context, pooled bool, err error) {
	if len(flatCtx) == 0 {
		return emptyContext, false, nil
	}
	c = contexts.Get().(*evaluation.Context)
	ok, err := c.SetValues(flatCtx)
	if ok {
		if err != nil {
			putContext(c)
			return nil, false, err
		}
		return c, true, nil
	}
	putContext(c)
	raw, err := json.Marshal(flatCtx)
	if err != nil {
		return nil, false, err
	}
	c, err = evaluation.ParseContext(raw)
	return c, false, err
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
	detail.FlagMetadata = p.metadata.get(p.namespace, key, &res.Metadata)
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
	if fast, ok := decodeScalar[T](raw); ok {
		return fast, detail
	}
	// Declared here, not above: taking its address makes it escape, which
	// the scalar path need not pay for.
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		detail.ResolutionError = of.NewTypeMismatchResolutionError(err.Error())
		detail.Reason = of.ErrorReason
		return def, detail
	}
	return v, detail
}

// decodeScalar decodes the served values that need no JSON decoder, as
// encoding/json would: a boolean, a number as float64, a string without
// escapes. ok is false for anything else.
func decodeScalar[T any](raw json.RawMessage) (v T, ok bool) {
	switch p := any(&v).(type) {
	case *bool:
		switch string(raw) {
		case "true":
			*p = true
			return v, true
		case "false":
			return v, true
		}
	case *string:
		if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
			body := raw[1 : n-1]
			if bytes.IndexByte(body, '\\') < 0 && bytes.IndexByte(body, '"') < 0 && utf8.Valid(body) && !hasControl(body) {
				*p = string(body)
				return v, true
			}
		}
	case *float64:
		// Served values are stored JSON: a number here is valid JSON.
		if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
			if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
				*p = f
				return v, true
			}
		}
	}
	return v, false
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
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

// metadataCache holds the FlagMetadata of each flag's answers: one map per
// flag, resourceVersion, rule and override, handed to every answer that
// has them (the SDK copies none; hooks must treat it as read-only, as its
// documentation asks of evaluation details), so that an evaluation builds
// no map. It is bounded: past maxMetadata entries it starts afresh.
type metadataCache struct {
	mu      sync.RWMutex
	entries map[metadataKey]of.FlagMetadata
}

type metadataKey struct {
	flag, resourceVersion, rule, override string
}

const maxMetadata = 4096

func (m *metadataCache) get(namespace, flag string, md *v1beta1.EvaluationMetadata) of.FlagMetadata {
	key := metadataKey{flag, md.ResourceVersion, md.Rule, md.Override}
	m.mu.RLock()
	fm, ok := m.entries[key]
	m.mu.RUnlock()
	if ok {
		return fm
	}
	// flagSetId and version are what the SDK's telemetry reads into
	// feature_flag.set.id and feature_flag.version, as OFREP answers them.
	fm = of.FlagMetadata{"flagSetId": namespace, "version": strconv.FormatInt(md.Generation, 10),
		"resourceVersion": md.ResourceVersion, "generation": md.Generation}
	if md.Rule != "" {
		fm["rule"] = md.Rule
	}
	if md.Override != "" {
		fm["override"] = md.Override
	}
	m.mu.Lock()
	if m.entries == nil || len(m.entries) >= maxMetadata {
		m.entries = map[metadataKey]of.FlagMetadata{}
	}
	m.entries[key] = fm
	m.mu.Unlock()
	return fm
}
