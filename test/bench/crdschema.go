package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/openapi"
)

// The CRD the bench measures Flagpole against: kind Flag, the same spec and
// status, in a group of its own.
const (
	crdGroup   = "crdflags.bench.flagpole.dev"
	crdVersion = "v1beta1"
)

// flagCRD is a CustomResourceDefinition of Flag whose structural schema is
// derived from Flagpole's generated OpenAPI (pkg/generated/openapi): refs
// resolved inline, the JSON value type as x-kubernetes-preserve-unknown-fields,
// metadata left out (a CRD's is implicit and may not be described),
// vendor extensions kept only where CRDs know them, defaults kept only where
// a CRD can hold them (non-empty scalars), with the status subresource.
func flagCRD() map[string]any {
	const prefix = "#/definitions/"
	defs := openapi.GetOpenAPIDefinitions(func(name string) spec.Ref { return spec.MustCreateRef(prefix + name) })
	var convert func(s spec.Schema) map[string]any
	convert = func(s spec.Schema) map[string]any {
		ref := s.Ref.String()
		if ref == "" && len(s.AllOf) == 1 {
			ref = s.AllOf[0].Ref.String()
		}
		if ref != "" {
			name := strings.TrimPrefix(ref, prefix)
			var out map[string]any
			switch name {
			case v1beta1.JSON{}.OpenAPIModelName():
				out = map[string]any{"x-kubernetes-preserve-unknown-fields": true}
			case resource.Quantity{}.OpenAPIModelName():
				// A number or a string, as controller-gen writes a
				// Quantity's schema in CRDs.
				out = map[string]any{"anyOf": []any{map[string]any{"type": "integer"}, map[string]any{"type": "string"}}, "x-kubernetes-int-or-string": true}
			default:
				out = convert(defs[name].Schema)
			}
			if s.Description != "" {
				out["description"] = s.Description
			}
			return out
		}
		out := map[string]any{}
		if len(s.Type) > 0 {
			out["type"] = s.Type[0]
		}
		if s.Description != "" {
			out["description"] = s.Description
		}
		switch s.Format {
		case "int32", "int64", "date-time", "byte", "double", "float":
			out["format"] = s.Format
		}
		if len(s.Enum) > 0 {
			out["enum"] = s.Enum
		}
		if d, ok := s.Default.(string); ok && d != "" {
			out["default"] = d
		}
		if len(s.Required) > 0 {
			out["required"] = s.Required
		}
		if len(s.Properties) > 0 {
			props := map[string]any{}
			for k, p := range s.Properties {
				props[k] = convert(p)
			}
			out["properties"] = props
		}
		if s.Items != nil && s.Items.Schema != nil {
			out["items"] = convert(*s.Items.Schema)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			out["additionalProperties"] = convert(*s.AdditionalProperties.Schema)
		}
		for _, ext := range []string{"x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type"} {
			if v, ok := s.Extensions[ext]; ok {
				out[ext] = v
			}
		}
		return out
	}
	schema := convert(defs[v1beta1.Flag{}.OpenAPIModelName()].Schema)
	// A CRD's metadata is implicit: the schema may not describe it.
	delete(schema["properties"].(map[string]any), "metadata")
	return crdDefinition(crdGroup, "Flag", "flags", schema)
}

// benchFlag is the object every path creates, as the CRD and Flagpole
// take it (apiVersion aside): a String flag with three variants, a rule with
// a CEL condition of its own and a fractional rollout, an owner and an expiry, like
// artifacts/examples/flag-new-checkout.yaml.
func benchFlag(apiVersion, name string) map[string]any {
	return map[string]any{
		"apiVersion": apiVersion,
		"kind":       "Flag",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"team": "checkout"}},
		"spec": map[string]any{
			"description": "Checkout flow experiment",
			"type":        "String",
			"state":       "Enabled",
			"variants": []any{
				map[string]any{"name": "control", "value": "classic"},
				map[string]any{"name": "one-page", "value": "one-page"},
				map[string]any{"name": "express", "value": "express"},
			},
			"defaultVariant": "control",
			"rules": []any{
				// Every flag's expression differs, so that each create
				// compiles its own, as flags with their own targeting do.
				map[string]any{"name": "enterprise", "when": fmt.Sprintf("context.plan == %q", "enterprise-"+name), "variant": "one-page"},
				map[string]any{"name": "gradual", "rollout": map[string]any{"distribution": []any{
					map[string]any{"variant": "control", "weight": int64(80)},
					map[string]any{"variant": "one-page", "weight": int64(10)},
					map[string]any{"variant": "express", "weight": int64(10)},
				}}},
			},
			"owner":     "team-checkout",
			"expiresAt": "2027-03-01T00:00:00Z",
		},
	}
}
