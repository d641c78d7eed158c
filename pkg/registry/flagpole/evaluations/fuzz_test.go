package evaluations_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/evaluation"
)

// FuzzDecodeEvaluationRequest: whatever body a client sends to
// flags/evaluate, decoding it the way the server does (into the internal
// type, through v1beta1) and parsing its context never panics, and a body
// that decodes either yields a usable context or a context error.
func FuzzDecodeEvaluationRequest(f *testing.F) {
	for _, seed := range []string{
		`{"apiVersion":"flagpole.dev/v1beta1","kind":"EvaluationRequest","context":{"targetingKey":"u","plan":"x"}}`,
		`{"context":{"a":[1,2,{"b":null}]},"type":"Boolean"}`,
		`{"context":"nope"}`, `{"context":{"targetingKey":7}}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(seed))
	}
	scheme := runtime.NewScheme()
	install.Install(scheme)
	decoder := serializer.NewCodecFactory(scheme).UniversalDecoder(flagpole.SchemeGroupVersion)
	gvk := flagpole.SchemeGroupVersion.WithKind("EvaluationRequest")
	f.Fuzz(func(t *testing.T, body []byte) {
		req := &flagpole.EvaluationRequest{}
		v1 := gvk
		v1.Version = "v1beta1"
		obj, _, err := decoder.Decode(body, &v1, req)
		if err != nil {
			return
		}
		r, ok := obj.(*flagpole.EvaluationRequest)
		if !ok {
			return
		}
		c, err := evaluation.ParseContext(r.Context.Raw)
		if err == nil && c.Attributes == nil {
			t.Fatal("a parsed context without attributes")
		}
	})
}
