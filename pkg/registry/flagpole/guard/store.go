package guard

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Store is a genericregistry.Store whose reads and writes check what upstream
// turns into a 500, a hang or a panic, and whose writes are bounded by Size.
type Store struct {
	*genericregistry.Store
	// Size bounds every object this store writes, as stored.
	Size SizeLimit
}

var (
	_ rest.Getter            = Store{}
	_ rest.Lister            = Store{}
	_ rest.Watcher           = Store{}
	_ rest.Creater           = Store{}
	_ rest.Updater           = Store{}
	_ rest.CollectionDeleter = Store{}
)

// Get refuses a resourceVersion that is not one this server issues.
func (s Store) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	if options != nil {
		if err := CheckResourceVersion(options.ResourceVersion); err != nil {
			return nil, err
		}
	}
	rctx, cancel := readContext(ctx)
	defer cancel()
	obj, err := s.Store.Get(rctx, name, options)
	return obj, Unavailable(ctx, err)
}

// List refuses a resourceVersion that is not one this server issues.
func (s Store) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	if err := checkListOptions(options); err != nil {
		return nil, err
	}
	rctx, cancel := readContext(ctx)
	defer cancel()
	obj, err := s.Store.List(rctx, options)
	return obj, Unavailable(ctx, err)
}

// Watch refuses a resourceVersion that is not one this server issues.
func (s Store) Watch(ctx context.Context, options *metainternalversion.ListOptions) (watch.Interface, error) {
	if err := checkListOptions(options); err != nil {
		return nil, err
	}
	return s.Store.Watch(ctx, options)
}

// DeleteCollection lists first, so it checks the list options as List does.
func (s Store) DeleteCollection(ctx context.Context, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions, listOptions *metainternalversion.ListOptions) (runtime.Object, error) {
	if err := checkListOptions(listOptions); err != nil {
		return nil, err
	}
	obj, err := s.Store.DeleteCollection(writeContext(ctx), deleteValidation, options, listOptions)
	return obj, Unavailable(ctx, err)
}

// Create checks the stored size of the object the strategy made (Size),
// answers 503 when etcd cannot take the write (see Unavailable), unless the
// write was applied after all (see OwnCreate).
func (s Store) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	out, err := s.Store.Create(writeContext(ctx), obj, s.validateCreate(createValidation), options)
	unavailable := Unavailable(ctx, err)
	if apierrors.IsServiceUnavailable(unavailable) && MayHaveApplied(err) {
		rctx, cancel := context.WithTimeout(ctx, ownCreateTimeout)
		defer cancel()
		if stored := OwnCreate(rctx, obj, s.Store.Get); stored != nil {
			return stored, nil
		}
	}
	return out, unavailable
}

// Delete answers 503 when etcd cannot take the write (see Unavailable).
func (s Store) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	out, immediate, err := s.Store.Delete(writeContext(ctx), name, deleteValidation, options)
	return out, immediate, Unavailable(ctx, err)
}

// Update computes the new object through UpdatedObjectInfo, which turns the
// panics and plain errors of patch application into 400s, checks the stored
// size of the object the strategy made (Size), and answers 503 when etcd
// cannot take the write (see Unavailable).
func (s Store) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	out, created, err := s.Store.Update(writeContext(ctx), name, UpdatedObjectInfo(objInfo),
		s.validateCreate(createValidation), s.validateUpdate(updateValidation), forceAllowCreate, options)
	return out, created, Unavailable(ctx, err)
}
