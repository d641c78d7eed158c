package v1beta1_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Defaults are registered with the scheme, which is how the server applies them.
func TestDefaults(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)

	f := &v1beta1.Flag{Spec: v1beta1.FlagSpec{Type: v1beta1.FlagTypeBoolean}}
	scheme.Default(f)
	if f.Spec.State != v1beta1.FlagStateEnabled {
		t.Errorf("state defaulted to %q, want Enabled", f.Spec.State)
	}

	f = &v1beta1.Flag{Spec: v1beta1.FlagSpec{State: v1beta1.FlagStateDisabled}}
	scheme.Default(f)
	if f.Spec.State != v1beta1.FlagStateDisabled {
		t.Errorf("an explicit state was overwritten: %q", f.Spec.State)
	}

	list := &v1beta1.FlagList{Items: []v1beta1.Flag{{}}}
	scheme.Default(list)
	if list.Items[0].Spec.State != v1beta1.FlagStateEnabled {
		t.Errorf("list items are not defaulted: %q", list.Items[0].Spec.State)
	}
}
