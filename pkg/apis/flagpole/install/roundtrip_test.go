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
