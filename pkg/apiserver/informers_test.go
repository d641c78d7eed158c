package apiserver

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

func TestTrimForInformers(t *testing.T) {
	f := &v1beta1.Flag{ObjectMeta: metav1.ObjectMeta{
		Name:          "f",
		Labels:        map[string]string{"team": "a"},
		Annotations:   map[string]string{lastApplied: `{"big":"copy"}`, "owner": "x"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}, Spec: v1beta1.FlagSpec{DefaultVariant: "on"}}
	out, err := TrimForInformers(f)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*v1beta1.Flag)
	if got.ManagedFields != nil || got.Annotations[lastApplied] != "" {
		t.Errorf("kept managed fields or the last-applied copy: %+v", got.ObjectMeta)
	}
	if got.Annotations["owner"] != "x" || got.Labels["team"] != "a" || got.Spec.DefaultVariant != "on" {
		t.Errorf("dropped what readers use: %+v", got)
	}
	// Idempotent, as client-go asks of a transform.
	if again, err := TrimForInformers(got); err != nil || again.(*v1beta1.Flag).Annotations["owner"] != "x" {
		t.Errorf("second pass: %v %+v", err, again)
	}
}
