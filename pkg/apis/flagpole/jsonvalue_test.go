package flagpole

import (
	"errors"
	"strings"
	"testing"
)

func TestScanJSONValue(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		depth    int
		outRange bool
	}{
		{raw: `true`},
		{raw: `1.7976931348623157e308`},
		{raw: `1e-400`},
		{raw: `"1e400 [[[ {{{"`},
		{raw: `"esc\"aped [ \\"`},
		{raw: `{"a":[1,{"b":2}]}`, depth: 3},
		{raw: `[[],[[]]]`, depth: 3},
		{raw: `1e400`, outRange: true},
		{raw: `-1e309`, outRange: true},
		{raw: `{"a":1e400}`, depth: 1, outRange: true},
		{raw: `[1E+400]`, depth: 1, outRange: true},
		{raw: "1" + strings.Repeat("0", 400), outRange: true},
		{raw: strings.Repeat("[", 50) + strings.Repeat("]", 50), depth: 50},
	} {
		info, err := ScanJSONValue([]byte(tc.raw))
		if got := errors.Is(err, ErrNumberOutOfRange); got != tc.outRange {
			t.Errorf("%.40s: out of range = %v (%v), want %v", tc.raw, got, err, tc.outRange)
		}
		if !tc.outRange && info.Depth != tc.depth {
			t.Errorf("%.40s: depth %d, want %d", tc.raw, info.Depth, tc.depth)
		}
	}
}

func BenchmarkScanJSONValue(b *testing.B) {
	raw := []byte(`{"targetingKey":"user-123","plan":"enterprise","country":"de","age":42,"score":1.5e3,"tags":["a","b"],"org":{"id":7,"beta":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ScanJSONValue(raw); err != nil {
			b.Fatal(err)
		}
	}
}
