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

// storedBytes encodes obj as etcd storage does with the given media type.
func storedBytes(t *testing.T, scheme *runtime.Scheme, mediaType string, obj runtime.Object) []byte {
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
	data, err := runtime.Encode(codec, obj)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// StoredSize is the size of what storage writes, in either encoding it may
// be configured with: the larger of the two.
func TestStoredSizeMeasuresBothStorageEncodings(t *testing.T) {
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
	js := storedBytes(t, scheme, runtime.ContentTypeJSON, f)
	pb := storedBytes(t, scheme, runtime.ContentTypeProtobuf, f)
	if !bytes.HasPrefix(pb, []byte("k8s\x00")) {
		t.Fatalf("protobuf storage encoding starts %q", pb[:8])
	}
	size, err := StoredSize(scheme, f)
	if err != nil {
		t.Fatal(err)
	}
	// The JSON serializer ends with a newline that json.Marshal does not write.
	want := max(len(bytes.TrimSuffix(js, []byte("\n"))), len(pb))
	if size != want {
		t.Errorf("StoredSize = %d, want max(JSON %d, protobuf %d)", size, len(js), len(pb))
	}
	if len(pb) >= len(js) {
		t.Logf("protobuf (%d) is not smaller than JSON (%d) here", len(pb), len(js))
	}

	if errs := ValidateStoredSize(scheme, f, size, nil); len(errs) != 0 {
		t.Errorf("at the limit: %v", errs)
	}
	if errs := ValidateStoredSize(scheme, f, size-1, nil); len(errs) != 1 || !strings.Contains(errs[0].Detail, "bytes as stored") {
		t.Errorf("one byte over the limit: %v", errs)
	}
}
