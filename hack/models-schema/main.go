// Command models-schema prints the OpenAPI v2 definitions generated for the
// flagpole.dev types. hack/update-codegen.sh feeds them to
// applyconfiguration-gen so that apply configurations get Extract* functions.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/util"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/pkg/generated/openapi"
)

func main() {
	if err := output(); err != nil {
		fmt.Fprintf(os.Stderr, "models-schema: %v\n", err)
		os.Exit(1)
	}
}

func output() error {
	refFunc := func(name string) spec.Ref {
		return spec.MustCreateRef(fmt.Sprintf("#/definitions/%s", name))
	}
	defs := openapi.GetOpenAPIDefinitions(refFunc)
	schemaDefs := make(map[string]spec.Schema, len(defs))
	for k, v := range defs {
		// applyconfiguration-gen reads OpenAPI v2: prefer the embedded v2
		// schema where a type carries one.
		if s, ok := v.Schema.Extensions[common.ExtensionV2Schema]; ok {
			if v2, ok := s.(spec.Schema); ok {
				schemaDefs[k] = v2
				continue
			}
		}
		schemaDefs[k] = v.Schema
	}
	// Definitions are keyed by model name (dev.flagpole.v1beta1.Flag), but
	// applyconfiguration-gen looks root types up by their Go name
	// (com.github.flagpole-dev....v1beta1.Flag); without an entry it writes an
	// untyped schema and Extract* treats every list as atomic. References
	// inside keep the model names, which stay defined.
	scheme := runtime.NewScheme()
	if err := v1beta1.AddToScheme(scheme); err != nil {
		return err
	}
	for _, t := range scheme.KnownTypes(v1beta1.SchemeGroupVersion) {
		named, ok := reflect.New(t).Interface().(interface{ OpenAPIModelName() string })
		if !ok {
			continue
		}
		if def, ok := schemaDefs[named.OpenAPIModelName()]; ok {
			schemaDefs[util.ToRESTFriendlyName(t.PkgPath()+"."+t.Name())] = def
		}
	}
	data, err := json.Marshal(&spec.Swagger{
		SwaggerProps: spec.SwaggerProps{
			Definitions: schemaDefs,
			Info:        &spec.Info{InfoProps: spec.InfoProps{Title: "Flagpole", Version: "unversioned"}},
			Swagger:     "2.0",
		},
	})
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(data)
	return err
}
