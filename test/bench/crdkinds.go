package main

import (
	"fmt"
	"strings"
)

// crdKind is a CustomResourceDefinition the crd bench measures Flagpole
// against: what it is, how to make one of its objects, and where a small
// update writes.
type crdKind struct {
	name     string // as the report names it
	id       string // -crd-peer's value
	group    string
	kind     string
	resource string
	// definition is the CustomResourceDefinition to create.
	definition func() map[string]any
	// object is the bench's flag as this kind holds it.
	object func(apiVersion, name string) map[string]any
	// descriptionPath is the field an update rewrites.
	descriptionPath []string
}

// crdKinds are the CRDs -crd-peer chooses from:
//   - flag: kind Flag with Flagpole's full structural schema, the CRD a
//     project would write to serve the same API from kube-apiserver;
//   - featureflag: the OpenFeature Operator's FeatureFlag
//     (core.openfeature.dev/v1beta1), what a user would otherwise install;
//   - minimal: kind Flag whose schema preserves unknown fields, the
//     cheapest a CRD gets.
var crdKinds = []*crdKind{
	{name: "Flag CRD", id: "flag", group: crdGroup, kind: "Flag", resource: "flags",
		definition: flagCRD, object: benchFlag, descriptionPath: []string{"spec", "description"}},
	{name: "FeatureFlag CRD", id: "featureflag", group: "core.openfeature.dev", kind: "FeatureFlag", resource: "featureflags",
		definition: featureFlagCRD, object: benchFeatureFlag, descriptionPath: []string{"metadata", "annotations", "bench.flagpole.dev/description"}},
	{name: "minimal CRD", id: "minimal", group: "minimalflags.bench.flagpole.dev", kind: "Flag", resource: "flags",
		definition: minimalCRD, object: benchFlag, descriptionPath: []string{"spec", "description"}},
}

func crdKindByID(id string) (*crdKind, error) {
	var ids []string
	for _, k := range crdKinds {
		if k.id == id {
			return k, nil
		}
		ids = append(ids, k.id)
	}
	return nil, fmt.Errorf("-crd-peer %q: want one of %s", id, strings.Join(ids, ", "))
}

// crdDefinition is a namespaced CRD of one served and stored version with
// the status subresource.
func crdDefinition(group, kind, plural string, schema map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": plural + "." + group},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": plural, "singular": strings.ToLower(kind), "kind": kind, "listKind": kind + "List"},
			"versions": []any{map[string]any{
				"name": crdVersion, "served": true, "storage": true,
				"schema":       map[string]any{"openAPIV3Schema": schema},
				"subresources": map[string]any{"status": map[string]any{}},
			}},
		},
	}
}

var preserve = map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}

// featureFlagCRD is the OpenFeature Operator's FeatureFlag v1beta1 as its
// documentation describes it (written from the documented fields, not
// copied): spec.flagSpec.flags maps a flag's key to its state
// (ENABLED/DISABLED), variants, defaultVariant and targeting (JsonLogic,
// kept as sent), beside $evaluators.
func featureFlagCRD() map[string]any {
	flag := map[string]any{
		"type":     "object",
		"required": []any{"state", "variants", "defaultVariant"},
		"properties": map[string]any{
			"state":          map[string]any{"type": "string", "enum": []any{"ENABLED", "DISABLED"}},
			"variants":       preserve,
			"defaultVariant": map[string]any{"type": "string"},
			"targeting":      preserve,
			"metadata":       preserve,
		},
	}
	return crdDefinition("core.openfeature.dev", "FeatureFlag", "featureflags", map[string]any{
		"type": "object",
		"properties": map[string]any{
			"apiVersion": map[string]any{"type": "string"},
			"kind":       map[string]any{"type": "string"},
			"spec": map[string]any{
				"type": "object",
				"properties": map[string]any{
					"flagSpec": map[string]any{
						"type": "object",
						"properties": map[string]any{
							"flags":       map[string]any{"type": "object", "additionalProperties": flag},
							"$evaluators": preserve,
							"metadata":    preserve,
						},
					},
				},
			},
			"status": preserve,
		},
	})
}

// minimalCRD is kind Flag with nothing checked below the top level.
func minimalCRD() map[string]any {
	return crdDefinition("minimalflags.bench.flagpole.dev", "Flag", "flags", map[string]any{
		"type": "object",
		"properties": map[string]any{
			"apiVersion": map[string]any{"type": "string"},
			"kind":       map[string]any{"type": "string"},
			"spec":       preserve,
			"status":     preserve,
		},
	})
}

// benchFeatureFlag is benchFlag as a FeatureFlag holds it: the same three
// variants, the per-object condition and the 80/10/10 split as flagd's
// JsonLogic (if, ==, var, fractional).
func benchFeatureFlag(apiVersion, name string) map[string]any {
	return map[string]any{
		"apiVersion": apiVersion,
		"kind":       "FeatureFlag",
		"metadata":   map[string]any{"name": name, "labels": map[string]any{"team": "checkout"}},
		"spec": map[string]any{
			"flagSpec": map[string]any{
				"flags": map[string]any{
					"checkout-flow": map[string]any{
						"state":          "ENABLED",
						"variants":       map[string]any{"control": "classic", "one-page": "one-page", "express": "express"},
						"defaultVariant": "control",
						"targeting": map[string]any{"if": []any{
							map[string]any{"==": []any{map[string]any{"var": "plan"}, "enterprise-" + name}},
							"one-page",
							map[string]any{"fractional": []any{
								[]any{"control", int64(80)}, []any{"one-page", int64(10)}, []any{"express", int64(10)},
							}},
						}},
						"metadata": map[string]any{"owner": "team-checkout", "description": "Checkout flow experiment"},
					},
				},
			},
		},
	}
}
