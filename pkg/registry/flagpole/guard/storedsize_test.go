package guard

import (
	"bytes"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	serverstorage "k8s.io/apiserver/pkg/server/storage"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/install"
	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole/v1beta1"
)

// storageCodec is the codec etcd storage uses with the given media type.
func storageCodec(t *testing.T, scheme *runtime.Scheme, mediaType string) runtime.Codec {
	t.Helper()
	codec, _, err := serverstorage.NewStorageCodec(serverstorage.StorageCodecConfig{
		StorageMediaType:  mediaType,
		StorageSerializer: serializer.NewCodecFactory(scheme),
		StorageVersion:    v1beta1.SchemeGroupVersion,
		MemoryVersion:     schema.GroupVersion{Group: flagpole.GroupName, Version: runtime.APIVersionInternal},
	})
	if err != nil {
		t.Fatal(err)
	}
	return codec
}

// StoredSize is the size of what storage writes, in the encoding the store
// is configured with.
func TestStoredSizeMeasuresTheStorageEncoding(t *testing.T) {
	scheme := runtime.NewScheme()
	install.Install(scheme)
	f := &flagpole.Flag{
		ObjectMeta: metav1.ObjectMeta{Name: "f", Namespace: "ns", Labels: map[string]string{"team": "web"}},
		Spec: flagpole.FlagSpec{
			Type:        flagpole.FlagTypeString,
			State:       flagpole.FlagStateEnabled,
			Description: strings.Repeat("<&>", 1000), // JSON escapes each to \u003c etc.
			Variants: []flagpole.Variant{
				{Name: "a", Value: flagpole.JSON{Raw: []byte(`"` + strings.Repeat("a", 5000) + `"`)}},
				{Name: "b", Value: flagpole.JSON{Raw: []byte(`"b"`)}},
			},
			DefaultVariant: "a",
			Rules:          []flagpole.Rule{{Name: "r", When: "true", Variant: "b"}},
		},
	}
	sizes := map[string]int{}
	for _, mediaType := range []string{runtime.ContentTypeJSON, runtime.ContentTypeProtobuf} {
		codec := storageCodec(t, scheme, mediaType)
		stored, err := runtime.Encode(codec, f)
		if err != nil {
			t.Fatal(err)
		}
		if mediaType == runtime.ContentTypeProtobuf && !bytes.HasPrefix(stored, []byte("k8s\x00")) {
			t.Fatalf("protobuf storage encoding starts %q", stored[:8])
		}
		size, err := StoredSize(codec, f)
		if err != nil {
			t.Fatal(err)
		}
		if size != len(stored) {
			t.Errorf("%s: StoredSize = %d, storage writes %d bytes", mediaType, size, len(stored))
		}
		sizes[mediaType] = size
		if errs := ValidateStoredSize(codec, f, size, nil); len(errs) != 0 {
			t.Errorf("%s at the limit: %v", mediaType, errs)
		}
		if errs := ValidateStoredSize(codec, f, size-1, nil); len(errs) != 1 || !strings.Contains(errs[0].Detail, "bytes as stored") {
			t.Errorf("%s one byte over the limit: %v", mediaType, errs)
		}
	}
	if sizes[runtime.ContentTypeProtobuf] == sizes[runtime.ContentTypeJSON] {
		t.Errorf("both encodings measured %d bytes: not measured in the store's encoding", sizes[runtime.ContentTypeJSON])
	}
	// Measuring does not change the object.
	if f.Kind != "" || f.APIVersion != "" {
		t.Errorf("measuring set the object's type to %s", f.GroupVersionKind())
	}
}
