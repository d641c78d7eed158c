package guard

import (
	"context"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"
)

// StatusReasonInsufficientStorage is the reason of a 507: the datastore has
// no room for the write. metav1 has no reason for it; clients go by the code.
const StatusReasonInsufficientStorage metav1.StatusReason = "InsufficientStorage"

// InsufficientStorage is the 507 Insufficient Storage a write gets when the
// datastore has no room for it; message says why and what to do. It has no
// Retry-After: client-go would retry on its own, and space is freed by an
// operator, not by waiting seconds.
func InsufficientStorage(message string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusInsufficientStorage,
		Reason:  StatusReasonInsufficientStorage,
		Message: message,
	}}
}

// RefuseWrites returns getter with every store it configures refusing
// writes (create, update, delete) while refused returns an error, answered
// 507 with that error's text; reads, watches and dry runs go on. Standalone
// mode gives it embedded etcd's disk space check: refused before they reach
// etcd, writes do not even grow its write-ahead log.
func RefuseWrites(getter generic.RESTOptionsGetter, refused func() error) generic.RESTOptionsGetter {
	return refusingGetter{RESTOptionsGetter: getter, refused: refused}
}

type refusingGetter struct {
	generic.RESTOptionsGetter
	refused func() error
}

func (g refusingGetter) GetRESTOptions(resource schema.GroupResource, example runtime.Object) (generic.RESTOptions, error) {
	opts, err := g.RESTOptionsGetter.GetRESTOptions(resource, example)
	if err != nil {
		return opts, err
	}
	decorate := opts.Decorator
	// The refusal wraps what the decorator made (the watch cache over etcd,
	// usually): reads still come from the cache.
	opts.Decorator = func(config *storagebackend.ConfigForResource, resourcePrefix string, keyFunc func(obj runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, getAttrs storage.AttrFunc, trigger storage.IndexerFuncs, indexers *cache.Indexers,
	) (storage.Interface, factory.DestroyFunc, error) {
		s, destroy, err := decorate(config, resourcePrefix, keyFunc, newFunc, newListFunc, getAttrs, trigger, indexers)
		if err != nil {
			return nil, nil, err
		}
		return refusingStorage{Interface: s, refused: g.refused}, destroy, nil
	}
	return opts, nil
}

// refusingStorage is a storage.Interface whose writes first ask refused.
type refusingStorage struct {
	storage.Interface
	refused func() error
}

func (s refusingStorage) check() error {
	if err := s.refused(); err != nil {
		return InsufficientStorage(err.Error())
	}
	return nil
}

func (s refusingStorage) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Interface.Create(ctx, key, obj, out, ttl)
}

func (s refusingStorage) Delete(ctx context.Context, key string, out runtime.Object, preconditions *storage.Preconditions,
	validateDeletion storage.ValidateObjectFunc, cachedExistingObject runtime.Object, opts storage.DeleteOptions) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Interface.Delete(ctx, key, out, preconditions, validateDeletion, cachedExistingObject, opts)
}

func (s refusingStorage) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *storage.Preconditions, tryUpdate storage.UpdateFunc, cachedExistingObject runtime.Object) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Interface.GuaranteedUpdate(ctx, key, destination, ignoreNotFound, preconditions, tryUpdate, cachedExistingObject)
}
