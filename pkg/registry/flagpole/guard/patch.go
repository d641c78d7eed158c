package guard

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/klog/v2"
)

var _ rest.UpdatedObjectInfo = updatedObjectInfo{}

// UpdatedObjectInfo wraps how an update computes its new object. That is
// where the patch handler applies patches (strategic merge, JSON merge, JSON
// patch, server-side apply), so this is the one place to catch what upstream
// does wrong with a hostile patch:
//   - a panic (strategic merge patch's $setElementOrder on a list without a
//     merge key panics with "hash of unhashable type") becomes a 400;
//   - a plain error (server-side apply of an undeclared field fails with
//     "field not declared in schema") becomes a 400: computing the new object
//     reads only the request and the current object, so its failures are the
//     request's fault. Errors that already carry a status keep it;
//   - a new object with a resourceVersion that does not parse becomes a 422,
//     where the store would answer 500.
func UpdatedObjectInfo(objInfo rest.UpdatedObjectInfo) rest.UpdatedObjectInfo {
	return updatedObjectInfo{objInfo}
}

type updatedObjectInfo struct {
	rest.UpdatedObjectInfo
}

func (u updatedObjectInfo) UpdatedObject(ctx context.Context, oldObj runtime.Object) (obj runtime.Object, err error) {
	defer func() {
		if r := recover(); r != nil {
			klog.FromContext(ctx).V(2).Info("Refused an update whose patch application panicked", "panic", r)
			obj, err = nil, apierrors.NewBadRequest(fmt.Sprintf("the patch cannot be applied: %v", r))
		}
	}()
	obj, err = u.UpdatedObjectInfo.UpdatedObject(ctx, oldObj)
	if err != nil {
		if _, ok := err.(apierrors.APIStatus); !ok {
			err = apierrors.NewBadRequest(err.Error())
		}
		return nil, err
	}
	if _, parseErr := (storage.APIObjectVersioner{}).ObjectResourceVersion(obj); parseErr != nil {
		return nil, apierrors.NewInvalid(obj.GetObjectKind().GroupVersionKind().GroupKind(), "", field.ErrorList{
			field.Invalid(field.NewPath("metadata", "resourceVersion"), resourceVersionOf(obj), "must be a resource version this server issued (a decimal number), or empty"),
		})
	}
	return obj, nil
}

func resourceVersionOf(obj runtime.Object) string {
	if o, ok := obj.(metav1.Object); ok {
		return o.GetResourceVersion()
	}
	return ""
}
