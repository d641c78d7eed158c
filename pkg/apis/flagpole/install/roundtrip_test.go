package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/roundtrip"

	flagpolefuzzer "github.com/flagpole-dev/flagpole/pkg/apis/flagpole/fuzzer"
)

// TestRoundTripTypes proves internal → versioned → JSON → versioned → internal
// loses nothing, for every kind in the group.
func TestRoundTripTypes(t *testing.T) {
	roundtrip.RoundTripTestForAPIGroup(t, Install, flagpolefuzzer.Funcs)
}

// TestRoundTripProtobuf proves the same through protobuf, the storage and
// default client encoding, and JSON again (internal → versioned → protobuf →
// versioned → internal, and versioned → protobuf → versioned) for every kind.
func TestRoundTripProtobuf(t *testing.T) {
	roundtrip.RoundTripProtobufTestForAPIGroup(t, Install, flagpolefuzzer.Funcs)
}
