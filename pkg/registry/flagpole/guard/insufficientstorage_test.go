package guard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// etcd's quota exceeded (its NOSPACE alarm) is a 507 that says what to do,
// not the raw etcd error as a 500.
func TestUnavailableNoSpace(t *testing.T) {
	err := Unavailable(context.Background(), fmt.Errorf("create: %w", rpctypes.Error(rpctypes.ErrGRPCNoSpace)))
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != http.StatusInsufficientStorage || status.Status().Reason != StatusReasonInsufficientStorage {
		t.Fatalf("Unavailable(ErrNoSpace) = %v, want a 507", err)
	}
	if msg := status.Status().Message; !strings.Contains(msg, "database space exceeded") || !strings.Contains(msg, "disarm the alarm") {
		t.Errorf("message %q", msg)
	}
	if _, ok := apierrors.SuggestsClientDelay(err); ok {
		t.Error("a 507 suggests a retry delay: client-go would retry on its own")
	}
}

// recordingStorage is a storage.Interface that records the writes that
// reach it; only the methods called here are implemented.
type recordingStorage struct {
	storage.Interface
	writes *[]string
}

func (s recordingStorage) Create(context.Context, string, runtime.Object, runtime.Object, uint64) error {
	*s.writes = append(*s.writes, "create")
	return nil
}

func (s recordingStorage) Delete(context.Context, string, runtime.Object, *storage.Preconditions, storage.ValidateObjectFunc, runtime.Object, storage.DeleteOptions) error {
	*s.writes = append(*s.writes, "delete")
	return nil
}

func (s recordingStorage) GuaranteedUpdate(context.Context, string, runtime.Object, bool, *storage.Preconditions, storage.UpdateFunc, runtime.Object) error {
	*s.writes = append(*s.writes, "update")
	return nil
}

func (s recordingStorage) Get(context.Context, string, storage.GetOptions, runtime.Object) error {
	*s.writes = append(*s.writes, "get")
	return nil
}

// While the check refuses, the stores of a RefuseWrites getter answer every
// write 507 with its reason and pass it on to the storage below never;
// reads go through; once the check passes, writes do too.
func TestRefuseWrites(t *testing.T) {
	var writes []string
	var refusal error
	decorated := generic.RESTOptions{
		StorageConfig: &storagebackend.ConfigForResource{},
		Decorator: func(*storagebackend.ConfigForResource, string, func(runtime.Object) (string, error), func() runtime.Object, func() runtime.Object,
			storage.AttrFunc, storage.IndexerFuncs, *cache.Indexers) (storage.Interface, factory.DestroyFunc, error) {
			return recordingStorage{writes: &writes}, func() {}, nil
		},
	}
	getter := RefuseWrites(decorated, func() error { return refusal })
	opts, err := getter.GetRESTOptions(schema.GroupResource{Group: "flagpole.dev", Resource: "flags"}, &flagpole.Flag{})
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := opts.Decorator(opts.StorageConfig, "/flags", nil, nil, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	all := func() []error {
		return []error{
			s.Create(ctx, "k", &flagpole.Flag{}, &flagpole.Flag{}, 0),
			s.GuaranteedUpdate(ctx, "k", &flagpole.Flag{}, false, nil, nil, nil),
			s.Delete(ctx, "k", &flagpole.Flag{}, nil, nil, nil, storage.DeleteOptions{}),
			s.Get(ctx, "k", storage.GetOptions{}, &flagpole.Flag{}),
		}
	}

	refusal = errors.New("disk nearly full: free space")
	errs := all()
	for i, err := range errs[:3] {
		var status apierrors.APIStatus
		if !errors.As(err, &status) || status.Status().Code != http.StatusInsufficientStorage || status.Status().Message != "disk nearly full: free space" {
			t.Errorf("write %d while refused: %v, want a 507 with the check's reason", i, err)
		}
	}
	if errs[3] != nil || strings.Join(writes, ",") != "get" {
		t.Errorf("while refused: read %v, storage saw %v; want only the read to reach it", errs[3], writes)
	}

	refusal, writes = nil, nil
	for i, err := range all() {
		if err != nil {
			t.Errorf("call %d once the check passes: %v", i, err)
		}
	}
	if strings.Join(writes, ",") != "create,update,delete,get" {
		t.Errorf("storage saw %v once the check passes", writes)
	}
}
