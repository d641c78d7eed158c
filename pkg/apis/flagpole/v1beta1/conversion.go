package v1beta1

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

func init() {
	localSchemeBuilder.Register(addFieldLabelConversions)
}

// addFieldLabelConversions lists the field selectors each kind accepts; a
// selector on any other field is rejected with 400 rather than ignored.
func addFieldLabelConversions(scheme *runtime.Scheme) error {
	if err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("Flag"),
		func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace", flagpole.FlagFieldState, flagpole.FlagFieldType, flagpole.FlagFieldStale:
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label %q is not supported for Flag: use metadata.name, metadata.namespace, %s, %s or %s", label, flagpole.FlagFieldState, flagpole.FlagFieldType, flagpole.FlagFieldStale)
		}); err != nil {
		return err
	}
	if err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("FlagRevision"),
		func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace", flagpole.FlagRevisionFieldFlag:
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label %q is not supported for FlagRevision: use metadata.name, metadata.namespace or %s", label, flagpole.FlagRevisionFieldFlag)
		}); err != nil {
		return err
	}
	if err := scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("FlagOverride"),
		func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace", flagpole.FlagOverrideFieldFlag:
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label %q is not supported for FlagOverride: use metadata.name, metadata.namespace or %s", label, flagpole.FlagOverrideFieldFlag)
		}); err != nil {
		return err
	}
	return scheme.AddFieldLabelConversionFunc(SchemeGroupVersion.WithKind("Segment"),
		func(label, value string) (string, string, error) {
			switch label {
			case "metadata.name", "metadata.namespace":
				return label, value, nil
			}
			return "", "", fmt.Errorf("field label %q is not supported for Segment: use metadata.name or metadata.namespace", label)
		})
}
