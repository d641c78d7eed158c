package guard

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// SizeLimit bounds the objects a store writes, measured as the store
// encodes them. etcd refuses a request over 1.5 MiB (and its client
// anything over 2 MiB) with errors the store reports as 500s; a store with a
// SizeLimit says so with a 422 before the object is written.
type SizeLimit struct {
	// Storage is the store's storage codec (StorageCodec): what etcd
	// receives is what is measured.
	Storage runtime.Encoder
	// Max is the most bytes an object may take as stored.
	Max int
	// Path names the part of the object the writer controls (spec for the
	// main resource, status for the status subresource).
	Path *field.Path
}

// validateCreate checks the size before the request's own validation
// (admission): upstream calls it on the object exactly as the strategy
// made it, defaulted, validated and canonicalized, so what is measured is
// what would be stored.
func (s Store) validateCreate(next rest.ValidateObjectFunc) rest.ValidateObjectFunc {
	return func(ctx context.Context, obj runtime.Object) error {
		if err := s.CheckSize(obj); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		return next(ctx, obj)
	}
}

// validateUpdate is validateCreate for updates and patches.
func (s Store) validateUpdate(next rest.ValidateObjectUpdateFunc) rest.ValidateObjectUpdateFunc {
	return func(ctx context.Context, obj, old runtime.Object) error {
		if err := s.CheckSize(obj); err != nil {
			return err
		}
		if next == nil {
			return nil
		}
		return next(ctx, obj, old)
	}
}

// CheckSize is a 422 naming the object's stored size when it is over the
// store's limit; a store without a limit (no Storage) checks nothing.
func (s Store) CheckSize(obj runtime.Object) error {
	if s.Size.Storage == nil {
		return nil
	}
	errs := ValidateStoredSize(s.Size.Storage, obj, s.Size.Max, s.Size.Path)
	if len(errs) == 0 {
		return nil
	}
	var kind schema.GroupKind
	if kinds, _, err := s.Store.CreateStrategy.ObjectKinds(obj); err == nil && len(kinds) > 0 {
		kind = kinds[0].GroupKind()
	}
	var name string
	if m, err := meta.Accessor(obj); err == nil {
		name = m.GetName()
	}
	return apierrors.NewInvalid(kind, name, errs)
}

// ValidateStoredSize checks that obj, encoded as storage encodes it (enc,
// see StoredSize), takes at most max bytes. fldPath names the part of the
// object the writer controls.
func ValidateStoredSize(enc runtime.Encoder, obj runtime.Object, max int, fldPath *field.Path) field.ErrorList {
	size, err := StoredSize(enc, obj)
	if err != nil {
		return field.ErrorList{field.InternalError(fldPath, err)}
	}
	if size > max {
		tooLong := field.TooLong(fldPath, "", max)
		tooLong.Detail = fmt.Sprintf("the object takes %d bytes as stored, more than the %d bytes Flagpole stores (etcd refuses requests over 1.5 MiB)", size, max)
		return field.ErrorList{tooLong}
	}
	return nil
}

// StoredSize is the length of obj as storage writes it: encoded by enc, the
// store's storage codec (v1beta1 in the --storage-media-type encoding).
func StoredSize(enc runtime.Encoder, obj runtime.Object) (int, error) {
	var n byteCounter
	if err := enc.Encode(obj, &n); err != nil {
		return 0, err
	}
	return int(n), nil
}

// StorageCodec is the storage codec of the store for resource: what it
// writes to etcd with, so what StoredSize measures with.
func StorageCodec(optsGetter generic.RESTOptionsGetter, resource schema.GroupResource, example runtime.Object) (runtime.Codec, error) {
	opts, err := optsGetter.GetRESTOptions(resource, example)
	if err != nil {
		return nil, err
	}
	return opts.StorageConfig.Codec, nil
}

// JSONStorage is the storage encoding of --storage-media-type=application/json,
// for stores made without a server (tests).
func JSONStorage(scheme *runtime.Scheme) runtime.Encoder {
	return serializer.NewCodecFactory(scheme).LegacyCodec(v1beta1.SchemeGroupVersion)
}

// byteCounter is an io.Writer that only counts.
type byteCounter int

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// NewStore completes store with options, as genericregistry.Store's
// CompleteWithOptions does, and wraps it, every object it writes bounded by
// limit, measured with the store's storage codec.
func NewStore(store *genericregistry.Store, options *generic.StoreOptions, limit SizeLimit) (Store, error) {
	if err := store.CompleteWithOptions(options); err != nil {
		return Store{}, err
	}
	codec, err := StorageCodec(options.RESTOptions, store.DefaultQualifiedResource, store.NewFunc())
	if err != nil {
		return Store{}, err
	}
	limit.Storage = codec
	return Store{Store: store, Size: limit}, nil
}
