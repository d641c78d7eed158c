// Package guard holds what every Flagpole store shares to answer hostile
// input with a 4xx: kube-apiserver itself answers 500 for a malformed
// resourceVersion, for a server-side apply of an undeclared field and for
// objects larger than etcd accepts, and upstream's strategic merge patch
// panics on some patches. The fixes live in one place, used by flags,
// flags/status, segments and flagoverrides alike.
package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/klog/v2"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// Store is a genericregistry.Store whose reads and writes check what upstream
// turns into a 500 or a panic.
type Store struct {
	*genericregistry.Store
}

var (
	_ rest.Getter            = Store{}
	_ rest.Lister            = Store{}
	_ rest.Watcher           = Store{}
	_ rest.Updater           = Store{}
	_ rest.CollectionDeleter = Store{}
	_ rest.UpdatedObjectInfo = updatedObjectInfo{}
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

// Create answers 503 when etcd cannot take the write (see Unavailable),
// unless the write was applied after all (see OwnCreate).
func (s Store) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	out, err := s.Store.Create(writeContext(ctx), obj, createValidation, options)
	unavailable := Unavailable(ctx, err)
	if apierrors.IsServiceUnavailable(unavailable) && mayHaveApplied(err) {
		rctx, cancel := context.WithTimeout(ctx, ownCreateTimeout)
		defer cancel()
		if stored := OwnCreate(rctx, obj, s.Store.Get); stored != nil {
			return stored, nil
		}
	}
	return out, unavailable
}

// ownCreateTimeout bounds the read that looks for a create's own object
// after an ambiguous error: an etcd election takes about a second.
const ownCreateTimeout = 3 * time.Second

// mayHaveApplied tells an etcd error after which a write may have been
// committed (its answer lost to a leader change or a timeout) from one
// etcd gives before accepting it (no leader, too few members): only the
// first is worth reading back, and the second is answered at once.
func mayHaveApplied(err error) bool {
	msg := err.Error()
	return !strings.Contains(msg, "etcdserver: no leader") && !strings.Contains(msg, "etcdserver: not enough started members")
}

// OwnCreate returns the object that created obj when it is stored after
// all: when etcd loses its leader, the answer to a write it committed can be
// lost, and a 503 would have the client retry (client-go does, on its own,
// for a 503 with Retry-After) into a 409 for its own object. The stored
// object is this request's when it has the UID the request gave obj, which
// no other create can have. get reads from etcd (no resourceVersion: a
// quorum read); nil when it fails or finds another object or none.
func OwnCreate(ctx context.Context, obj runtime.Object, get func(context.Context, string, *metav1.GetOptions) (runtime.Object, error)) runtime.Object {
	m, err := meta.Accessor(obj)
	if err != nil || m.GetUID() == "" || m.GetName() == "" {
		return nil
	}
	stored, err := get(ctx, m.GetName(), &metav1.GetOptions{})
	if err != nil {
		return nil
	}
	if sm, err := meta.Accessor(stored); err != nil || sm.GetUID() != m.GetUID() {
		return nil
	}
	return stored
}

// Delete answers 503 when etcd cannot take the write (see Unavailable).
func (s Store) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	out, immediate, err := s.Store.Delete(writeContext(ctx), name, deleteValidation, options)
	return out, immediate, Unavailable(ctx, err)
}

// Update computes the new object through UpdatedObjectInfo, which turns the
// panics and plain errors of patch application into 400s, and answers 503
// when etcd cannot take the write (see Unavailable).
func (s Store) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	out, created, err := s.Store.Update(writeContext(ctx), name, UpdatedObjectInfo(objInfo), createValidation, updateValidation, forceAllowCreate, options)
	return out, created, Unavailable(ctx, err)
}

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

// ValidateStoredSize checks that obj, encoded as storage encodes it (enc,
// see StoredSize), takes at most max bytes. etcd refuses
// a request over 1.5 MiB (and its client anything over 2 MiB) with errors the
// store reports as 500s; this says so with a 422 before the object is
// written. fldPath names the part of the object the writer controls.
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
// for strategies made without a store (tests).
func JSONStorage(scheme *runtime.Scheme) runtime.Encoder {
	return serializer.NewCodecFactory(scheme).LegacyCodec(v1beta1.SchemeGroupVersion)
}

// byteCounter is an io.Writer that only counts.
type byteCounter int

func (c *byteCounter) Write(p []byte) (int, error) {
	*c += byteCounter(len(p))
	return len(p), nil
}

// UnavailableRetryAfterSeconds is the Retry-After of a 503 for an etcd that
// cannot serve: long enough for an election (about a second with etcd's
// defaults), short enough that a client soon sees quorum come back.
const UnavailableRetryAfterSeconds = 5

// ReadTimeout bounds one read of storage (get, list). etcd itself gives up
// on a request after 5s plus two election timeouts (7s with its defaults),
// but etcd's client retries a read that failed with "no leader" until the
// request's deadline: without quorum a GET would hang for the whole
// --request-timeout (60s) and end in a 504. A read still running after
// ReadTimeout is answered 503.
const ReadTimeout = 10 * time.Second

// readContext bounds a read by ReadTimeout.
func readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, ReadTimeout)
}

// writeContext asks etcd to refuse a write at once when the member it
// reaches has no leader ("etcdserver: no leader"), rather than proposing it
// to a cluster that cannot commit it: upstream's requests carry no such
// requirement, and such a create hangs until its deadline (34s) and ends in
// a 504. A write to a member that still believes in a leader which lost
// quorum ends within etcd's request timeout with "etcdserver: request timed
// out"; both become 503s.
func writeContext(ctx context.Context) context.Context {
	return clientv3.WithRequireLeader(ctx)
}

// etcdUnavailable are the messages etcd gives (as gRPC Unavailable errors,
// which the storage layer passes on unchanged) when it cannot serve a
// request now but may later. They are matched as text: the typed errors live
// in go.etcd.io/etcd/api/v3/v3rpc/rpctypes, which this module does not
// depend on directly, and a wrapped gRPC status prints the same text.
var etcdUnavailable = []string{
	"etcdserver: no leader",
	"etcdserver: leader changed",
	"etcdserver: request timed out", // and its ", possibly due to ..." variants
	"etcdserver: not enough started members",
	"code = Unavailable",
}

// Unavailable turns a storage error that means "etcd cannot serve now" into
// a 503 ServiceUnavailable with Retry-After, where upstream answers 500 (the
// raw etcd error) or, once the request's deadline passes, 504. ctx is the
// request's own context: a deadline that expired in a context derived from
// it (ReadTimeout) is etcd's unavailability; the request's own expiring is
// left to upstream's 504. Errors that already carry a status, and nil, are
// returned unchanged.
func Unavailable(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return err
	}
	msg := err.Error()
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		msg = "etcd did not answer within " + ReadTimeout.String()
	case isEtcdUnavailable(msg):
	default:
		return err
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure,
		Code:   503,
		Reason: metav1.StatusReasonServiceUnavailable,
		Message: fmt.Sprintf("the datastore (etcd) is unavailable: %s; retry later. A write refused "+
			"this way may or may not have been applied (a create that was is answered as created when "+
			"etcd can say so in time): a retried create may find the object exists", msg),
		Details: &metav1.StatusDetails{RetryAfterSeconds: UnavailableRetryAfterSeconds},
	}}
}

func isEtcdUnavailable(msg string) bool {
	for _, m := range etcdUnavailable {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
