package guard

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apiserver/pkg/storage"
)

func checkListOptions(options *metainternalversion.ListOptions) error {
	if options == nil {
		return nil
	}
	return CheckResourceVersion(options.ResourceVersion)
}

// CheckResourceVersion answers 400 for a resourceVersion the storage cannot
// parse; upstream's storage returns an error the handlers report as a 500.
func CheckResourceVersion(rv string) error {
	if _, err := (storage.APIObjectVersioner{}).ParseResourceVersion(rv); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("resourceVersion %q is not a resource version this server issued: it must be a decimal number", rv))
	}
	return nil
}
