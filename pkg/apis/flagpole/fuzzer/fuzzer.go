// Package fuzzer fills Flagpole objects with random but encodable values for
// the round-trip tests.
package fuzzer

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	runtimeserializer "k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/randfill"

	"github.com/flagpole-dev/flagpole/pkg/apis/flagpole"
)

// Funcs returns the fuzzer functions for the flagpole.dev group.
var Funcs = func(codecs runtimeserializer.CodecFactory) []interface{} {
	return []interface{}{
		// Decoding defaults an empty state to Enabled, so a round trip only
		// preserves states that are already set.
		func(s *flagpole.FlagSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.State == "" {
				s.State = flagpole.FlagStateEnabled
			}
		},
		// Decoding defaults an omitted ttl to an hour.
		func(s *flagpole.FlagOverrideSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.TTL == nil {
				s.TTL = &metav1.Duration{Duration: time.Duration(c.Int63n(int64(time.Hour)))}
			}
		},
		// A variant value is any JSON value, held as compact bytes (the form
		// every encoder writes back).
		func(j *flagpole.JSON, c randfill.Continue) {
			var v any
			switch c.Intn(5) {
			case 0:
				v = c.Bool()
			case 1:
				v = c.String(0)
			case 2:
				v = float64(c.Int63n(1 << 40))
			case 3:
				v = map[string]any{c.String(0): c.String(0), "n": c.Intn(100)}
			default:
				v = []any{c.String(0), c.Bool()}
			}
			raw, err := json.Marshal(v)
			if err != nil {
				panic(fmt.Sprintf("marshal fuzzed JSON: %v", err))
			}
			j.Raw = raw
		},
	}
}
