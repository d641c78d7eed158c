package integration

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
	"github.com/flagpole-dev/flagpole/test/integration/framework"
)

func startServer(t *testing.T, args ...string) *framework.Server {
	t.Helper()
	return framework.StartServer(t, t.TempDir(), args...)
}

func raw(v any) v1beta1.JSON {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return v1beta1.JSON{Raw: b}
}

func boolFlag(name string) *v1beta1.Flag {
	return &v1beta1.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": "checkout"}},
		Spec: v1beta1.FlagSpec{
			Description: "New checkout flow",
			Type:        v1beta1.FlagTypeBoolean,
			Variants: []v1beta1.Variant{
				{Name: "on", Value: raw(true)},
				{Name: "off", Value: raw(false)},
			},
			DefaultVariant: "off",
			Rules: []v1beta1.Rule{
				{Name: "staff", Segments: []string{"employees"}, When: `context.plan == "enterprise"`, Variant: "on"},
				{Name: "gradual", Rollout: &v1beta1.Rollout{Distribution: []v1beta1.WeightedVariant{{Variant: "on", Weight: 10}, {Variant: "off", Weight: 90}}}},
			},
			Owner: "team-checkout",
		},
	}
}

func startServerIn(t *testing.T, dir string, args ...string) *framework.Server {
	t.Helper()
	return framework.StartServer(t, dir, args...)
}
